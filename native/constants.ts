// Kernel constants from linux/bpf.h and linux/if_link.h that the wrapper
// exposes by name.
export const MapType = {
  hash: 1,
  array: 2,
  progArray: 3,
  perfEventArray: 4,
  percpuHash: 5,
  percpuArray: 6,
  lruHash: 9,
  lruPercpuHash: 10,
  lpmTrie: 11,
  arrayOfMaps: 12,
  hashOfMaps: 13,
  devmap: 14,
  cpumap: 16,
  xskmap: 17,
  devmapHash: 25,
  ringbuf: 27,
} as const;
export type MapTypeName = keyof typeof MapType;

const perCpuTypes: ReadonlySet<number> = new Set([
  MapType.percpuHash,
  MapType.percpuArray,
  MapType.lruPercpuHash,
]);

export function isPerCpuMapType(type: number): boolean {
  return perCpuTypes.has(type);
}

export function mapTypeName(type: number): string {
  for (const [name, value] of Object.entries(MapType)) if (value === type) return name;
  return `type${type}`;
}

/** BPF_ANY, BPF_NOEXIST, BPF_EXIST. */
export const UpdateFlag = { any: 0, noExist: 1, exist: 2 } as const;
export type UpdateMode = keyof typeof UpdateFlag;

/** BPF_F_NO_PREALLOC and friends, for map creation. */
export const MapFlag = {
  noPrealloc: 1,
  rdonlyProg: 1 << 7,
  wronlyProg: 1 << 8,
  mmapable: 1 << 10,
  innerMap: 1 << 12,
} as const;

/** XDP attach flags (linux/if_link.h). */
export const XdpFlag = {
  updateIfNoExist: 1 << 0,
  skbMode: 1 << 1,
  drvMode: 1 << 2,
  hwMode: 1 << 3,
  replace: 1 << 4,
} as const;

/** XDP action codes a program returns. */
export const XdpAction = { aborted: 0, drop: 1, pass: 2, tx: 3, redirect: 4 } as const;
export type XdpActionName = keyof typeof XdpAction;

export function xdpActionName(code: number): XdpActionName | `unknown(${number})` {
  for (const [name, value] of Object.entries(XdpAction)) {
    if (value === code) return name as XdpActionName;
  }
  return `unknown(${code})`;
}

/** bpf_prog_test_run flags. */
export const TestRunFlag = { xdpLiveFrames: 1 << 1 } as const;

/** BPF program types (the subset xlb loads). */
export const ProgType = { schedCls: 3, xdp: 6 } as const;
