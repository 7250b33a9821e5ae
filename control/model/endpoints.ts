// EndpointSlices -> the backends of one unit. Ports are resolved per slice,
// never from the Service's targetPort: a named targetPort can mean a different
// number in every pod, and the EndpointSlice controller has already looked it
// up, slice by slice.
import type { V1EndpointSlice } from '@kubernetes/client-node';

import {
  asArray,
  asBoolean,
  asRecord,
  asString,
  asStringMap,
  compareStrings,
  isPortNumber,
  objectKey,
} from './guards.js';
import { parseIp } from './ip.js';
import type { NodeIndex } from './nodes.js';
import type { ExclusionReason, Finding } from './reasons.js';
import type {
  Backend,
  BackendState,
  ExcludedEndpoint,
  Family,
  Protocol,
  TrafficPolicy,
} from './types.js';

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

export type EndpointState = BackendState | 'notReady';

interface SliceEndpoint {
  /** As written, for messages about addresses that do not parse. */
  text: string;
  /** Canonical address, when it parses as an address of the slice's family. */
  address?: string;
  nodeName?: string;
  state: EndpointState;
}

interface SlicePort {
  name: string;
  protocol: string;
  port: unknown;
}

export interface SliceFacts {
  name: string;
  family: Family;
  ports: SlicePort[];
  endpoints: SliceEndpoint[];
}

/**
 * Conditions -> state, as Cilium maps them. Unset ready and serving mean true,
 * unset terminating means false (the API's documented defaults). Terminating
 * but still serving: kept so established flows drain, but out of new picks.
 */
export function endpointState(conditions: unknown): EndpointState {
  const c = asRecord(conditions);
  const ready = asBoolean(c?.['ready']) ?? true;
  const serving = asBoolean(c?.['serving']) ?? true;
  const terminating = asBoolean(c?.['terminating']) ?? false;
  if (ready) return 'active';
  if (terminating && serving) return 'terminating';
  return 'notReady';
}

function sliceFamily(addressType: unknown): Family | undefined {
  // FQDN slices name hosts, not addresses: nothing a datapath can hold.
  return addressType === 'IPv4' ? 4 : addressType === 'IPv6' ? 6 : undefined;
}

/** The slices that belong to the Service, normalised and in a fixed order. */
export function serviceSlices(
  slices: readonly V1EndpointSlice[],
  namespace: string,
  serviceName: string,
): SliceFacts[] {
  const out: SliceFacts[] = [];
  for (const raw of asArray(slices)) {
    const slice = asRecord(raw);
    if (slice === undefined) continue;
    const key = objectKey(slice['metadata']);
    const labels = asStringMap(asRecord(slice['metadata'])?.['labels']);
    if (key.namespace !== namespace || labels[SERVICE_NAME_LABEL] !== serviceName) continue;
    const family = sliceFamily(slice['addressType']);
    if (family === undefined) continue;
    const ports = asArray(slice['ports']).flatMap((p): SlicePort[] => {
      const r = asRecord(p);
      if (r === undefined) return [];
      return [
        {
          name: asString(r['name']) ?? '',
          protocol: asString(r['protocol']) ?? 'TCP',
          port: r['port'],
        },
      ];
    });
    const endpoints = asArray(slice['endpoints']).flatMap((e): SliceEndpoint[] => {
      const r = asRecord(e);
      if (r === undefined) return [];
      // Only the first address has a meaning (the API says so; kube-proxy
      // reads no other), and the EndpointSlice controller writes just one.
      const first = asArray(r['addresses'])[0];
      const ip = parseIp(first);
      const nodeName = asString(r['nodeName']);
      return [
        {
          text: typeof first === 'string' ? first : '',
          ...(ip !== undefined && ip.family === family ? { address: ip.address } : {}),
          ...(nodeName !== undefined && nodeName !== '' ? { nodeName } : {}),
          state: endpointState(r['conditions']),
        },
      ];
    });
    out.push({ name: key.name ?? '', family, ports, endpoints });
  }
  // Order by name, then content, so that two copies of one slice (a broken
  // source) still give the same result whatever order they arrive in. The
  // content is written out only for names that tie.
  const json = new Map<SliceFacts, string>();
  const content = (s: SliceFacts): string => {
    let j = json.get(s);
    if (j === undefined) json.set(s, (j = JSON.stringify(s)));
    return j;
  };
  return out.sort(
    (a, b) => compareStrings(a.name, b.name) || compareStrings(content(a), content(b)),
  );
}

export interface UnitPort {
  /** '' for an unnamed service port: it matches the unnamed slice port. */
  name: string;
  protocol: Protocol;
}

export interface BackendContext {
  nodeName: string;
  nodes: NodeIndex;
  policy: TrafficPolicy;
}

export interface UnitBackends {
  backends: Backend[];
  excluded: ExcludedEndpoint[];
  findings: Finding[];
}

