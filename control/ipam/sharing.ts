// When two Services may hold the same address (MetalLB's rules, which users
// migrating from it rely on): both carry the same sharing key, no port and
// protocol is used by both (the address:port must name one Service), the same
// externalTrafficPolicy (the address is announced one way), and under Local
// the same pod selector (announced from the nodes running those pods).
import type { ServiceRequest } from './requests.js';

export type SharingVerdict =
  { ok: true } | { ok: false; reason: 'requestedIPInUse' | 'sharingConflict'; why: string };

export function canShare(a: ServiceRequest, b: ServiceRequest): SharingVerdict {
  if (a.sharingKey === undefined || b.sharingKey === undefined) {
    const without = a.sharingKey === undefined ? 'this Service has' : `${b.key} has`;
    return { ok: false, reason: 'requestedIPInUse', why: `${without} no sharing key` };
  }
  if (a.sharingKey !== b.sharingKey)
    return {
      ok: false,
      reason: 'requestedIPInUse',
      why: `${b.key} has sharing key '${b.sharingKey}', this Service '${a.sharingKey}'`,
    };
  const clash = [...a.ports].filter((p) => b.ports.has(p));
  if (clash.length > 0)
    return {
      ok: false,
      reason: 'sharingConflict',
      why: `both use port ${clash.sort().join(', ')}`,
    };
  if (a.trafficPolicy !== b.trafficPolicy)
    return {
      ok: false,
      reason: 'sharingConflict',
      why: `externalTrafficPolicy differs (${b.key}: ${b.trafficPolicy}, this Service: ${a.trafficPolicy})`,
    };
  if (a.trafficPolicy === 'Local' && a.selector !== b.selector)
    return {
      ok: false,
      reason: 'sharingConflict',
      why: `with externalTrafficPolicy Local both must select the same pods (${b.key}: {${b.selector}}, this Service: {${a.selector}})`,
    };
  return { ok: true };
}
