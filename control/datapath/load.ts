// Loads the datapath: the XDP object with its settings and maps, then the tc
// object sharing those same maps. The ELF state is released right away; the
// programs and maps taken out live until the caller closes them.
import { BpfObject, type BpfMap, type BpfProgram } from '../../native/index.js';
import { ABI_VERSION, XlbConfig, XlbConfigFlag } from './abi.js';
import { DEFAULT_FLOW_CACHE_SIZE } from './flowcache.js';
import { DatapathMaps, mapNames, type MapName } from './maps.js';
import { bpfObjectPath } from '../paths.js';
import { FALLBACK_HZ, kernelHz } from '../system/kernel-hz.js';

export interface DatapathSettings {
  /** Seed of the flow hash; must be the same on every node. */
  hashSeed: number;
  /** MTU of the uplink: encapsulated packets must fit. */
  mtu: number;
  /** This node's addresses: outer source of tunnels, and what decapsulation answers to. */
  nodeIPv4: string;
  nodeIPv6: string;
  decap: boolean;
  icmpTooBig: boolean;
  /** The kernel's CONFIG_HZ: cached verdicts and next hops live this many jiffies. */
  hz: number;
  /** Flow cache slots per CPU (a power of two; 64 bytes each). */
  flowCacheSize: number;
}

export const defaultSettings: DatapathSettings = {
  hashSeed: 0,
  mtu: 1500,
  nodeIPv4: '0.0.0.0',
  nodeIPv6: '::',
  decap: true,
  icmpTooBig: true,
  hz: FALLBACK_HZ,
  flowCacheSize: DEFAULT_FLOW_CACHE_SIZE,
};

/** Map sizes; the defaults are the object's. */
export type MapSizes = Partial<Record<MapName, number>>;

export class DatapathSettingsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DatapathSettingsError';
  }
}

export function encodeSettings(s: DatapathSettings): Buffer {
  const size = s.flowCacheSize;
  if (!Number.isInteger(size) || size < 1 || size > 1 << 24 || (size & (size - 1)) !== 0) {
    throw new DatapathSettingsError(
      `flow cache size ${size} must be a power of two between 1 and ${1 << 24}`,
    );
  }
  return XlbConfig.encode({
    abi_version: ABI_VERSION,
    hash_seed: s.hashSeed,
    mtu: s.mtu,
    flags:
      (s.decap ? XlbConfigFlag.values.DECAP : 0) |
      (s.icmpTooBig ? XlbConfigFlag.values.ICMP_TOO_BIG : 0),
    node_ipv4_be: s.nodeIPv4,
    node_ipv6: s.nodeIPv6,
    hz: s.hz,
    flow_cache_size: s.flowCacheSize,
  });
}

export class Datapath implements Disposable {
  constructor(
    readonly xdp: BpfProgram,
    readonly tc: BpfProgram,
    readonly maps: DatapathMaps,
  ) {}

  close(): void {
    this.maps.close();
    this.tc.close();
    this.xdp.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** What loadDatapath makes of its arguments: the effective settings, the encoded config, the sizes it sets. */
export interface ResolvedLoad {
  settings: DatapathSettings;
  config: Buffer;
  /** Map sizes set at load time (the object's own sizes apply to the rest). */
  sizes: MapSizes;
}

export function resolveLoad(
  settings: Partial<DatapathSettings> = {},
  sizes: MapSizes = {},
): ResolvedLoad {
  const effective = { ...defaultSettings, hz: kernelHz().hz, ...settings };
  const config = encodeSettings(effective);
  // The flow cache is indexed by a mask of its configured size; next hops
  // are kept per backend id.
  const allSizes: MapSizes = {
    xlb_flow_cache: effective.flowCacheSize,
    ...(sizes.xlb_backends !== undefined ? { xlb_nexthops: sizes.xlb_backends } : {}),
    ...sizes,
  };
  if (allSizes.xlb_flow_cache !== effective.flowCacheSize) {
    throw new DatapathSettingsError('size xlb_flow_cache through settings.flowCacheSize');
  }
  return { settings: effective, config, sizes: allSizes };
}

/** Every map's max_entries as a load with these sizes makes it (the object's default unless set). */
export function expectedMapSizes(resolved: ResolvedLoad): Record<MapName, number> {
  using obj = BpfObject.open(bpfObjectPath('xlb_xdp'));
  const out = {} as Record<MapName, number>;
  for (const spec of obj.maps()) {
    const name = spec.name as MapName;
    if (mapNames.includes(name)) out[name] = resolved.sizes[name] ?? spec.maxEntries;
  }
  return out;
}

export interface LoadOptions {
  /**
   * Existing maps (e.g. pinned by an earlier agent) the new programs use
   * instead of creating their own: their contents, sizes and flows carry
   * over. The caller keeps ownership of these descriptors.
   */
  reuse?: Partial<Record<MapName, BpfMap>>;
}

export function loadDatapath(
  settings: Partial<DatapathSettings> = {},
  sizes: MapSizes = {},
  options: LoadOptions = {},
): Datapath {
  const { config, sizes: allSizes } = resolveLoad(settings, sizes);
  const reuse = options.reuse ?? {};
  const maps: Partial<Record<MapName, ReturnType<BpfObject['map']>>> = {};
  const programs: BpfProgram[] = [];
  try {
    {
      using obj = BpfObject.open(bpfObjectPath('xlb_xdp'));
      obj.setGlobal('xlb_config', config);
      for (const [name, size] of Object.entries(allSizes)) {
        if (reuse[name as MapName] === undefined) obj.setMapMaxEntries(name, size);
      }
      for (const [name, map] of Object.entries(reuse)) if (map) obj.reuseMap(name, map);
      obj.load();
      programs.push(obj.program('xlb_xdp'));
      for (const name of mapNames) maps[name] = obj.map(name);
    }
    {
      using obj = BpfObject.open(bpfObjectPath('xlb_tc'));
      obj.setGlobal('xlb_config', config);
      for (const m of obj.maps()) {
        const shared = maps[m.name as MapName];
        if (shared) obj.reuseMap(m.name, shared);
      }
      obj.load();
      programs.push(obj.program('xlb_tc_egress'));
    }
  } catch (e) {
    for (const m of Object.values(maps)) m.close();
    for (const p of programs) p.close();
    throw e;
  }
  return new Datapath(
    programs[0]!,
    programs[1]!,
    new DatapathMaps(maps as Record<MapName, ReturnType<BpfObject['map']>>),
  );
}
