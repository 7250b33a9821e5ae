// Cost per packet of each path of xlb_xdp, measured in the kernel with
// BPF_PROG_TEST_RUN, next to bench_drop (count, XDP_DROP) measured the same
// way in the same rounds.
//
// Two methods, because a non-live test run with repeat > 1 runs the program
// again and again on the SAME buffer without restoring it:
//   - loop:   one call with `repeat` repetitions; the kernel's mean. Only for
//             packets the program leaves as they were (not-a-VIP pass, and a
//             DNAT whose backend is the VIP's own address and port).
//   - single: many calls with repeat 1, each on a fresh copy of the frame;
//             the mean of the kernel's per-call durations. Each of those
//             includes one clock read and follows a syscall, so it is higher
//             than the loop figure for the same path, and the same for the
//             baseline.
// Every batch is checked against the datapath's counters (verify.ts) and
// every call's return value; a batch that took another path throws.
//
// All runs happen inside a namespace with a veth (the uplink), an address, a
// route to the other nodes via a gateway with a permanent neighbour entry,
// and forwarding on, with ctx.ingress_ifindex = the uplink: the encapsulate
// path's FIB lookup then succeeds and sends the frame back out (XDP_TX).
import { readFileSync } from 'node:fs';

import { flowCacheSlot } from '../../control/datapath/flowcache.js';
import { loadDatapath, type Datapath } from '../../control/datapath/load.js';
import { ip, run } from '../../control/topology/ip.js';
import { Topology } from '../../control/topology/topology.js';
import {
  ifIndex,
  inNetns,
  pinThreadToCpu,
  XdpAction,
  xdpActionName,
  type BpfProgram,
} from '../../native/index.js';
import { BaselineReceiver } from '../pktgen/baselines.js';
import {
  CLIENT,
  CLIENT_PORT,
  configureDatapath,
  datapathSettings,
  GATEWAY_IPV4,
  GATEWAY_IPV6,
  GATEWAY_MAC,
  ipipFrame,
  missFrame,
  NODE_IPV4,
  NODE_IPV6,
  NOT_A_VIP,
  PORT,
  REMOTE_NODE,
  REMOTE_NODE_IPV6_NET,
  REMOTE_NODE_NET,
  tcpFrame,
  UPLINK_PREFIX,
  VIP_IPV6,
  VIP_LOCAL,
  VIP_REMOTE,
  VIP_REMOTE_IPV6,
  VIP_SELF,
  xdpContext,
} from './plan.js';
import { checkPath, delta, snapshot, WrongPathError, type PathExpectation } from './verify.js';

export type Method = 'single' | 'loop';

export interface PathCase {
  key: string;
  /** What the path does, for figure names. */
  label: string;
  method: Method;
  /** The frames of the next n calls (loop: the first is the frame repeated). */
  frames(n: number): Buffer[];
  /** Sent once before measuring, e.g. to put the flow into the connection table. */
  prime?: Buffer[];
  retval: number;
  expect: PathExpectation;
}

const same =
  (frame: Buffer) =>
  (n: number): Buffer[] =>
    new Array<Buffer>(n).fill(frame);

/** Frames of two flows to `vip` from CLIENT that share a flow cache slot. */
function collidingFlows(vip: string): [Buffer, Buffer] {
  const slot = (client: string, clientPort: number): number =>
    flowCacheSlot({ client, clientPort, vip, port: PORT, proto: 'TCP' });
  // Not CLIENT_PORT: the other paths' flows must not share the slot.
  const first = CLIENT_PORT + 1000;
  const want = slot(CLIENT, first);
  for (let host = 1; host < 255; host++) {
    const client = `198.51.100.${host}`;
    for (let port = 1024; port < 65536; port++) {
      if (slot(client, port) === want && (client !== CLIENT || port !== first)) {
        return [tcpFrame(vip, { sport: first }), tcpFrame(vip, { src: client, sport: port })];
      }
    }
  }
  throw new Error('no two flows share a flow cache slot');
}

