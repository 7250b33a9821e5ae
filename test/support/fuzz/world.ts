// The world the datapath fuzz runs in: a node namespace whose FIB knows some
// remote nodes (one reached back out of the ingress veth, one through a second
// veth, one whose next hop has no neighbour entry, one with no route at all),
// and a datapath loaded with VIPs, frontends and backends that reach every
// branch of the packet walk.
import { XlbFlow, XlbFlowKey } from '../../../control/datapath/abi.js';
import { toDatapathAddress } from '../../../control/datapath/address.js';
import { loadDatapath, type Datapath } from '../../../control/datapath/load.js';
import type { BackendEntry, L4Proto, ServiceEntry } from '../../../control/datapath/maps.js';
import { inNs, ip } from '../../../control/topology/ip.js';
import type { Topology } from '../../../control/topology/topology.js';
import { ifIndex, inNetns } from '../../../native/index.js';

export const MTU = 1400;
export const HASH_SEED = 0x2545f491;

export const NODE4 = '10.0.0.1';
export const NODE6 = 'fd00::1';
/** The uplink's router: a permanent neighbour, so the FIB resolves it. */
const GW4 = '10.0.0.254';
const GW6 = 'fd00::fe';
export const GW_MAC = '02:00:00:00:fe:fe';
/** A next hop on the uplink with no neighbour entry: the FIB answers NO_NEIGH. */
const NONEIGH4 = '10.0.0.253';
const NONEIGH6 = 'fd00::fd';
/** The router behind the second interface: encapsulated packets are redirected there. */
const GW1_4 = '10.0.1.254';
const GW1_6 = 'fd00:1::fe';
export const GW1_MAC = '02:00:00:00:fe:01';

/** Remote nodes, by what the FIB says about them. */
export const REMOTE = {
  tx: { v4: '10.1.0.2', v6: 'fd01::2' },
  redirect: { v4: '10.3.0.2', v6: 'fd03::2' },
  kernel: { v4: '10.2.0.2', v6: 'fd02::2' },
  unreachable: { v4: '10.9.0.2', v6: 'fd09::2' },
} as const;

/** The MAC the datapath's frames arrive with (this node's uplink). */
export const NODE_MAC = '02:00:00:00:00:01';
export const PEER_MAC = '02:00:00:00:00:02';

export const VIPS = {
  v4: ['203.0.113.10', '203.0.113.11'],
  v6: ['2001:db8:10::10', '2001:db8:10::11'],
} as const;

export type Fam = 'v4' | 'v6';

export interface FrontendSpec {
  id: number;
  fam: Fam;
  vip: string;
  port: number;
  proto: L4Proto;
  /** Backend ids in the Maglev table; undefined: no table. */
  table?: number[];
  sourceRanges?: string[];
  affinity?: number;
}

interface BackendSpec extends BackendEntry {
  id: number;
}

/** Backends base+1..base+8 of one family; base+7 stays a gone (zeroed) slot. */
function backends(fam: Fam, base: number): BackendSpec[] {
  const local = fam === 'v4' ? NODE4 : NODE6;
  const one = (
    n: number,
    host: number,
    where: keyof typeof REMOTE | 'local',
    state: BackendEntry['state'] = 'active',
  ): BackendSpec => ({
    id: base + n,
    // The pod's address says where it runs: 10.244.<node>.<host> / fd00:244:<node>::<host>.
    address: fam === 'v4' ? `10.244.${n - 1}.${host}` : `fd00:244:${n - 1}::${host}`,
    nodeAddress: where === 'local' ? local : REMOTE[where][fam],
    local: where === 'local',
    port: 8080,
    state,
  });
  return [
    one(1, 5, 'local'),
    one(2, 5, 'tx'),
    one(3, 5, 'redirect'),
    one(4, 5, 'kernel'),
    one(5, 5, 'unreachable'),
    one(6, 6, 'local', 'terminating'),
    one(8, 8, 'local'),
  ];
}

export const BACKENDS: readonly BackendSpec[] = [...backends('v4', 0), ...backends('v6', 10)];
export const GONE_BACKEND = { v4: 7, v6: 17 } as const;
export const TERMINATING_BACKEND = { v4: 6, v6: 16 } as const;

