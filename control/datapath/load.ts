// Loads the XDP datapath object with its load-time settings and takes out the
// pieces the caller keeps: the program and the counters map. The ELF state is
// released right away; what is taken out lives until the caller closes it.
import { BpfObject, type BpfMap, type BpfProgram } from '../../native/index.js';
import { ABI_VERSION, XlbConfig } from './abi.js';
import { bpfObjectPath } from '../paths.js';

export interface DatapathSettings {
  /** Seed of the flow hash; must be the same on every node. */
  hashSeed: number;
  mtu: number;
  nodeIPv4: string;
  nodeIPv6: string;
}

export const defaultSettings: DatapathSettings = {
  hashSeed: 0,
  mtu: 1500,
  nodeIPv4: '0.0.0.0',
  nodeIPv6: '::',
};

export function encodeSettings(s: DatapathSettings): Buffer {
  return XlbConfig.encode({
    abi_version: ABI_VERSION,
    hash_seed: s.hashSeed,
    mtu: s.mtu,
    flags: 0,
    node_ipv4_be: s.nodeIPv4,
    node_ipv6: s.nodeIPv6,
  });
}

export class LoadedDatapath implements Disposable {
  constructor(
    readonly xdp: BpfProgram,
    readonly stats: BpfMap,
  ) {}

  close(): void {
    this.stats.close();
    this.xdp.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

export function loadDatapath(settings: Partial<DatapathSettings> = {}): LoadedDatapath {
  using obj = BpfObject.open(bpfObjectPath('xlb_xdp'));
  obj.setGlobal('xlb_config', encodeSettings({ ...defaultSettings, ...settings }));
  obj.load();
  const xdp = obj.program('xlb_xdp');
  try {
    return new LoadedDatapath(xdp, obj.map('xlb_stats'));
  } catch (e) {
    xdp.close();
    throw e;
  }
}