/** The paths of xlb_xdp the benchmark measures, each with its proof of path. */
export function pathCases(): PathCase[] {
  const hit = tcpFrame(VIP_LOCAL);
  const encap = tcpFrame(VIP_REMOTE);
  const encap6 = tcpFrame(VIP_REMOTE_IPV6);
  const decap = ipipFrame(tcpFrame(VIP_LOCAL, { sport: 40001 }), REMOTE_NODE, NODE_IPV4);
  const v6 = tcpFrame(VIP_IPV6);
  const notVip = tcpFrame(NOT_A_VIP);
  const self = tcpFrame(VIP_SELF);
  let nextMiss = 0;
  // Established flows: a flow cache hit. The full-path hit (the cache slot
  // taken by another flow, or the first packet a second after the last
  // check) alternates two flows that share a cache slot.
  // (A cached verdict is re-checked by the full path once a second, so a
  // long batch holds a few connection-table hits too.)
  const cached = { oneOf: ['FLOW_CACHE_HIT', 'CONNTRACK_HIT'] } as const;
  const [slotA, slotB] = collidingFlows(VIP_LOCAL);
  let nextFull = 0;
  return [
    {
      key: 'hit',
      label: 'conn hit (flow cache), TCP/IPv4, local backend: DNAT, PASS',
      method: 'single',
      frames: same(hit),
      prime: [hit],
      retval: XdpAction.pass,
      expect: { outcome: 'LOCAL', ...cached },
    },
    {
      key: 'hitFull',
      label:
        'conn hit (full path: cache slot taken), TCP/IPv4, local backend: frontend + conntrack lookups, DNAT, PASS',
      method: 'single',
      frames: (n) => Array.from({ length: n }, () => (nextFull++ % 2 ? slotB : slotA)),
      prime: [slotA, slotB],
      retval: XdpAction.pass,
      expect: { outcome: 'LOCAL', events: { CONNTRACK_HIT: 1 } },
    },
    {
      key: 'miss',
      label: 'conn miss (a new flow each packet): Maglev, conntrack + reverse insert, DNAT, PASS',
      method: 'single',
      frames: (n) => Array.from({ length: n }, () => missFrame(nextMiss++)),
      retval: XdpAction.pass,
      expect: { outcome: 'LOCAL', events: { CONNTRACK_MISS: 1 } },
    },
    {
      key: 'encap',
      label: 'encapsulate IPIP, remote backend (flow cache hit, cached next hop): XDP_TX',
      method: 'single',
      frames: same(encap),
      prime: [encap],
      retval: XdpAction.tx,
      expect: { outcome: 'ENCAP_TX', ...cached },
    },
    {
      key: 'encap6',
      label: 'encapsulate IPv6-in-IPv6, remote backend (flow cache hit, cached next hop): XDP_TX',
      method: 'single',
      frames: same(encap6),
      prime: [encap6],
      retval: XdpAction.tx,
      expect: { outcome: 'ENCAP_TX', ...cached },
    },
    {
      key: 'decap',
      label: 'decapsulate IPIP, inner to a VIP, local backend (flow cache hit): DNAT, PASS',
      method: 'single',
      frames: same(decap),
      prime: [decap],
      retval: XdpAction.pass,
      expect: { outcome: 'LOCAL', events: { DECAPSULATED: 1 }, ...cached },
    },
    {
      key: 'ipv6',
      label: 'conn hit (flow cache), TCP/IPv6, local backend: DNAT, PASS',
      method: 'single',
      frames: same(v6),
      prime: [v6],
      retval: XdpAction.pass,
      expect: { outcome: 'LOCAL', ...cached },
    },
    {
      key: 'notVip',
      label: 'not a VIP, TCP/IPv4: PASS untouched',
      method: 'single',
      frames: same(notVip),
      retval: XdpAction.pass,
      expect: { outcome: 'PASS_NOT_VIP' },
    },
    {
      key: 'notVipLoop',
      label: 'not a VIP, TCP/IPv4: PASS untouched',
      method: 'loop',
      frames: same(notVip),
      retval: XdpAction.pass,
      expect: { outcome: 'PASS_NOT_VIP' },
    },
    {
      key: 'hitLoop',
      label:
        'conn hit (flow cache), TCP/IPv4, local backend = the VIP:port (DNAT writes the same bytes), PASS',
      method: 'loop',
      frames: same(self),
      prime: [self],
      retval: XdpAction.pass,
      expect: { outcome: 'LOCAL', ...cached },
    },
  ];
}

