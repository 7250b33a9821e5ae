// FRR's bfdd in a network namespace (see frr.ts), and its view of the peers.
import { BFDD, FrrProcess } from './frr.js';

/** One entry of `show bfd peers json`. */
export interface BfddPeer {
  peer: string;
  status: string;
  diagnostic: string;
  'remote-diagnostic': string;
  'remote-receive-interval': number;
  'remote-transmit-interval': number;
  'remote-detect-multiplier': number;
}

export class BfddProcess {
  private constructor(private readonly frr: FrrProcess) {}

  /** Starts bfdd in ns with config and waits until vtysh answers. */
  static async start(ns: string, config: string): Promise<BfddProcess> {
    return new BfddProcess(await FrrProcess.start(ns, config, BFDD));
  }

  get running(): boolean {
    return this.frr.running;
  }

  get log(): string {
    return this.frr.log;
  }

  /** bfdd's view of one peer. */
  peer(address: string): BfddPeer | undefined {
    return this.frr.json<BfddPeer[]>('show bfd peers json').find((p) => p.peer === address);
  }

  stop(): Promise<void> {
    return this.frr.stop();
  }
}
