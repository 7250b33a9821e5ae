// Shared set-up for the datapath packet fixtures: the datapath loaded with known
// settings, one catalogue of VIPs, services and backends (documentation
// address ranges only), the TypeScript flow hash to say which backend a flow
// gets, and a runner that checks a packet's verdict, its exact output bytes and
// the counter slot it lands in.
import type { DropName, EventName, OutcomeName } from '../../control/datapath/abi.js';
import { flowHash, maglevSlot } from '../../control/datapath/flowhash.js';
import { loadDatapath, type Datapath } from '../../control/datapath/load.js';
import type { BackendEntry, L4Proto } from '../../control/datapath/maps.js';
import type { CounterValue } from '../../control/datapath/stats.js';
import type { BpfProgram, XdpActionName } from '../../native/index.js';
import { inNetns, pinThreadToCpu } from '../../native/index.js';
import { diffPackets, eth, type EthLayer } from './packet/index.js';
import {
  PacketMismatchError,
  runXdp,
  xdpMismatches,
  type XdpRun,
  type XdpRunOptions,
} from './xdp-runner.js';

export const SEED = 0x5eed1234;
/** Small enough that a 1400-byte packet cannot be encapsulated. */
export const MTU = 1400;
export const NODE4 = '198.51.100.1';
export const NODE6 = '2001:db8:ff::1';

/** Other nodes, named by what the FIB of the fixture network (node-network.ts) says about them. */
export const PEER4 = {
  tx: '198.51.100.2', // via a gateway on the ingress interface
  redirect: '198.51.100.3', // via a gateway on another interface
  noNeigh: '198.51.100.4', // via a gateway whose MAC is unknown
  noRoute: '198.51.100.5', // no route at all
  smallMtu: '198.51.100.6', // via the gateway on the ingress interface, route MTU 1300
} as const;
export const PEER6 = {
  tx: '2001:db8:ff::2',
  redirect: '2001:db8:ff::3',
  noNeigh: '2001:db8:ff::4',
  noRoute: '2001:db8:ff::5',
  smallMtu: '2001:db8:ff::6',
} as const;

export const VIP4 = '203.0.113.10';
export const VIP6 = '2001:db8:10::10';
export const CLIENT4 = '192.0.2.10';
export const CLIENT6 = '2001:db8:c::10';

/** The top-of-rack router that hands client traffic to the node, and the node's uplink. */
export const ROUTER_MAC = '02:00:00:00:00:01';
export const NODE_MAC = '02:00:00:00:00:02';
/** Ethernet header of client traffic arriving at the node. */
export const ETH_IN: EthLayer = eth({ src: ROUTER_MAC, dst: NODE_MAC });

export interface FixtureBackend extends BackendEntry {
  id: number;
}

function backend(
  id: number,
  address: string,
  port: number,
  nodeAddress: string,
  local: boolean,
): FixtureBackend {
  return { id, address, port, nodeAddress, local, state: 'active' };
}

export const BACKENDS = {
  web4a: backend(1, '203.0.113.101', 8080, NODE4, true),
  web4b: backend(2, '203.0.113.102', 8080, NODE4, true),
  dns4: backend(3, '203.0.113.103', 5353, NODE4, true),
  web6a: backend(11, '2001:db8:a0::101', 8080, NODE6, true),
  web6b: backend(12, '2001:db8:a0::102', 8080, NODE6, true),
  dns6: backend(13, '2001:db8:a0::103', 5353, NODE6, true),
  tx4: backend(21, '203.0.113.121', 8080, PEER4.tx, false),
  redirect4: backend(22, '203.0.113.122', 8080, PEER4.redirect, false),
  noNeigh4: backend(23, '203.0.113.123', 8080, PEER4.noNeigh, false),
  noRoute4: backend(24, '203.0.113.124', 8080, PEER4.noRoute, false),
  smallMtu4: backend(25, '203.0.113.125', 8080, PEER4.smallMtu, false),
  tx6: backend(31, '2001:db8:a0::121', 8080, PEER6.tx, false),
  redirect6: backend(32, '2001:db8:a0::122', 8080, PEER6.redirect, false),
  noNeigh6: backend(33, '2001:db8:a0::123', 8080, PEER6.noNeigh, false),
  noRoute6: backend(34, '2001:db8:a0::124', 8080, PEER6.noRoute, false),
  smallMtu6: backend(35, '2001:db8:a0::125', 8080, PEER6.smallMtu, false),
} as const;