/** The frame bench_drop runs on: the hit path's. */
export const baselineFrame = (): Buffer => tcpFrame(VIP_LOCAL);

/** Namespace, datapath and baseline for test runs; destroy() undoes all of it. */
export class TestRunLab implements Disposable {
  readonly ns: string;
  readonly ifindex: number;
  readonly dp: Datapath;
  readonly drop: BaselineReceiver;

  private constructor(private readonly topo: Topology) {
    this.ns = topo.addNamespace('tr');
    topo.addVeth(
      {
        ns: this.ns,
        ifname: 'eth0',
        addresses: [`${NODE_IPV4}/${UPLINK_PREFIX}`, `${NODE_IPV6}/64`],
      },
      { ns: this.ns, ifname: 'eth1' },
    );
    run('ip', [
      'netns',
      'exec',
      this.ns,
      'sysctl',
      '-qw',
      'net.ipv4.conf.all.forwarding=1',
      'net.ipv6.conf.all.forwarding=1',
    ]);
    ip('-n', this.ns, 'route', 'add', REMOTE_NODE_NET, 'via', GATEWAY_IPV4, 'dev', 'eth0');
    ip(
      '-n',
      this.ns,
      '-6',
      'route',
      'add',
      REMOTE_NODE_IPV6_NET,
      'via',
      GATEWAY_IPV6,
      'dev',
      'eth0',
    );
    for (const gateway of [GATEWAY_IPV4, GATEWAY_IPV6]) {
      ip(
        '-n',
        this.ns,
        'neigh',
        'replace',
        gateway,
        'lladdr',
        GATEWAY_MAC,
        'dev',
        'eth0',
        'nud',
        'permanent',
      );
    }
    this.ifindex = inNetns(this.ns, () => ifIndex('eth0'));
    this.dp = loadDatapath(datapathSettings);
    topo.onDestroy('datapath', () => this.dp.close());
    configureDatapath(this.dp);
    this.drop = BaselineReceiver.load('drop');
    topo.onDestroy('bench_drop', () => this.drop.close());
  }

  static create(prefix = 'xlbd'): TestRunLab {
    // Test runs execute on the calling CPU; the flow cache is per CPU, so a
    // flow's packets meet their cached verdict only from the same CPU (as
    // RSS arranges for real traffic).
    pinThreadToCpu();
    const topo = new Topology(prefix);
    try {
      return new TestRunLab(topo);
    } catch (e) {
      topo.destroy();
      throw e;
    }
  }

  /**
   * Runs `prog` once per frame (repeat 1), or once with `repeat` repetitions
   * on frames[0], in the namespace with the uplink as ingress interface.
   * Returns the mean kernel-measured ns per repetition. Throws unless every
   * call returned `retval`.
   */
  runBatch(what: string, prog: BpfProgram, frames: Buffer[], retval: number, repeat = 1): number {
    if (frames.length === 0) throw new RangeError('no frames');
    const contexts = new Map<number, Buffer>();
    const ctxFor = (f: Buffer): Buffer => {
      let c = contexts.get(f.length);
      if (!c) contexts.set(f.length, (c = xdpContext(f.length, this.ifindex)));
      return c;
    };
    let total = 0;
    const wrong = new Map<number, number>();
    inNetns(this.ns, () => {
      for (const frame of frames) {
        const r = prog.testRun({ data: frame, ctx: ctxFor(frame), repeat });
        if (r.retval !== retval) wrong.set(r.retval, (wrong.get(r.retval) ?? 0) + 1);
        total += r.durationNs;
      }
    });
    if (wrong.size > 0) {
      const list = [...wrong].map(([v, n]) => `${n}x ${xdpActionName(v)}`).join(', ');
      throw new WrongPathError(
        `${what}: expected ${xdpActionName(retval)} from every call, got ${list}`,
      );
    }
    return total / frames.length;
  }