interface Candidate {
  address: string;
  port: number;
  nodeName?: string;
  state: EndpointState;
}

const stateRank: Record<EndpointState, number> = { active: 0, terminating: 1, notReady: 2 };

/** Which of two records of one address:port to keep: the best state, then a fixed tie-break. */
function better(a: Candidate, b: Candidate): boolean {
  const byState = stateRank[a.state] - stateRank[b.state];
  if (byState !== 0) return byState < 0;
  if ((a.nodeName === undefined) !== (b.nodeName === undefined)) return a.nodeName !== undefined;
  return compareStrings(a.nodeName ?? '', b.nodeName ?? '') < 0;
}

export const backendIdentity = (family: Family, address: string, port: number): string =>
  family === 4 ? `${address}:${port}` : `[${address}]:${port}`;

export function unitBackends(
  slices: readonly SliceFacts[],
  port: UnitPort,
  family: Family,
  ctx: BackendContext,
): UnitBackends {
  const findings: Finding[] = [];
  const excluded: ExcludedEndpoint[] = [];
  const candidates = new Map<string, Candidate>();
  const portLabel = `${port.name === '' ? '(unnamed)' : port.name}/${port.protocol}`;

  for (const slice of slices) {
    if (slice.family !== family) continue;
    const match = slice.ports.find((p) => p.name === port.name && p.protocol === port.protocol);
    if (match === undefined) continue;
    if (!isPortNumber(match.port)) {
      findings.push({
        reason: 'invalidSlicePort',
        message: `EndpointSlice ${slice.name}: port ${portLabel} has number ${String(match.port)}, not 1..65535; its endpoints are skipped for this port`,
      });
      continue;
    }
    for (const e of slice.endpoints) {
      if (e.address === undefined) {
        excluded.push(exclusion(e.text, match.port, e.nodeName, 'invalidEndpointAddress'));
        findings.push({
          reason: 'invalidEndpointAddress',
          message: `EndpointSlice ${slice.name}: endpoint ${JSON.stringify(e.text)} is not an IPv${family} address; skipped`,
        });
        continue;
      }
      const c: Candidate = {
        address: e.address,
        port: match.port,
        state: e.state,
        ...(e.nodeName !== undefined ? { nodeName: e.nodeName } : {}),
      };
      const id = backendIdentity(family, c.address, c.port);
      const seen = candidates.get(id);
      if (seen === undefined || better(c, seen)) candidates.set(id, c);
    }
  }

  const backends: Backend[] = [];
  for (const [identity, c] of candidates) {
    if (c.state === 'notReady') {
      excluded.push(exclusion(c.address, c.port, c.nodeName, 'endpointNotReady'));
      continue;
    }
    const local = c.nodeName !== undefined && c.nodeName === ctx.nodeName;
    if (ctx.policy === 'Local' && !local) {
      excluded.push(exclusion(c.address, c.port, c.nodeName, 'notLocal'));
      continue;
    }
    const node = c.nodeName === undefined ? undefined : ctx.nodes.get(c.nodeName);
    const nodeAddress = node?.addresses[family];
    // A local backend needs no tunnel; a remote one is useless without one.
    if (!local && node === undefined) {
      excluded.push(exclusion(c.address, c.port, c.nodeName, 'nodeUnknown'));
      findings.push({
        reason: 'nodeUnknown',
        message:
          c.nodeName === undefined
            ? `endpoint ${c.address} names no node, so traffic cannot be tunnelled to it; skipped`
            : `endpoint ${c.address} runs on node ${c.nodeName}, which is not known; skipped`,
      });
      continue;
    }
    if (!local && nodeAddress === undefined) {
      excluded.push(exclusion(c.address, c.port, c.nodeName, 'nodeAddressUnknown'));
      findings.push({
        reason: 'nodeAddressUnknown',
        message: `endpoint ${c.address} runs on node ${c.nodeName ?? ''}, which reports no IPv${family} InternalIP or ExternalIP to tunnel to; skipped`,
      });
      continue;
    }
    backends.push({
      address: c.address,
      port: c.port,
      ...(c.nodeName !== undefined ? { nodeName: c.nodeName } : {}),
      ...(nodeAddress !== undefined ? { nodeAddress } : {}),
      state: c.state,
      local,
      identity,
      weight: 1,
    });
  }

  backends.sort((a, b) => compareStrings(a.identity, b.identity));
  excluded.sort(
    (a, b) =>
      compareStrings(a.address, b.address) ||
      a.port - b.port ||
      compareStrings(a.reason, b.reason) ||
      compareStrings(a.nodeName ?? '', b.nodeName ?? ''),
  );
  return { backends, excluded, findings };
}

function exclusion(
  address: string,
  port: number,
  nodeName: string | undefined,
  reason: ExclusionReason,
): ExcludedEndpoint {
  return { address, port, ...(nodeName !== undefined ? { nodeName } : {}), reason };
}
