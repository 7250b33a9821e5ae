// Which backend a flow goes to and why, from what the datapath's maps hold for
// it: the decision order of bpf/xlb_xdp.c and bpf/include/lb.h, step by step,
// in TypeScript. Pure: the reader (reader.ts) gathers the facts.
//
// The per-CPU flow cache (bpf/include/flowcache.h) is left out on purpose: it
// only repeats a verdict the full path reached less than a second ago, and
// every map change that could alter one invalidates it.
import ipaddr from 'ipaddr.js';

import { flowHash } from '../datapath/flowhash.js';
import type { BackendEntry } from '../datapath/maps.js';
import type { ExplainFlow } from './flow.js';

const NSEC_PER_SEC = 1_000_000_000n;

/** What the maps hold that bears on one flow. */
export interface FlowFacts {
  /** The cluster-wide flow hash seed the programs were loaded with. */
  hashSeed: number;
  /** The VIP's bit in xlb_vip_filter: unset, the datapath passes the packet unexamined. */
  vipFilterBit: boolean;
  /** The destination is in xlb_vips. */
  vipKnown: boolean;
  /** The other frontends of this VIP (for the "no frontend for that port" answer). */
  vipFrontends: ReadonlyArray<{ port: number; proto: string }>;
  /** xlb_frontends' entry for VIP:port/proto. */
  service?: { id: number; sourceRanges: boolean; affinityTimeoutSeconds?: number };
  /** The service's source ranges (CIDRs), when it enforces them. */
  sourceRanges: readonly string[];
  /** The connection-table entry under the flow's key (client-only with affinity). */
  conntrack?: { backendId: number; serviceId: number; lastSeenNs: bigint };
  /** The monotonic clock now, as bpf_ktime_get_coarse_ns counts it. */
  nowNs: bigint;
  /** The service's Maglev table (the half in use), or undefined when it has none. */
  table?: { size: number; slots: Uint32Array };
  /** Backends by id (live ones: state active or terminating). */
  backends: ReadonlyMap<number, BackendEntry>;
}

export interface ChosenBackend extends BackendEntry {
  id: number;
}

/** What the datapath does with the flow's packets. */
export type Verdict =
  | { kind: 'notVip'; action: 'pass' }
  | { kind: 'noFrontend'; action: 'drop' }
  | { kind: 'sourceRefused'; action: 'drop'; serviceId: number; ranges: string[] }
  | {
      kind: 'conntrack';
      action: 'forward';
      serviceId: number;
      backend: ChosenBackend;
      ageSeconds: number;
    }
  | {
      kind: 'affinity';
      action: 'forward';
      serviceId: number;
      backend: ChosenBackend;
      ageSeconds: number;
      timeoutSeconds: number;
    }
  | {
      kind: 'maglev';
      action: 'forward';
      serviceId: number;
      hash: number;
      m: number;
      slot: number;
      backend: ChosenBackend;
    }
  | {
      kind: 'noBackend';
      action: 'drop';
      serviceId: number;
      why: 'noTable' | 'emptyTable' | 'backendGone' | 'otherFamily';
      m?: number;
      slot?: number;
      backendId?: number;
    };

export interface Explanation {
  flow: ExplainFlow;
  verdict: Verdict;
  /** Each step the datapath takes for this flow, in order, in words. */
  steps: string[];
}

const familyOf = (a: string): 4 | 6 => (ipaddr.parse(a).kind() === 'ipv4' ? 4 : 6);

/** The source ranges that contain `client` (the datapath's LPM lookup answers any). */
export function matchingRanges(client: string, ranges: readonly string[]): string[] {
  const addr = ipaddr.parse(client);
  return ranges.filter((cidr) => {
    const [net, prefix] = ipaddr.parseCIDR(cidr);
    return net.kind() === addr.kind() && addr.match(net, prefix);
  });
}

const seconds = (ns: bigint): number => Number(ns / 1_000_000n) / 1000;

export const describeBackend = (b: ChosenBackend): string => {
  const at = b.address.includes(':') ? `[${b.address}]:${b.port}` : `${b.address}:${b.port}`;
  return (
    `backend ${b.id} ${at} on node ${b.nodeAddress} ` +
    `(${b.local ? 'local: DNAT here' : 'remote: tunnelled to its node'}, ${b.state})`
  );
};