  /** One verified batch of a path: n calls (single) or one call of n repetitions (loop). */
  measurePath(c: PathCase, n: number): number {
    const before = snapshot(this.dp);
    const ns =
      c.method === 'single'
        ? this.runBatch(c.key, this.dp.xdp, c.frames(n), c.retval)
        : this.runBatch(c.key, this.dp.xdp, c.frames(1), c.retval, n);
    checkPath(`${c.key} (${c.method})`, delta(before, snapshot(this.dp)), n, c.expect);
    return ns;
  }

  /** One batch of bench_drop, checked against its own counter. */
  measureBaseline(method: Method, n: number, frame = baselineFrame()): number {
    const before = this.drop.processed();
    const ns =
      method === 'single'
        ? this.runBatch('bench_drop', this.drop.program, same(frame)(n), XdpAction.drop)
        : this.runBatch('bench_drop', this.drop.program, [frame], XdpAction.drop, n);
    const counted = this.drop.processed() - before;
    if (counted !== n) throw new WrongPathError(`bench_drop counted ${counted} of ${n} packets`);
    return ns;
  }

  /** Sends the case's priming frames (unchecked: the first packet of a flow is a miss). */
  prime(c: PathCase): void {
    if (!c.prime?.length) return;
    inNetns(this.ns, () => {
      for (const frame of c.prime!) {
        this.dp.xdp.testRun({ data: frame, ctx: xdpContext(frame.length, this.ifindex) });
      }
    });
  }

  destroy(): void {
    this.topo.destroy();
  }

  [Symbol.dispose](): void {
    this.destroy();
  }
}

export interface TestRunOptions {
  rounds: number;
  /** Calls per single-shot batch. */
  calls: number;
  /** Repetitions per loop batch. */
  repeat: number;
  /** Namespace prefix. */
  prefix?: string;
  /** Only these paths (by key); default all. */
  only?: string[];
}

export interface TestRunResult {
  /** Median over rounds of each batch's mean ns/packet, by path key. */
  paths: Map<string, { case: PathCase; ns: number }>;
  baseline: Record<Method, number>;
  /** Instructions the verifier processed when loading xlb_xdp. */
  verifiedInsns: number | undefined;
}

export function median(xs: number[]): number {
  if (xs.length === 0) throw new RangeError('median of nothing');
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** verified_insns from the program's fdinfo, or undefined if the kernel does not say. */
export function verifiedInsns(prog: BpfProgram): number | undefined {
  try {
    const info = readFileSync(`/proc/self/fdinfo/${prog.fd}`, 'utf8');
    const m = /^verified_insns:\s*(\d+)/m.exec(info);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Every path and the baseline, `rounds` times, interleaved so drift in the
 * machine's load touches all alike; a warm-up batch first.
 */
export function measureTestRun(o: TestRunOptions): TestRunResult {
  using lab = TestRunLab.create(o.prefix);
  const cases = pathCases().filter((c) => !o.only || o.only.includes(c.key));
  const size = (m: Method): number => (m === 'single' ? o.calls : o.repeat);
  for (const c of cases) lab.prime(c);
  // Warm-up, checked like the rest.
  for (const m of ['single', 'loop'] as const) lab.measureBaseline(m, Math.min(size(m), 1000));
  for (const c of cases) lab.measurePath(c, Math.min(size(c.method), 1000));

  const samples = new Map<string, number[]>(cases.map((c) => [c.key, []]));
  const base: Record<Method, number[]> = { single: [], loop: [] };
  for (let r = 0; r < o.rounds; r++) {
    for (const m of ['single', 'loop'] as const) {
      if (!cases.some((c) => c.method === m)) continue;
      base[m].push(lab.measureBaseline(m, size(m)));
      for (const c of cases.filter((x) => x.method === m)) {
        samples.get(c.key)!.push(lab.measurePath(c, size(m)));
      }
    }
  }
  return {
    paths: new Map(cases.map((c) => [c.key, { case: c, ns: median(samples.get(c.key)!) }])),
    baseline: {
      single: base.single.length ? median(base.single) : NaN,
      loop: base.loop.length ? median(base.loop) : NaN,
    },
    verifiedInsns: verifiedInsns(lab.dp.xdp),
  };
}
