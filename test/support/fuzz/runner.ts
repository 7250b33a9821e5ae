// Runs frames through the loaded XDP program with bpf_prog_test_run, judges
// each run (verdict, output frame), keeps count of what ran so the datapath's
// own counters can be held to it, and shrinks a failing frame to the smallest
// one that still fails the same way.
import type { Datapath } from '../../../control/datapath/load.js';
import { XdpAction, xdpActionName } from '../../../native/index.js';
import {
  brokenChecksums,
  checkPassed,
  checkSent,
  dissectorSaysIp,
  parsesAsIp,
  type L3,
} from './check.js';
import { MIN_FRAME } from './mutate.js';

export const VALID_VERDICTS: ReadonlySet<number> = new Set([
  XdpAction.pass,
  XdpAction.drop,
  XdpAction.tx,
  XdpAction.redirect,
]);

export type FailureKind = 'throw' | 'verdict' | 'output' | 'accounting';

export interface Judgement {
  /** The program's return value; undefined when the run itself failed. */
  verdict?: number;
  kind?: FailureKind;
  problem?: string;
}

export interface Totals {
  packets: bigint;
  bytes: bigint;
}

export class FuzzRunner {
  /** Frames that reached the program (test_run succeeded), and their bytes. */
  runs = 0n;
  runBytes = 0n;
  /** Frames the program sent on or rewrote: checked by hand, and by the dissector. */
  handChecked = 0;
  dissected = 0;
  /** struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex */
  private readonly ctx = Buffer.alloc(24);

  constructor(
    private readonly dp: Datapath,
    ifindex: number,
  ) {
    this.ctx.writeUInt32LE(ifindex, 12);
  }

  /** One bpf_prog_test_run, as if the frame arrived on the uplink. Must run in the node namespace. */
  run(frame: Buffer): { retval: number; data: Buffer } {
    this.ctx.writeUInt32LE(frame.length, 4);
    const r = this.dp.xdp.testRun({ data: frame, ctx: this.ctx });
    this.runs++;
    this.runBytes += BigInt(frame.length);
    return r;
  }

  /** Sum of every xlb_drops and xlb_outcomes slot over all CPUs. */
  counted(): Totals {
    const t: Totals = { packets: 0n, bytes: 0n };
    for (const row of [...this.dp.maps.drops(), ...this.dp.maps.outcomes()]) {
      t.packets += row.packets;
      t.bytes += row.bytes;
    }
    return t;
  }

  /**
   * Runs one frame and says what, if anything, the program got wrong: a run
   * that fails, a verdict outside PASS/DROP/TX/REDIRECT, or an output frame
   * that is not what it must be. Frames sent on (TX, REDIRECT) are checked by
   * hand and by the dissector; for frames rewritten and passed, `dissect` says
   * whether the (slower) dissector and checksum comparison run too.
   */
  examine(frame: Buffer, dissect: () => boolean): Judgement {
    let r;
    try {
      r = this.run(frame);
    } catch (e) {
      return { kind: 'throw', problem: `test_run threw: ${(e as Error).message}` };
    }
    const name = xdpActionName(r.retval);
    if (!VALID_VERDICTS.has(r.retval)) {
      return { verdict: r.retval, kind: 'verdict', problem: `verdict ${name}` };
    }
    let problem: string | undefined;
    if (r.retval === XdpAction.tx || r.retval === XdpAction.redirect) {
      this.handChecked++;
      problem = checkSent(r.retval, frame, r.data);
      if (!problem) {
        this.dissected++;
        const v = parsesAsIp(r.data);
        problem = typeof v === 'string' ? v : dissectorSaysIp(r.data, v.version, true);
      }
      if (problem) problem = `${name}: ${problem}`;
    } else if (r.retval === XdpAction.pass && !r.data.equals(frame)) {
      // Rewritten and handed to the kernel: DNAT, an ICMP error for a pod, a
      // decapsulated packet, or a tunnel whose next hop the kernel resolves.
      this.handChecked++;
      problem = checkPassed(frame, r.data);
      if (!problem && dissect()) {
        this.dissected++;
        const v = parsesAsIp(r.data) as L3;
        problem = dissectorSaysIp(r.data, v.version, false);
        if (!problem) {
          const broken = brokenChecksums(frame, r.data);
          if (broken.length > 0) problem = `checksums the rewrite broke: ${broken.join(', ')}`;
        }
      }
      if (problem) problem = `rewritten ${name}: ${problem}`;
    }
    return problem ? { verdict: r.retval, kind: 'output', problem } : { verdict: r.retval };
  }

  /** True when this one frame moves the counters by anything but 1 packet and its length. */
  miscounts(frame: Buffer): string | undefined {
    const before = this.counted();
    try {
      this.run(frame);
    } catch {
      return undefined;
    }
    const after = this.counted();
    const p = after.packets - before.packets;
    const b = after.bytes - before.bytes;
    if (p === 1n && b === BigInt(frame.length)) return undefined;
    return `counted ${p} packets / ${b} bytes for one ${frame.length}-byte frame`;
  }

  /** The smallest frame (shortest, then with most bytes zeroed) that still fails the same way. */
  minimize(frame: Buffer, kind: FailureKind, problem: string): Buffer {
    // Numbers (lengths, offsets) change as the frame shrinks; the rest of the message must not.
    const headline = (s: string): string => s.split('\n')[0]!.replace(/\d+/g, '#');
    const same = (f: Buffer): boolean => {
      if (kind === 'accounting') return this.miscounts(f) !== undefined;
      const j = this.examine(f, () => true);
      return (
        j.kind === kind && j.problem !== undefined && headline(j.problem) === headline(problem)
      );
    };
    let best = frame;
    for (let n = MIN_FRAME; n < best.length; n++) {
      if (same(best.subarray(0, n))) {
        best = Buffer.from(best.subarray(0, n));
        break;
      }
    }
    for (let k = best.length - 1; k >= 0; k--) {
      if (best[k] === 0) continue;
      const c = Buffer.from(best);
      c[k] = 0;
      if (same(c)) best = c;
    }
    return best;
  }
}
