// Throughput of an XDP program on the receiving end of a veth, driven by the
// live-frames generator:
//
//   gen ns            dut ns                          sink ns
//   eth0 (generator) ─ eth0 [receiver under test] eth1 ─ eth0 [bench_drop]
//
// The receiver may drop, pass, or redirect into eth1; the sink end runs an
// XDP program because a veth only takes redirected frames when its peer has
// one (or GRO). Everything runs on the generator's CPU: the kernel processes
// the receiving NAPI in the softirq that follows each live-frames batch, so a
// figure is the single-core cost of generating plus receiving plus (for a
// redirect) forwarding a frame.
//
// The rate is computed from the receiver program's own counter: frames it
// actually processed, divided by the generator's wall time.
import { ip, run } from '../../control/topology/ip.js';
import { Topology } from '../../control/topology/topology.js';
import { ifIndex, inNetns, xdp } from '../../native/index.js';
import { BaselineReceiver, type Receiver } from './baselines.js';
import { type GenerateResult, Generator } from './generator.js';
import { sourcePort } from './frame.js';

export type { Receiver } from './baselines.js';

export interface Traffic {
  frame: Buffer;
  packets: number;
  batchSize?: number;
  flows?: number;
  /** First source port with flows > 1; default the frame's own. */
  baseSport?: number;
  /** Restore the template on every frame (for receivers that rewrite frames). */
  restore?: boolean;
  timeLimitSeconds?: number;
}

export interface Measurement {
  /** Frames the generator redirected into gen/eth0 (its own counter). */
  sent: number;
  /** Frames the receiver program processed during the run (its own counter). */
  processed: number;
  /**
   * Frames the veth refused to queue to the receiver (dut/eth0 rx_dropped,
   * which counts the peer's failed XDP transmissions), e.g. a full ring.
   */
  refused: number;
  /** Frames the sink's XDP program saw: what the receiver forwarded to eth1. */
  sinkReceived: number;
  /** Generator wall time. */
  seconds: number;
  /** processed / seconds. */
  pps: number;
  /** sent / seconds. */
  sentPps: number;
}

export interface VethBenchOptions {
  /** Namespace name prefix (names are PREFIX-TAG-gen/dut/sink); default 'xlbb'. */
  prefix?: string;
}