/** A backend id whose slot is zeroed (gone). */
export const GONE_BACKEND = 99;

export interface FixtureService {
  id: number;
  vip: string;
  port: number;
  proto: L4Proto;
  /** Backend ids, laid out round-robin over a table of `tableSize` slots; none: no table. */
  backends?: readonly number[];
  tableSize?: number;
  sourceRanges?: readonly string[];
  affinityTimeoutSeconds?: number;
}

/** Maglev table size used by the fixtures (prime, like real tables). */
export const M = 7;

const B = BACKENDS;
export const SERVICES = {
  web4: { id: 1, vip: VIP4, port: 80, proto: 'TCP', backends: [B.web4a.id, B.web4b.id] },
  dns4: { id: 2, vip: VIP4, port: 53, proto: 'UDP', backends: [B.dns4.id] },
  web6: { id: 3, vip: VIP6, port: 80, proto: 'TCP', backends: [B.web6a.id, B.web6b.id] },
  dns6: { id: 4, vip: VIP6, port: 53, proto: 'UDP', backends: [B.dns6.id] },
  ranges4: {
    id: 5,
    vip: VIP4,
    port: 443,
    proto: 'TCP',
    backends: [B.web4a.id],
    sourceRanges: ['192.0.2.0/25', '198.51.100.64/26'],
  },
  ranges6: {
    id: 6,
    vip: VIP6,
    port: 443,
    proto: 'TCP',
    backends: [B.web6a.id],
    sourceRanges: ['2001:db8:c::/48'],
  },
  empty4: { id: 7, vip: VIP4, port: 8000, proto: 'TCP' },
  empty6: { id: 8, vip: VIP6, port: 8000, proto: 'TCP' },
  gone4: { id: 9, vip: VIP4, port: 8001, proto: 'TCP', backends: [GONE_BACKEND] },
  gone6: { id: 10, vip: VIP6, port: 8001, proto: 'TCP', backends: [GONE_BACKEND] },
  tx4: { id: 20, vip: VIP4, port: 81, proto: 'TCP', backends: [B.tx4.id] },
  redirect4: { id: 21, vip: VIP4, port: 82, proto: 'TCP', backends: [B.redirect4.id] },
  noNeigh4: { id: 22, vip: VIP4, port: 83, proto: 'TCP', backends: [B.noNeigh4.id] },
  noRoute4: { id: 23, vip: VIP4, port: 84, proto: 'TCP', backends: [B.noRoute4.id] },
  udpTx4: { id: 24, vip: VIP4, port: 54, proto: 'UDP', backends: [B.tx4.id] },
  smallMtu4: { id: 25, vip: VIP4, port: 86, proto: 'TCP', backends: [B.smallMtu4.id] },
  tx6: { id: 30, vip: VIP6, port: 81, proto: 'TCP', backends: [B.tx6.id] },
  redirect6: { id: 31, vip: VIP6, port: 82, proto: 'TCP', backends: [B.redirect6.id] },
  noNeigh6: { id: 32, vip: VIP6, port: 83, proto: 'TCP', backends: [B.noNeigh6.id] },
  noRoute6: { id: 33, vip: VIP6, port: 84, proto: 'TCP', backends: [B.noRoute6.id] },
  affinityTx6: {
    id: 34,
    vip: VIP6,
    port: 85,
    proto: 'TCP',
    backends: [B.tx6.id],
    affinityTimeoutSeconds: 60,
  },
  smallMtu6: { id: 35, vip: VIP6, port: 86, proto: 'TCP', backends: [B.smallMtu6.id] },
} as const satisfies Record<string, FixtureService>;

export function tableOf(ids: readonly number[], size = M): number[] {
  return Array.from({ length: size }, (_, i) => ids[i % ids.length]!);
}

export function backendById(id: number): FixtureBackend {
  const b = Object.values(BACKENDS).find((x) => x.id === id);
  if (b === undefined) throw new Error(`no fixture backend ${id}`);
  return b;
}

/** The backend the datapath's Maglev table gives a new flow, by the TypeScript flow hash. */
export function maglevBackend(svc: FixtureService, client: string, clientPort: number): number {
  if (svc.backends === undefined) throw new Error(`service ${svc.id} has no table`);
  const table = tableOf(svc.backends, svc.tableSize ?? M);
  const affinity = svc.affinityTimeoutSeconds !== undefined;
  const slot = maglevSlot(
    { client, clientPort, port: svc.port, proto: svc.proto },
    SEED,
    table.length,
    affinity,
  );
  return table[slot]!;
}

