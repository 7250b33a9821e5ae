// The XDP_PASS program for the router's veths that face nodes: a veth only
// receives the frames its peer sends with XDP_TX (encapsulated packets on
// their way to another node) when an XDP program runs on it too; GRO is not
// enough on this kernel. Loaded once per topology, detached with it.
import { BpfObject, ifIndex, inNetns, xdp, type BpfProgram } from '../../native/index.js';
import { bpfObjectPath } from '../paths.js';
import type { Topology } from './topology.js';

export class VethPass {
  private program: BpfProgram | undefined;

  constructor(private readonly topo: Topology) {}

  /** Attaches the program to `ifname` in `ns` (natively: it must see XDP_TX frames). */
  attach(ns: string, ifname: string): void {
    const prog = this.load();
    const index = inNetns(ns, () => ifIndex(ifname));
    inNetns(ns, () => xdp.attach(index, prog, 'native'));
  }

  private load(): BpfProgram {
    if (!this.program) {
      using obj = BpfObject.open(bpfObjectPath('test/veth_pass'));
      obj.load();
      const prog = obj.program('veth_pass');
      this.program = prog;
      this.topo.onDestroy('veth pass program', () => prog.close());
    }
    return this.program;
  }
}
