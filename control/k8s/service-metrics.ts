// The Service controller's metrics: addresses held per pool, Services still
// waiting for an address (by the allocator's reason) and failed API writes.
// Registered in the Registry the caller passes; without one they are kept
// but exported nowhere (so tests and embedded uses need no global state).
import { Counter, Gauge, type Registry } from 'prom-client';

import { pendingReasonNames, type AllocationResult } from '../ipam/index.js';

export type WriteResource = 'service' | 'ippool' | 'event';

export interface ServiceControllerMetrics {
  /** Refreshes the gauges from a pass's allocation. */
  observe(result: AllocationResult): void;
  writeError(resource: WriteResource, reason: string): void;
  /** A follower allocates nothing: its gauges must not keep the last leader term's values. */
  clear(): void;
}

function existing<M>(registry: Registry | undefined, name: string): M | undefined {
  return registry?.getSingleMetric(name) as M | undefined;
}

export function serviceControllerMetrics(registry?: Registry): ServiceControllerMetrics {
  const registers = registry !== undefined ? [registry] : [];
  const allocated =
    existing<Gauge<'pool' | 'family'>>(registry, 'xlb_ipam_allocated_addresses') ??
    new Gauge({
      name: 'xlb_ipam_allocated_addresses',
      help: 'Addresses of each IPPool held by Services (a shared address counts once), by family',
      labelNames: ['pool', 'family'],
      registers,
    });
  const pending =
    existing<Gauge<'reason'>>(registry, 'xlb_ipam_pending_services') ??
    new Gauge({
      name: 'xlb_ipam_pending_services',
      help: 'LoadBalancer Services of xlb still without the addresses they need, by reason',
      labelNames: ['reason'],
      registers,
    });
  const writeErrors =
    existing<Counter<'resource' | 'reason'>>(registry, 'xlb_k8s_write_errors_total') ??
    new Counter({
      name: 'xlb_k8s_write_errors_total',
      help: 'Writes to the API server that failed, by resource and reason (Conflict, Unreachable, Invalid, ...); each is retried',
      labelNames: ['resource', 'reason'],
      registers,
    });

  return {
    observe(result) {
      allocated.reset();
      for (const p of result.pools) {
        if (p.ipv4 !== undefined)
          allocated.set({ pool: p.name, family: 'IPv4' }, Number(p.ipv4.used));
        if (p.ipv6 !== undefined)
          allocated.set({ pool: p.name, family: 'IPv6' }, Number(p.ipv6.used));
      }
      const counts = new Map<string, number>();
      for (const s of result.services)
        if (s.pending) counts.set(s.reason, (counts.get(s.reason) ?? 0) + 1);
      // Every reason always present, so a dashboard sees a pending count go back to 0.
      for (const reason of pendingReasonNames) pending.set({ reason }, counts.get(reason) ?? 0);
    },
    writeError(resource, reason) {
      writeErrors.inc({ resource, reason });
    },
    clear() {
      allocated.reset();
      pending.reset();
    },
  };
}
