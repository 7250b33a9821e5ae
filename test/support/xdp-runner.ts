// Sends one packet through a loaded XDP program with BPF_PROG_TEST_RUN and
// checks the verdict and the exact output bytes. On mismatch the error shows
// a field-by-field diff, so a failing datapath test says which header field
// went wrong instead of "buffers differ".
//
// Options: `ingressIfindex` passes a struct xdp_md so the program sees the
// frame arrive on that interface (its FIB lookups then start there), and
// `netns` runs the program with the calling thread inside a network namespace
// (where the kernel resolves ingress_ifindex and the program's FIB lookups).
import type { BpfProgram } from '../../native/index.js';
import { inNetns, xdpActionName, type XdpActionName } from '../../native/index.js';
import { diffPackets } from './packet/index.js';

export interface XdpRun {
  verdict: XdpActionName | `unknown(${number})`;
  data: Buffer;
  durationNs: number;
}

export interface XdpRunOptions {
  /** struct xdp_md.ingress_ifindex: the interface the frame arrived on (0: none). */
  ingressIfindex?: number;
  /** struct xdp_md.rx_queue_index; must exist on the ingress interface. */
  rxQueueIndex?: number;
  /** Network namespace (as made by `ip netns add`) to run the program in. */
  netns?: string;
}

/** Size of struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex. */
export const XDP_MD_SIZE = 24;

/**
 * A struct xdp_md for BPF_PROG_TEST_RUN. The kernel requires data = data_meta = 0
 * (no metadata), data_end = the frame length and egress_ifindex = 0.
 */
export function xdpContext(frameLength: number, ingressIfindex: number, rxQueueIndex = 0): Buffer {
  const ctx = Buffer.alloc(XDP_MD_SIZE);
  ctx.writeUInt32LE(0, 0);
  ctx.writeUInt32LE(frameLength, 4);
  ctx.writeUInt32LE(0, 8);
  ctx.writeUInt32LE(ingressIfindex, 12);
  ctx.writeUInt32LE(rxQueueIndex, 16);
  ctx.writeUInt32LE(0, 20);
  return ctx;
}

export function runXdp(prog: BpfProgram, packet: Buffer, options: XdpRunOptions = {}): XdpRun {
  const run = (): XdpRun => {
    const ctx =
      options.ingressIfindex === undefined
        ? undefined
        : xdpContext(packet.length, options.ingressIfindex, options.rxQueueIndex ?? 0);
    const r = prog.testRun(ctx === undefined ? { data: packet } : { data: packet, ctx });
    return { verdict: xdpActionName(r.retval), data: r.data, durationNs: r.durationNs };
  };
  return options.netns === undefined ? run() : inNetns(options.netns, run);
}

export interface XdpExpectation {
  verdict: XdpActionName;
  /** The exact bytes the program must leave; omit to require the input unchanged. */
  output?: Buffer;
}

export class PacketMismatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PacketMismatchError';
  }
}

/** Every way a run differs from the expectation (verdict, output bytes); empty when it matches. */
export function xdpMismatches(run: XdpRun, packet: Buffer, expected: XdpExpectation): string[] {
  const problems: string[] = [];
  if (run.verdict !== expected.verdict) {
    problems.push(`verdict: expected ${expected.verdict}, got ${run.verdict}`);
  }
  const want = expected.output ?? packet;
  const diff = diffPackets(want, run.data);
  if (diff !== undefined) problems.push(`output packet differs:\n${diff}`);
  return problems;
}

/** Runs the packet and throws PacketMismatchError describing every difference. */
export function expectXdp(
  prog: BpfProgram,
  packet: Buffer,
  expected: XdpExpectation,
  options: XdpRunOptions = {},
): XdpRun {
  const run = runXdp(prog, packet, options);
  const problems = xdpMismatches(run, packet, expected);
  if (problems.length > 0) throw new PacketMismatchError(problems.join('\n'));
  return run;
}