/** Waits synchronously; the harness is synchronous on purpose (see Generator.run). */
function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export class VethBench implements Disposable {
  readonly gen: string;
  readonly dut: string;
  readonly sink: string;
  /** Interface names: generator side, dut ingress, dut egress (to the sink), sink. */
  readonly genIf = 'eth0';
  readonly dutIn = 'eth0';
  readonly dutOut = 'eth1';
  readonly sinkIf = 'eth0';
  /** ifindex of dut/eth1 in the dut namespace: the target for a redirecting receiver. */
  readonly dutOutIfindex: number;
  private readonly dutInIfindex: number;
  private readonly sinkReceiver: BaselineReceiver;

  private constructor(private readonly topo: Topology) {
    this.gen = topo.addNamespace('gen');
    this.dut = topo.addNamespace('dut');
    this.sink = topo.addNamespace('sink');
    // No IPv6 on these links: router solicitations and MLD reports sent when
    // a link comes up would reach the receiver and spoil exact counts.
    for (const ns of [this.gen, this.dut, this.sink]) {
      run('ip', [
        'netns',
        'exec',
        ns,
        'sysctl',
        '-qw',
        'net.ipv6.conf.all.disable_ipv6=1',
        'net.ipv6.conf.default.disable_ipv6=1',
      ]);
    }
    topo.addVeth({ ns: this.gen, ifname: this.genIf }, { ns: this.dut, ifname: this.dutIn });
    topo.addVeth({ ns: this.dut, ifname: this.dutOut }, { ns: this.sink, ifname: this.sinkIf });
    this.dutInIfindex = inNetns(this.dut, () => ifIndex(this.dutIn));
    this.dutOutIfindex = inNetns(this.dut, () => ifIndex(this.dutOut));

    this.sinkReceiver = BaselineReceiver.load('drop');
    topo.onDestroy('sink receiver program', () => this.sinkReceiver.close());
    const sinkIfindex = inNetns(this.sink, () => ifIndex(this.sinkIf));
    inNetns(this.sink, () => xdp.attach(sinkIfindex, this.sinkReceiver.program, 'native'));
    topo.onDestroy(`xdp on ${this.sink}/${this.sinkIf}`, () =>
      inNetns(this.sink, () => xdp.detach(sinkIfindex, 'native')),
    );
  }

  /** Builds the three namespaces and two veth pairs; on failure removes what it built. */
  static create(options: VethBenchOptions = {}): VethBench {
    const topo = new Topology(options.prefix ?? 'xlbb');
    try {
      return new VethBench(topo);
    } catch (e) {
      topo.destroy();
      throw e;
    }
  }

  /** Frames the sink's XDP program has seen so far. */
  sinkReceived(): number {
    return this.sinkReceiver.processed();
  }

  private dutInDropped(): number {
    const out = ip('-n', this.dut, '-s', '-j', 'link', 'show', 'dev', this.dutIn);
    const [link] = JSON.parse(out) as Array<{ stats64?: { rx?: { dropped?: number } } }>;
    return link?.stats64?.rx?.dropped ?? 0;
  }

  /**
   * Attaches receiver.program to dut/eth0 (native XDP), sends the traffic,
   * detaches it again and reports what the receiver processed.
   */
  measure(receiver: Receiver, traffic: Traffic): Measurement {
    using gen = Generator.load({
      ns: this.gen,
      ifname: this.genIf,
      flows: traffic.flows ?? 0,
      baseSport: traffic.baseSport ?? sourcePort(traffic.frame) ?? 1024,
      restore: traffic.restore ?? false,
    });
    const processedBefore = receiver.processed();
    const sinkBefore = this.sinkReceived();
    const droppedBefore = this.dutInDropped();
    inNetns(this.dut, () => xdp.attach(this.dutInIfindex, receiver.program, 'native'));
    let result: GenerateResult;
    let processed: number;
    try {
      result = gen.run(traffic);
      // The receiving side runs in softirq right after each batch, unless the
      // kernel deferred it to ksoftirqd: wait until the counter stops moving.
      processed = receiver.processed();
      for (let i = 0; i < 50; i++) {
        sleepMs(10);
        const now = receiver.processed();
        if (now === processed) break;
        processed = now;
      }
    } finally {
      inNetns(this.dut, () => xdp.detach(this.dutInIfindex, 'native'));
    }
    processed -= processedBefore;
    const { sent, seconds } = result;
    return {
      sent,
      processed,
      refused: this.dutInDropped() - droppedBefore,
      sinkReceived: this.sinkReceived() - sinkBefore,
      seconds,
      pps: seconds > 0 ? processed / seconds : 0,
      sentPps: seconds > 0 ? sent / seconds : 0,
    };
  }

  /** Removes the namespaces, links and programs it made; safe to call twice. */
  destroy(): void {
    this.topo.destroy();
  }

  [Symbol.dispose](): void {
    this.destroy();
  }
}

/**
 * One measurement in a fresh topology: builds it, makes the receiver (which
 * may need the bench, e.g. dutOutIfindex for a redirect), measures, and tears
 * everything down, also when making or reading the receiver throws.
 */
export function runVethBench(
  makeReceiver: (bench: VethBench) => Receiver & { close?(): void },
  traffic: Traffic,
  options: VethBenchOptions = {},
): Measurement {
  using bench = VethBench.create(options);
  const receiver = makeReceiver(bench);
  try {
    return bench.measure(receiver, traffic);
  } finally {
    receiver.close?.();
  }
}
