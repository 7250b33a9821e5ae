// The project's packet generator: bpf/pktgen.c run with BPF_PROG_TEST_RUN in
// live-frames mode, which transmits every frame the program redirects.
//
// Live frames are injected in the network namespace of the thread that makes
// the bpf() call (the redirect target is looked up there), so each run is a
// synchronous test_run inside inNetns(). testRunAsync() would run on a libuv
// worker thread, which stays in the process's own namespace.
import { bpfObjectPath } from '../../control/paths.js';
import {
  BpfObject,
  type BpfMap,
  type BpfProgram,
  ifIndex,
  inNetns,
  TestRunFlag,
} from '../../native/index.js';
import { sourcePort } from './frame.js';

/** Frames per test_run call: each call blocks the thread, so keep it well under a second or two. */
export const MAX_REPEAT = 2_000_000;
/** The kernel's limit for batch_size in live-frames mode (TEST_XDP_MAX_BATCH). */
export const MAX_BATCH = 256;
/** Kernel default batch: the NAPI weight. */
export const DEFAULT_BATCH = 64;
/** Largest frame the template restore handles (PKTGEN_TEMPLATE_MAX in bpf/pktgen.c). */
export const TEMPLATE_MAX = 256;
/** The largest flow count the source-port rewrite supports. */
export const MAX_FLOWS = 65536;
const DEFAULT_TIME_LIMIT_SECONDS = 60;

export interface GeneratorSettings {
  /** Network namespace that owns ifname. */
  ns: string;
  /** Interface the frames go out of. */
  ifname: string;
  /** Number of distinct L4 source ports to cycle through; 0 or 1 leaves the frame alone. */
  flows?: number;
  /** First source port when flows > 1 (ports baseSport .. baseSport + flows - 1); default 1024. */
  baseSport?: number;
  /**
   * Write the template over every frame before sending it: needed when the
   * receiver rewrites frames, since a recycled page keeps what it wrote.
   * Frames of at most TEMPLATE_MAX bytes.
   */
  restore?: boolean;
}

export interface RunOptions {
  /** Template frame, from the Ethernet header on. */
  frame: Buffer;
  packets: number;
  /** Frames per live-frames batch, 1..256 (default 64). */
  batchSize?: number;
  /** Stop after this long even if fewer frames were sent (default 60 s). */
  timeLimitSeconds?: number;
}

export interface GenerateResult {
  /** Frames the program redirected, from its own per-CPU counter. */
  sent: number;
  /** Wall time of the test_run calls. */
  seconds: number;
}

export type GenerateOptions = GeneratorSettings & RunOptions;

/** Sum of slot `key` of a per-CPU array of struct xlb_counter (packets first). */
export function perCpuPackets(map: BpfMap, key: number): number {
  const k = Buffer.alloc(4);
  k.writeUInt32LE(key);
  const values = map.lookupPerCpu(k) ?? [];
  return Number(values.reduce((sum, v) => sum + v.readBigUInt64LE(0), 0n));
}

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v);
  return b;
}

function u16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(v);
  return b;
}

function checkInteger(name: string, v: number, min: number, max: number): void {
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(`${name} must be an integer in [${min}, ${max}], got ${v}`);
  }
}

/** A loaded generator aimed at one interface; run it as often as needed, then close it. */
export class Generator implements Disposable {
  private constructor(
    readonly settings: Readonly<GeneratorSettings>,
    readonly ifindex: number,
    private readonly prog: BpfProgram,
    private readonly stats: BpfMap,
    private readonly template: BpfMap,
  ) {}