/** A table of `m` slots over `ids`, in an order that is not a simple pattern. */
function table(ids: number[], m = 31): number[] {
  return Array.from({ length: m }, (_, i) => ids[(i * 7 + (i >> 2)) % ids.length]!);
}

const mixed = (b: number): number[] => table([b + 1, b + 2, b + 3, b + 4, b + 5]);

export const FRONTENDS: readonly FrontendSpec[] = [
  { id: 1, fam: 'v4', vip: VIPS.v4[0], port: 80, proto: 'TCP', table: mixed(0) },
  { id: 2, fam: 'v4', vip: VIPS.v4[0], port: 53, proto: 'UDP', table: mixed(0), affinity: 1 },
  {
    id: 3,
    fam: 'v4',
    vip: VIPS.v4[0],
    port: 443,
    proto: 'TCP',
    table: mixed(0),
    sourceRanges: ['192.0.2.0/24', '198.51.100.0/25'],
  },
  { id: 4, fam: 'v4', vip: VIPS.v4[0], port: 8080, proto: 'TCP' },
  { id: 5, fam: 'v4', vip: VIPS.v4[0], port: 123, proto: 'UDP', table: [GONE_BACKEND.v4] },
  {
    id: 6,
    fam: 'v4',
    vip: VIPS.v4[1],
    port: 22,
    proto: 'TCP',
    table: table([1, 8]),
  },
  { id: 7, fam: 'v4', vip: VIPS.v4[1], port: 4789, proto: 'UDP', table: [2] },
  // A table naming a backend of the other family: the datapath must refuse it.
  { id: 8, fam: 'v4', vip: VIPS.v4[1], port: 9000, proto: 'TCP', table: [11] },
  { id: 11, fam: 'v6', vip: VIPS.v6[0], port: 80, proto: 'TCP', table: mixed(10) },
  { id: 12, fam: 'v6', vip: VIPS.v6[0], port: 53, proto: 'UDP', table: mixed(10), affinity: 1 },
  {
    id: 13,
    fam: 'v6',
    vip: VIPS.v6[0],
    port: 443,
    proto: 'TCP',
    table: mixed(10),
    sourceRanges: ['2001:db8:c::/48'],
  },
  {
    id: 14,
    fam: 'v6',
    vip: VIPS.v6[1],
    port: 22,
    proto: 'TCP',
    table: table([11, 18]),
  },
  { id: 15, fam: 'v6', vip: VIPS.v6[1], port: 4789, proto: 'UDP', table: [12] },
  { id: 16, fam: 'v6', vip: VIPS.v6[1], port: 8080, proto: 'TCP' },
];

/** Connections the datapath already knows, so pinned-flow branches run too. */
export interface PinnedFlow {
  fam: Fam;
  client: string;
  clientPort: number;
  vip: string;
  port: number;
  proto: L4Proto;
  backendId: number;
  serviceId: number;
  /** Ancient: an affinity entry that has expired. */
  stale?: boolean;
}

export const PINNED: readonly PinnedFlow[] = [
  // Pinned to a backend that is gone since: balanced afresh.
  {
    fam: 'v4',
    client: '192.0.2.200',
    clientPort: 40000,
    vip: VIPS.v4[0],
    port: 80,
    proto: 'TCP',
    backendId: GONE_BACKEND.v4,
    serviceId: 1,
  },
  {
    fam: 'v6',
    client: '2001:db8:c::200',
    clientPort: 40000,
    vip: VIPS.v6[0],
    port: 80,
    proto: 'TCP',
    backendId: GONE_BACKEND.v6,
    serviceId: 11,
  },
  // Pinned to a terminating backend: it drains.
  {
    fam: 'v4',
    client: '192.0.2.201',
    clientPort: 40001,
    vip: VIPS.v4[0],
    port: 80,
    proto: 'TCP',
    backendId: TERMINATING_BACKEND.v4,
    serviceId: 1,
  },
  {
    fam: 'v6',
    client: '2001:db8:c::201',
    clientPort: 40001,
    vip: VIPS.v6[0],
    port: 80,
    proto: 'TCP',
    backendId: TERMINATING_BACKEND.v6,
    serviceId: 11,
  },
  // Session affinity entries (client port 0) whose timeout ran out long ago.
  {
    fam: 'v4',
    client: '192.0.2.202',
    clientPort: 0,
    vip: VIPS.v4[0],
    port: 53,
    proto: 'UDP',
    backendId: 1,
    serviceId: 2,
    stale: true,
  },
  {
    fam: 'v6',
    client: '2001:db8:c::202',
    clientPort: 0,
    vip: VIPS.v6[0],
    port: 53,
    proto: 'UDP',
    backendId: 11,
    serviceId: 12,
    stale: true,
  },
];

