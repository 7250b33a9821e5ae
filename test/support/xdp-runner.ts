// Sends one packet through a loaded XDP program with BPF_PROG_TEST_RUN and
// checks the verdict and the exact output bytes. On mismatch the error shows
// a field-by-field diff, so a failing datapath test says which header field
// went wrong instead of "buffers differ".
import type { BpfProgram } from '../../native/index.js';
import { xdpActionName, type XdpActionName } from '../../native/index.js';
import { diffPackets } from './packet/index.js';

export interface XdpRun {
  verdict: XdpActionName | `unknown(${number})`;
  data: Buffer;
  durationNs: number;
}

export function runXdp(prog: BpfProgram, packet: Buffer): XdpRun {
  const r = prog.testRun({ data: packet });
  return { verdict: xdpActionName(r.retval), data: r.data, durationNs: r.durationNs };
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

/** Runs the packet and throws PacketMismatchError describing every difference. */
export function expectXdp(prog: BpfProgram, packet: Buffer, expected: XdpExpectation): XdpRun {
  const run = runXdp(prog, packet);
  const problems: string[] = [];
  if (run.verdict !== expected.verdict) {
    problems.push(`verdict: expected ${expected.verdict}, got ${run.verdict}`);
  }
  const want = expected.output ?? packet;
  const diff = diffPackets(want, run.data);
  if (diff !== undefined) problems.push(`output packet differs:\n${diff}`);
  if (problems.length > 0) throw new PacketMismatchError(problems.join('\n'));
  return run;
}