/** The hash the datapath puts in an IPv6 tunnel's flow label (20 bits). */
export function flowLabel(svc: FixtureService, client: string, clientPort: number): number {
  const affinity = svc.affinityTimeoutSeconds !== undefined;
  return (
    flowHash({ client, clientPort, port: svc.port, proto: svc.proto }, SEED, affinity) & 0xfffff
  );
}

/** A client port whose new flow goes to `want` (there is one among the first few thousand). */
export function clientPortFor(
  svc: FixtureService,
  client: string,
  want: number,
  from = 40000,
): number {
  for (let port = from; port < from + 5000; port++) {
    if (maglevBackend(svc, client, port) === want) return port;
  }
  throw new Error(`no client port of ${client} reaches backend ${want} of service ${svc.id}`);
}

/**
 * A pod on this node for a test file's own backends: id `id` (each file
 * keeps to its own range), 203.0.113.<id> or 2001:db8:a0::<id>, port 8080.
 */
export function localPod(id: number, family: 4 | 6): FixtureBackend {
  return {
    id,
    address: family === 4 ? `203.0.113.${id}` : `2001:db8:a0::${id}`,
    port: 8080,
    nodeAddress: family === 4 ? NODE4 : NODE6,
    state: 'active',
    local: true,
  };
}

export function installBackend(dp: Datapath, b: FixtureBackend): void {
  const { id, ...entry } = b;
  dp.maps.setBackend(id, entry);
}

export function installService(dp: Datapath, svc: FixtureService): void {
  dp.maps.setFrontend(
    { vip: svc.vip, port: svc.port, proto: svc.proto },
    {
      id: svc.id,
      sourceRanges: svc.sourceRanges !== undefined,
      ...(svc.affinityTimeoutSeconds === undefined
        ? {}
        : { affinityTimeoutSeconds: svc.affinityTimeoutSeconds }),
    },
  );
  for (const range of svc.sourceRanges ?? []) dp.maps.addSourceRange(svc.id, range);
  if (svc.backends !== undefined) {
    dp.maps.installMaglevTable(svc.id, tableOf(svc.backends, svc.tableSize ?? M));
  }
}

/**
 * Loads the datapath with the fixture settings (seed, node addresses, MTU 1400)
 * and installs every VIP, backend and service of the catalogue.
 */
export function loadFixtureDatapath(): Datapath {
  // Test runs execute on the calling CPU and the flow cache is per CPU: a
  // flow's next packet meets its cached verdict only on the same CPU, as
  // RSS arranges for real traffic.
  pinThreadToCpu();
  const dp = loadDatapath({ hashSeed: SEED, mtu: MTU, nodeIPv4: NODE4, nodeIPv6: NODE6 });
  try {
    dp.maps.setVip(VIP4, Object.values(SERVICES).filter((s) => s.vip === VIP4).length);
    dp.maps.setVip(VIP6, Object.values(SERVICES).filter((s) => s.vip === VIP6).length);
    for (const b of Object.values(BACKENDS)) installBackend(dp, b);
    dp.maps.clearBackend(GONE_BACKEND);
    for (const svc of Object.values(SERVICES)) installService(dp, svc);
  } catch (e) {
    dp.close();
    throw e;
  }
  return dp;
}

// ---- counters ----

export interface CounterSnapshot {
  drops: Map<DropName, CounterValue>;
  outcomes: Map<OutcomeName, CounterValue>;
  events: Map<EventName, CounterValue>;
}

export function snapshot(dp: Datapath): CounterSnapshot {
  const rows = <N extends string>(r: Array<{ name: N } & CounterValue>): Map<N, CounterValue> =>
    new Map(r.map((x) => [x.name, { packets: x.packets, bytes: x.bytes }]));
  return {
    drops: rows(dp.maps.drops()),
    outcomes: rows(dp.maps.outcomes()),
    events: rows(dp.maps.events()),
  };
}

export type Slot = { drop: DropName } | { outcome: OutcomeName };
export type EventCounts = Partial<Record<EventName, number>>;

export function slotName(s: Slot): string {
  return 'drop' in s ? `drop ${s.drop}` : `outcome ${s.outcome}`;
}

interface SlotGrowth {
  label: string;
  packets: bigint;
  bytes: bigint;
}