  static load(settings: GeneratorSettings): Generator {
    const flows = settings.flows ?? 0;
    const baseSport = settings.baseSport ?? 1024;
    checkInteger('flows', flows, 0, MAX_FLOWS);
    checkInteger('baseSport', baseSport, 0, 65535);
    if (flows > 1 && baseSport + flows - 1 > 65535) {
      throw new RangeError(`source ports ${baseSport} + ${flows} flows run past 65535`);
    }
    const ifindex = inNetns(settings.ns, () => ifIndex(settings.ifname));
    using obj = BpfObject.open(bpfObjectPath('pktgen'));
    obj.setGlobal('target_ifindex', u32(ifindex));
    obj.setGlobal('flows', u32(flows));
    obj.setGlobal('base_sport', u16(baseSport));
    obj.setGlobal('restore', Buffer.from([settings.restore ? 1 : 0]));
    obj.load();
    const prog = obj.program('xlb_pktgen');
    const maps: BpfMap[] = [];
    try {
      maps.push(obj.map('pktgen_stats'), obj.map('pktgen_template'));
      return new Generator({ ...settings, flows, baseSport }, ifindex, prog, maps[0]!, maps[1]!);
    } catch (e) {
      for (const m of maps) m.close();
      prog.close();
      throw e;
    }
  }

  /** Frames redirected since load, summed over CPUs. */
  generated(): number {
    return perCpuPackets(this.stats, 0);
  }

  /**
   * Sends `packets` copies of the frame (in calls of at most MAX_REPEAT) and
   * returns when done or when the time limit is reached. Blocks the thread.
   */
  run(options: RunOptions): GenerateResult {
    const { frame, packets } = options;
    const batchSize = options.batchSize ?? DEFAULT_BATCH;
    const limitNs = BigInt(
      Math.round((options.timeLimitSeconds ?? DEFAULT_TIME_LIMIT_SECONDS) * 1e9),
    );
    checkInteger('packets', packets, 0, Number.MAX_SAFE_INTEGER);
    checkInteger('batchSize', batchSize, 1, MAX_BATCH);
    if (frame.length < 14)
      throw new RangeError(`a ${frame.length}-byte frame has no Ethernet header`);

    if (this.settings.restore) {
      if (frame.length > TEMPLATE_MAX) {
        throw new RangeError(
          `restore handles frames of at most ${TEMPLATE_MAX} bytes, got ${frame.length}`,
        );
      }
      const value = Buffer.alloc(4 + TEMPLATE_MAX);
      value.writeUInt32LE(frame.length, 0);
      frame.copy(value, 4);
      this.template.update(Buffer.alloc(4), value);
    }
    const before = this.generated();
    const start = process.hrtime.bigint();
    let end = start;
    inNetns(this.settings.ns, () => {
      // The program redirects to a bare ifindex, which means whatever device
      // has it in the namespace the call runs in: make sure it is still ours.
      const now = ifIndex(this.settings.ifname);
      if (now !== this.ifindex) {
        throw new Error(
          `${this.settings.ns}/${this.settings.ifname} is now ifindex ${now}, not ${this.ifindex}`,
        );
      }
      let left = packets;
      while (left > 0 && end - start < limitNs) {
        const repeat = Math.min(left, MAX_REPEAT);
        // No data_out: live mode transmits frames instead of returning one.
        // (The kernel's documentation says it refuses data_out here; 6.18
        // accepts it, but there is nothing useful to copy back.)
        this.prog.testRun({
          data: frame,
          dataOutSize: 0,
          repeat,
          flags: TestRunFlag.xdpLiveFrames,
          batchSize,
        });
        left -= repeat;
        end = process.hrtime.bigint();
      }
    });
    return { sent: this.generated() - before, seconds: Number(end - start) / 1e9 };
  }

  close(): void {
    this.prog.close();
    this.stats.close();
    this.template.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Loads the generator, sends `packets` copies of `frame` out of ns/ifname and
 * unloads it. With flows > 1 the source ports start at the frame's own
 * (unless baseSport says otherwise).
 */
export function generate(options: GenerateOptions): GenerateResult {
  using gen = Generator.load({
    ...options,
    baseSport: options.baseSport ?? sourcePort(options.frame) ?? 1024,
  });
  return gen.run(options);
}
