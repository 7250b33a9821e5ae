// The baseline receivers of bpf/test/bench_baselines.c: count, then drop,
// redirect (or XDP_TX) or pass. Each reads its own per-CPU counter back, so a
// benchmark reports what the receiver processed, not what was sent.
import { bpfObjectPath } from '../../control/paths.js';
import { BpfObject, type BpfMap, type BpfProgram } from '../../native/index.js';
import { perCpuPackets } from './generator.js';

export type BaselineKind = 'drop' | 'redirect' | 'pass';

/** An XDP program for the receiving end of a veth benchmark, and how to read its work. */
export interface Receiver {
  readonly program: BpfProgram;
  /** Frames the program has processed since it was loaded, from its own counter. */
  processed(): number;
}

/** Slot of bench_stats per program (enum bench_slot). */
const SLOT: Record<BaselineKind, number> = { drop: 0, redirect: 1, pass: 2 };
/** BENCH_CAPTURE_SLOTS and BENCH_CAPTURE_BYTES in the C source. */
export const CAPTURE_SLOTS = 256;
export const CAPTURE_BYTES = 128;

export interface BaselineOptions {
  /** bench_redirect's target interface (in the receiver's namespace); 0 or absent: XDP_TX. */
  redirectIfindex?: number;
  /** Keep the first bytes of frames in this many slots (frame i in slot i % n), 1..256; 0: off. */
  captureSlots?: number;
}

export interface CapturedFrame {
  /** The frame's whole length. */
  length: number;
  /** Its first bytes, up to CAPTURE_BYTES. */
  bytes: Buffer;
}

export class BaselineReceiver implements Receiver, Disposable {
  private constructor(
    readonly kind: BaselineKind,
    readonly program: BpfProgram,
    private readonly stats: BpfMap,
    private readonly frames: BpfMap,
  ) {}

  static load(kind: BaselineKind, options: BaselineOptions = {}): BaselineReceiver {
    const capture = options.captureSlots ?? 0;
    if (!Number.isInteger(capture) || capture < 0 || capture > CAPTURE_SLOTS) {
      throw new RangeError(`captureSlots must be an integer in [0, ${CAPTURE_SLOTS}]`);
    }
    using obj = BpfObject.open(bpfObjectPath('test/bench_baselines'));
    const u32 = (v: number): Buffer => {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(v);
      return b;
    };
    obj.setGlobal('redirect_ifindex', u32(options.redirectIfindex ?? 0));
    obj.setGlobal('capture_frames', u32(capture));
    for (const other of Object.keys(SLOT)) {
      if (other !== kind) obj.setAutoload(`bench_${other}`, false);
    }
    obj.load();
    const owned: Array<{ close(): void }> = [];
    try {
      const program = obj.program(`bench_${kind}`);
      owned.push(program);
      const stats = obj.map('bench_stats');
      owned.push(stats);
      const frames = obj.map('bench_frames');
      return new BaselineReceiver(kind, program, stats, frames);
    } catch (e) {
      for (const o of owned) o.close();
      throw e;
    }
  }

  processed(): number {
    return perCpuPackets(this.stats, SLOT[this.kind]);
  }

  /** The captured frames in slot order; slots never written are left out. */
  captured(): CapturedFrame[] {
    const out: CapturedFrame[] = [];
    const key = Buffer.alloc(4);
    for (let slot = 0; slot < CAPTURE_SLOTS; slot++) {
      key.writeUInt32LE(slot);
      const v = this.frames.lookup(key);
      if (!v) continue;
      const length = v.readUInt32LE(0);
      const saved = v.readUInt32LE(4);
      if (saved === 0) continue;
      out.push({ length, bytes: Buffer.from(v.subarray(8, 8 + saved)) });
    }
    return out;
  }

  close(): void {
    this.program.close();
    this.stats.close();
    this.frames.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