/** Every drop or outcome slot that changed between two snapshots. */
function grownSlots(before: CounterSnapshot, after: CounterSnapshot): SlotGrowth[] {
  const grown: SlotGrowth[] = [];
  const scan = <N extends string>(
    kind: string,
    b: Map<N, CounterValue>,
    a: Map<N, CounterValue>,
  ) => {
    for (const [name, now] of a) {
      const was = b.get(name)!;
      const packets = now.packets - was.packets;
      const bytes = now.bytes - was.bytes;
      if (packets !== 0n || bytes !== 0n) grown.push({ label: `${kind} ${name}`, packets, bytes });
    }
  };
  scan('drop', before.drops, after.drops);
  scan('outcome', before.outcomes, after.outcomes);
  return grown;
}

/** Events that did not grow by exactly `events` (absent: by nothing). */
function eventMismatches(
  before: CounterSnapshot,
  after: CounterSnapshot,
  events: EventCounts,
): string[] {
  const problems: string[] = [];
  for (const [name, now] of after.events) {
    const delta = Number(now.packets - before.events.get(name)!.packets);
    const want = events[name] ?? 0;
    if (delta !== want) problems.push(`event ${name}: expected +${want}, got +${delta}`);
  }
  return problems;
}

/**
 * What changed between two snapshots, checked against: exactly one drop or
 * outcome slot grew, by one packet of `bytes`; the events grew by exactly
 * `events` (every other event unchanged).
 */
export function counterMismatches(
  before: CounterSnapshot,
  after: CounterSnapshot,
  slot: Slot,
  bytes: number,
  events: EventCounts,
): string[] {
  const want = slotName(slot);
  const grown = grownSlots(before, after);
  const only = grown.length === 1 ? grown[0]! : undefined;
  const problems: string[] = [];
  if (only?.label !== want || only.packets !== 1n || only.bytes !== BigInt(bytes)) {
    const got = grown.map((g) => `${g.label} +${g.packets} packets +${g.bytes} bytes`);
    problems.push(
      `counter slot: expected only ${want} +1 packet +${bytes} bytes, got: ${got.join('; ') || 'none'}`,
    );
  }
  return [...problems, ...eventMismatches(before, after, events)];
}

export interface PacketExpectation {
  verdict: XdpActionName;
  /** Exact output bytes; omit to require the input unchanged. */
  output?: Buffer;
  slot: Slot;
  events?: EventCounts;
}

/**
 * Runs one frame through the XDP program and checks verdict, output bytes,
 * counter slot and events together, so a failure lists everything that is off.
 */
export function expectPacket(
  dp: Datapath,
  input: Buffer,
  expected: PacketExpectation,
  options: XdpRunOptions = {},
): XdpRun {
  const before = snapshot(dp);
  const run = runXdp(dp.xdp, input, options);
  const after = snapshot(dp);
  const problems = [
    ...xdpMismatches(run, input, expected),
    ...counterMismatches(before, after, expected.slot, input.length, expected.events ?? {}),
  ];
  if (problems.length > 0) throw new PacketMismatchError(problems.join('\n'));
  return run;
}

// ---- tc ----

/** TC_ACT_OK: the tc program lets every packet go on. */
export const TC_ACT_OK = 0;

export interface TcExpectation {
  /** Exact output bytes; omit to require the input unchanged. */
  output?: Buffer;
  events?: EventCounts;
}

/** Runs one frame through the tc egress program (BPF_PROG_TEST_RUN); checks TC_ACT_OK, bytes, events. */
export function expectTc(
  dp: Datapath,
  prog: BpfProgram,
  input: Buffer,
  expected: TcExpectation,
  netns?: string,
): Buffer {
  const before = snapshot(dp);
  const exec = () => prog.testRun({ data: input });
  const r = netns === undefined ? exec() : inNetns(netns, exec);
  const after = snapshot(dp);
  const problems: string[] = [];
  if (r.retval !== TC_ACT_OK) problems.push(`tc action: expected ${TC_ACT_OK}, got ${r.retval}`);
  const diff = diffPackets(expected.output ?? input, r.data);
  if (diff !== undefined) problems.push(`output packet differs:\n${diff}`);
  problems.push(...eventMismatches(before, after, expected.events ?? {}));
  const slots = grownSlots(before, after);
  if (slots.length > 0)
    problems.push(`tc touched XDP slots: ${slots.map((g) => g.label).join(', ')}`);
  if (problems.length > 0) throw new PacketMismatchError(problems.join('\n'));
  return r.data;
}