/** Builds the namespaces, routes and neighbours. The caller destroys `topo`, also on failure. */
export function buildNetwork(topo: Topology): { ns: string; ifindex: number } {
  const ns = topo.addNamespace('node');
  const peer = topo.addNamespace('peer');
  topo.addVeth(
    { ns, ifname: 'up0', addresses: [`${NODE4}/24`, `${NODE6}/64`], mac: NODE_MAC },
    { ns: peer, ifname: 'p0', mac: PEER_MAC },
  );
  topo.addVeth(
    { ns, ifname: 'up1', addresses: ['10.0.1.1/24', 'fd00:1::1/64'] },
    { ns: peer, ifname: 'p1' },
  );
  // bpf_fib_lookup() answers only for interfaces that forward.
  inNs(ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1');
  const n = (...args: string[]): string => ip('-n', ns, ...args);
  n('neigh', 'replace', GW4, 'lladdr', GW_MAC, 'dev', 'up0', 'nud', 'permanent');
  n('-6', 'neigh', 'replace', GW6, 'lladdr', GW_MAC, 'dev', 'up0', 'nud', 'permanent');
  n('neigh', 'replace', GW1_4, 'lladdr', GW1_MAC, 'dev', 'up1', 'nud', 'permanent');
  n('-6', 'neigh', 'replace', GW1_6, 'lladdr', GW1_MAC, 'dev', 'up1', 'nud', 'permanent');
  n('route', 'add', '10.1.0.0/16', 'via', GW4, 'dev', 'up0');
  n('-6', 'route', 'add', 'fd01::/64', 'via', GW6, 'dev', 'up0');
  n('route', 'add', '10.3.0.0/16', 'via', GW1_4, 'dev', 'up1');
  n('-6', 'route', 'add', 'fd03::/64', 'via', GW1_6, 'dev', 'up1');
  n('route', 'add', '10.2.0.0/16', 'via', NONEIGH4, 'dev', 'up0');
  n('-6', 'route', 'add', 'fd02::/64', 'via', NONEIGH6, 'dev', 'up0');
  // REMOTE.unreachable: no route and no default route.
  const ifindex = inNetns(ns, () => ifIndex('up0'));
  return { ns, ifindex };
}

/** Loads the datapath and fills its maps. */
export function loadWorld(): Datapath {
  const dp = loadDatapath({
    hashSeed: HASH_SEED,
    mtu: MTU,
    nodeIPv4: NODE4,
    nodeIPv6: NODE6,
    decap: true,
    icmpTooBig: true,
  });
  try {
    const m = dp.maps;
    for (const b of BACKENDS) m.setBackend(b.id, b);
    for (const vip of [...VIPS.v4, ...VIPS.v6]) {
      m.setVip(vip, FRONTENDS.filter((f) => f.vip === vip).length);
    }
    for (const f of FRONTENDS) {
      const s: ServiceEntry = { id: f.id, sourceRanges: f.sourceRanges !== undefined };
      if (f.affinity !== undefined) s.affinityTimeoutSeconds = f.affinity;
      m.setFrontend({ vip: f.vip, port: f.port, proto: f.proto }, s);
      if (f.table) m.installMaglevTable(f.id, f.table);
      for (const cidr of f.sourceRanges ?? []) m.addSourceRange(f.id, cidr);
    }
    const now = process.hrtime.bigint();
    for (const p of PINNED) {
      const key = XlbFlowKey.encode({
        src: toDatapathAddress(p.client).bytes,
        dst: toDatapathAddress(p.vip).bytes,
        sport_be: p.clientPort,
        dport_be: p.port,
        proto: p.proto === 'TCP' ? 6 : 17,
        family: p.fam === 'v4' ? 4 : 6,
      });
      const value = XlbFlow.encode({
        backend_id: p.backendId,
        service_id: p.serviceId,
        last_seen_ns: p.stale ? 1n : now,
      });
      m.map('xlb_conntrack').update(key, value);
    }
  } catch (e) {
    dp.close();
    throw e;
  }
  return dp;
}