export function explainFlow(flow: ExplainFlow, facts: FlowFacts): Explanation {
  const steps: string[] = [];
  const done = (verdict: Verdict): Explanation => ({ flow, verdict, steps });
  const where = `${flow.vip}:${flow.port}/${flow.proto}`;

  const svc = facts.service;
  if (!facts.vipFilterBit || (svc === undefined && !facts.vipKnown)) {
    steps.push(`${flow.vip} is not a VIP of this node: the packet passes to the host untouched`);
    return done({ kind: 'notVip', action: 'pass' });
  }
  if (svc === undefined) {
    const others = facts.vipFrontends.map((f) => `${f.port}/${f.proto}`).sort();
    steps.push(
      `${flow.vip} is a VIP, but no service listens on ${flow.port}/${flow.proto}` +
        (others.length > 0 ? ` (it serves ${others.join(', ')})` : ' (it has no frontend)') +
        ': dropped',
    );
    return done({ kind: 'noFrontend', action: 'drop' });
  }
  steps.push(`${where} is the frontend of service ${svc.id}`);

  if (svc.sourceRanges) {
    const hits = matchingRanges(flow.client, facts.sourceRanges);
    if (hits.length === 0) {
      steps.push(
        `service ${svc.id} admits only ${facts.sourceRanges.length > 0 ? facts.sourceRanges.join(', ') : 'no source at all'}; ` +
          `${flow.client} is outside: dropped`,
      );
      return done({
        kind: 'sourceRefused',
        action: 'drop',
        serviceId: svc.id,
        ranges: [...facts.sourceRanges],
      });
    }
    steps.push(`source ${flow.client} is inside ${hits.join(', ')}`);
  }

  const affinity = svc.affinityTimeoutSeconds !== undefined;
  const backendOf = (id: number): ChosenBackend | undefined => {
    const b = facts.backends.get(id);
    return b && { id, ...b };
  };
  const ct = facts.conntrack;
  if (ct === undefined) {
    steps.push(
      affinity
        ? `no session-affinity entry for client ${flow.client}`
        : 'no connection-table entry for this flow',
    );
  } else if (ct.serviceId !== svc.id) {
    steps.push(
      `the connection-table entry belongs to service ${ct.serviceId}, not ${svc.id}: ignored`,
    );
  } else {
    const age = facts.nowNs > ct.lastSeenNs ? facts.nowNs - ct.lastSeenNs : 0n;
    const timeout = BigInt(svc.affinityTimeoutSeconds ?? 0);
    const b = backendOf(ct.backendId);
    if (affinity && age >= timeout * NSEC_PER_SEC) {
      steps.push(
        `client ${flow.client}'s affinity to backend ${ct.backendId} expired ` +
          `(${seconds(age)} s since last seen, timeout ${timeout} s)`,
      );
    } else if (b === undefined) {
      steps.push(
        `the ${affinity ? 'session-affinity' : 'connection-table'} entry names backend ${ct.backendId}, ` +
          'which is gone: the flow is balanced afresh',
      );
    } else if (affinity) {
      steps.push(
        `session affinity: client ${flow.client} is pinned to ${describeBackend(b)}, ` +
          `last seen ${seconds(age)} s ago (timeout ${timeout} s)`,
      );
      return done({
        kind: 'affinity',
        action: 'forward',
        serviceId: svc.id,
        backend: b,
        ageSeconds: seconds(age),
        timeoutSeconds: Number(timeout),
      });
    } else {
      steps.push(
        `connection-table hit: the flow is pinned to ${describeBackend(b)}, last seen ${seconds(age)} s ago`,
      );
      return done({
        kind: 'conntrack',
        action: 'forward',
        serviceId: svc.id,
        backend: b,
        ageSeconds: seconds(age),
      });
    }
  }

  const table = facts.table;
  if (table === undefined || table.size === 0) {
    steps.push(
      `service ${svc.id} has ${table === undefined ? 'no Maglev table' : 'an empty Maglev table'} ` +
        '(no ready endpoint): dropped',
    );
    return done({
      kind: 'noBackend',
      action: 'drop',
      serviceId: svc.id,
      why: table === undefined ? 'noTable' : 'emptyTable',
    });
  }
  const tuple = {
    client: flow.client,
    clientPort: flow.clientPort,
    port: flow.port,
    proto: flow.proto,
  };
  const hash = flowHash(tuple, facts.hashSeed, affinity);
  const slot = hash % table.size;
  const id = table.slots[slot] ?? 0;
  steps.push(
    `Maglev: hash ${hash} of ${affinity ? 'the client address (session affinity)' : 'the 5-tuple'} ` +
      `picks slot ${slot} of ${table.size}, which names backend ${id}`,
  );
  const b = backendOf(id);
  if (b === undefined) {
    steps.push(`backend ${id} is gone (its endpoint went away): dropped`);
    return done({
      kind: 'noBackend',
      action: 'drop',
      serviceId: svc.id,
      why: 'backendGone',
      m: table.size,
      slot,
      backendId: id,
    });
  }
  if (familyOf(b.address) !== familyOf(flow.client)) {
    steps.push(`backend ${id} (${b.address}) is of the other IP family: dropped`);
    return done({
      kind: 'noBackend',
      action: 'drop',
      serviceId: svc.id,
      why: 'otherFamily',
      m: table.size,
      slot,
      backendId: id,
    });
  }
  steps.push(`the flow goes to ${describeBackend(b)}`);
  return done({
    kind: 'maglev',
    action: 'forward',
    serviceId: svc.id,
    hash,
    m: table.size,
    slot,
    backend: b,
  });
}
