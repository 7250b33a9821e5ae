// A loaded BPF program: run it on test input, pin it, attach it (attach.ts).
import { addon, type RawProgInfo, type RawTestRunOptions, type RawTestRunResult } from './addon.js';
import { Descriptor } from './descriptor.js';

export interface TestRunOptions {
  /** Packet bytes (starting at the Ethernet header for XDP and tc). */
  data?: Buffer;
  /** Room for the output packet; defaults to the input plus 512 bytes of growth. */
  dataOutSize?: number;
  /** Context struct (struct xdp_md / __sk_buff) in and its room out. */
  ctx?: Buffer;
  ctxOutSize?: number;
  repeat?: number;
  flags?: number;
  /** Frames per batch for live-frame runs. */
  batchSize?: number;
  cpu?: number;
}

export interface TestRunResult {
  /** The program's return value (an XDP action, a tc action...). */
  retval: number;
  /** Mean run time per repetition, in nanoseconds, as the kernel measured it. */
  durationNs: number;
  data: Buffer;
  ctx: Buffer;
}

function toRaw(o: TestRunOptions): RawTestRunOptions {
  return {
    ...o,
    dataOutSize: o.dataOutSize ?? (o.data ? o.data.length + 512 : 0),
  };
}

function fromRaw(r: RawTestRunResult): TestRunResult {
  return { retval: r.retval, durationNs: r.duration, data: r.data, ctx: r.ctx };
}

export class BpfProgram extends Descriptor {
  readonly info: RawProgInfo;

  /** Takes ownership of fd. */
  constructor(fd: number) {
    super(fd);
    try {
      this.info = addon().progInfo(fd);
    } catch (e) {
      this.close();
      throw e;
    }
  }

  static openPinned(path: string): BpfProgram {
    return new BpfProgram(addon().objGet(path));
  }

  static fromId(id: number): BpfProgram {
    return new BpfProgram(addon().progFdById(id));
  }

  /** BPF_PROG_TEST_RUN on the calling thread. */
  testRun(options: TestRunOptions): TestRunResult {
    return fromRaw(addon().testRun(this.fd, toRaw(options)));
  }

  /** BPF_PROG_TEST_RUN on a worker thread, for long runs (live frames, benchmarks). */
  async testRunAsync(options: TestRunOptions): Promise<TestRunResult> {
    return fromRaw(await addon().testRunAsync(this.fd, toRaw(options)));
  }
}
