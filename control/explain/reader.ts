// Gathers, from the pinned maps, every fact the datapath's decision for one
// flow depends on (see verdict.ts), reading each map the way the kernel does.
import {
  XlbBackend,
  XlbBackendFlag,
  XlbBackendState,
  XlbFlow,
  XlbFlowKey,
  XlbFrontendKey,
  XlbService,
  XlbServiceFlag,
  XlbVipKey,
} from '../datapath/abi.js';
import { key32 } from '../datapath/codec.js';
import { fromDatapathAddress, toDatapathAddress, type Family } from '../datapath/address.js';
import { vipFilterBit } from '../datapath/flowcache.js';
import type { BackendEntry, DatapathMaps } from '../datapath/maps.js';
import type { ExplainFlow } from './flow.js';
import type { PinnedDatapath } from './pinned.js';
import { explainFlow, type Explanation, type FlowFacts } from './verdict.js';

const PROTO = { TCP: 6, UDP: 17 } as const;

/** One slot of xlb_backends, or undefined when it is gone (zeroed) or out of range. */
function readBackend(m: DatapathMaps, id: number): BackendEntry | undefined {
  const raw = m.map('xlb_backends').lookup(key32(id));
  if (raw === undefined) return undefined;
  const b = XlbBackend.decode(raw);
  if (b.state === XlbBackendState.values.GONE) return undefined;
  const family = b.family as Family;
  return {
    address: fromDatapathAddress(b.addr, family),
    port: b.port_be,
    nodeAddress: fromDatapathAddress(b.node_addr, family),
    state: b.state === XlbBackendState.values.ACTIVE ? 'active' : 'terminating',
    local: (b.flags & XlbBackendFlag.values.LOCAL) !== 0,
  };
}

/**
 * The monotonic clock the datapath's timestamps count (bpf_ktime_get_coarse_ns
 * is CLOCK_MONOTONIC at jiffy resolution; Node's hrtime reads CLOCK_MONOTONIC).
 */
export const monotonicNowNs = (): bigint => process.hrtime.bigint();

export function gatherFacts(
  dp: PinnedDatapath,
  flow: ExplainFlow,
  nowNs: bigint = monotonicNowNs(),
): FlowFacts {
  const m = dp.maps;
  const vip = toDatapathAddress(flow.vip);
  const client = toDatapathAddress(flow.client);

  const bit = vipFilterBit(flow.vip);
  const word =
    m
      .map('xlb_vip_filter')
      .lookup(key32(bit >> 6))
      ?.readBigUInt64LE(0) ?? 0n;
  const vipKnown =
    m.map('xlb_vips').lookup(XlbVipKey.encode({ addr: vip.bytes, family: vip.family })) !==
    undefined;

  const raw = m.map('xlb_frontends').lookup(
    XlbFrontendKey.encode({
      addr: vip.bytes,
      port_be: flow.port,
      proto: PROTO[flow.proto],
      family: vip.family,
    }),
  );
  const facts: FlowFacts = {
    hashSeed: dp.hashSeed,
    vipFilterBit: ((word >> BigInt(bit & 63)) & 1n) === 1n,
    vipKnown,
    vipFrontends: [],
    sourceRanges: [],
    nowNs,
    backends: new Map(),
  };
  if (raw === undefined) {
    if (vipKnown) {
      facts.vipFrontends = [...m.frontendEntries()]
        .filter((f) => f.frontend.vip === flow.vip)
        .map((f) => ({ port: f.frontend.port, proto: f.frontend.proto }));
    }
    return facts;
  }
  const svc = XlbService.decode(raw);
  const affinity = (svc.flags & XlbServiceFlag.values.AFFINITY) !== 0;
  const sourceRanges = (svc.flags & XlbServiceFlag.values.SOURCE_RANGES) !== 0;
  facts.service = {
    id: svc.id,
    sourceRanges,
    ...(affinity ? { affinityTimeoutSeconds: svc.affinity_timeout_s } : {}),
  };
  if (sourceRanges) {
    facts.sourceRanges = [...m.sourceRangeEntries()]
      .filter((r) => r.serviceId === svc.id)
      .map((r) => r.cidr);
  }

  // The connection table's key: with session affinity, any source port.
  const ct = m.map('xlb_conntrack').lookup(
    XlbFlowKey.encode({
      src: client.bytes,
      dst: vip.bytes,
      sport_be: affinity ? 0 : flow.clientPort,
      dport_be: flow.port,
      proto: PROTO[flow.proto],
      family: vip.family,
    }),
  );
  if (ct !== undefined) {
    const f = XlbFlow.decode(ct);
    facts.conntrack = {
      backendId: f.backend_id,
      serviceId: f.service_id,
      lastSeenNs: f.last_seen_ns,
    };
  }

  const header = m.maglevTableHeader(svc.id);
  if (header !== undefined) {
    const slots = m.maglevTableWords(svc.id);
    if (slots !== undefined) facts.table = { size: header.size, slots };
  }

  const wanted = new Set<number>();
  if (facts.conntrack) wanted.add(facts.conntrack.backendId);
  if (facts.table) for (const id of facts.table.slots) wanted.add(id);
  const backends = new Map<number, BackendEntry>();
  for (const id of wanted) {
    const b = readBackend(m, id);
    if (b !== undefined) backends.set(id, b);
  }
  facts.backends = backends;
  return facts;
}

/** Explains a flow against the datapath pinned at `dp`. */
export function explainPinned(dp: PinnedDatapath, flow: ExplainFlow, nowNs?: bigint): Explanation {
  return explainFlow(flow, gatherFacts(dp, flow, nowNs));
}
