// The datapath's life on a node across agent restarts: load, pin and attach it
// the first time; adopt it, as it runs, when the pins show the same datapath;
// replace it atomically when an upgrade changed it. The agent never detaches
// on the way out unless asked: the datapath keeps balancing while no agent runs.
import {
  existsSync,
  mkdirSync,
  readdirSync,
  renameSync,
  rmSync,
  rmdirSync,
  statfsSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';

import {
  BpfMap,
  BpfProgram,
  ifIndex,
  inNetns,
  isBpfError,
  tc,
  xdp,
  type TcFilter,
  type XdpMode,
} from '../../native/index.js';
import { logger, type Logger } from '../observe/log.js';
import { BPFFS, bpffsMounted, ensureBpffs } from '../system/bpffs.js';
import { requireRoot } from '../system/privileges.js';
import { createIdMap, DatapathIds, idCapacities, IdMapError, isIdMap } from './ids.js';
import {
  Datapath,
  expectedMapSizes,
  loadDatapath,
  resolveLoad,
  type DatapathSettings,
  type LoadOptions,
  type MapSizes,
} from './load.js';
import { DatapathMaps, mapNames, type MapName } from './maps.js';
import {
  createInfoMap,
  currentInfo,
  ID_MAP_PIN,
  INFO_PIN,
  judgePins,
  PROGRAM_PINS,
  readInfo,
  writeInfo,
  type DatapathInfo,
} from './pins.js';

export const DEFAULT_PIN_DIR = `${BPFFS}/xlb`;
const BPF_FS_MAGIC = 0xcafe4a11;
/** Where xlb's tc filter sits under clsact egress. */
const TC_WHERE = { handle: 1, priority: 1 } as const;
const XDP_PROGRAM_NAME = 'xlb_xdp';
const TC_PROGRAM_NAME = 'xlb_tc_egress';

export type LifecycleErrorReason =
  'noBpffs' | 'badPinDir' | 'loadFailed' | 'attachFailed' | 'uplinkBusy' | 'noUplink';

export class DatapathLifecycleError extends Error {
  constructor(
    readonly reason: LifecycleErrorReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'DatapathLifecycleError';
  }
}

export interface OpenDatapathOptions {
  /** Where maps, programs, ids and the version record are pinned (on a BPF filesystem). */
  pinDir?: string;
  settings?: Partial<DatapathSettings>;
  sizes?: MapSizes;
  /** The uplink: its interface index or name (in `netns` when given). */
  uplink: number | string;
  /** A named network namespace (ip netns) the uplink lives in. */
  netns?: string;
  /** Force an XDP mode; default: native, generic when the driver refuses native. */
  xdpMode?: XdpMode;
  log?: Logger;
}

/**
 * What openDatapath found and did:
 * - installed: no pins; loaded, pinned and attached a new datapath.
 * - adopted: the pinned datapath is the one this agent would load; taken over as it runs.
 * - upgraded/kept: the same BPF objects and map sizes, other settings: new programs over the
 *   pinned maps, swapped in atomically; every flow and entry carries over.
 * - upgraded/reinstalled: another ABI, other map sizes or rebuilt objects: a new datapath with
 *   empty maps (the id map carries over, so tables come out as before; with the same ABI the
 *   connection and reverse-NAT tables are copied over at activation). It
 *   is attached (atomically, over the old one) only by activate(), after the caller has
 *   reconciled the desired state into it; flows the connection table held may be rebalanced.
 */
export type DatapathVerdict =
  | { kind: 'installed' }
  | { kind: 'adopted' }
  | { kind: 'upgraded'; state: 'kept' | 'reinstalled'; reason: string };

interface Uplink {
  ifindex: number;
  netns?: string;
}

function inUplinkNs<T>(u: Uplink, fn: () => T): T {
  return u.netns === undefined ? fn() : inNetns(u.netns, fn);
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function onBpffs(path: string): boolean {
  let p = path;
  while (!existsSync(p)) p = dirname(p);
  return Number(statfsSync(p).type) === BPF_FS_MAGIC;
}

/** Root, a BPF filesystem under the pin directory, a name bpffs accepts. */
function preparePinDir(pinDir: string): void {
  requireRoot('programming the xlb datapath');
  if (basename(pinDir).includes('.')) {
    throw new DatapathLifecycleError(
      'badPinDir',
      `pin directory ${pinDir}: the BPF filesystem refuses names with '.'; choose another name`,
    );
  }
  if (!onBpffs(pinDir) && (pinDir === BPFFS || pinDir.startsWith(`${BPFFS}/`)) && !bpffsMounted()) {
    try {
      ensureBpffs();
    } catch (e) {
      throw new DatapathLifecycleError(
        'noBpffs',
        `cannot mount the BPF filesystem at ${BPFFS} (${errorText(e)}): mount it with ` +
          `'mount -t bpf bpf ${BPFFS}' (in a container, mount the host's ${BPFFS})`,
        { cause: e },
      );
    }
  }
  if (!onBpffs(pinDir)) {
    throw new DatapathLifecycleError(
      'noBpffs',
      `pin directory ${pinDir} is not on a BPF filesystem: pins there would not survive the agent; ` +
        `use a directory under ${BPFFS} (mount -t bpf bpf ${BPFFS})`,
    );
  }
  mkdirSync(dirname(pinDir), { recursive: true });
}

function resolveUplink(uplink: number | string, netns: string | undefined): Uplink {
  if (typeof uplink === 'number') return { ifindex: uplink, ...(netns ? { netns } : {}) };
  try {
    const ifindex = netns === undefined ? ifIndex(uplink) : inNetns(netns, () => ifIndex(uplink));
    return { ifindex, ...(netns ? { netns } : {}) };
  } catch (e) {
    throw new DatapathLifecycleError(
      'noUplink',
      `no interface '${uplink}'${netns ? ` in network namespace ${netns}` : ''}: name the node's uplink`,
      { cause: e },
    );
  }
}

function load(
  settings: Partial<DatapathSettings> | undefined,
  sizes: MapSizes | undefined,
  options?: LoadOptions,
): Datapath {
  try {
    return loadDatapath(settings, sizes, options);
  } catch (e) {
    if (!isBpfError(e)) throw e;
    throw new DatapathLifecycleError(
      'loadFailed',
      `the kernel refused the xlb datapath (${e.code}): ${e.message}. xlb needs BPF with BTF, XDP, ` +
        'tc clsact and array-of-maps (Linux 6.1 or later, CAP_BPF and CAP_NET_ADMIN); the verifier log ' +
        "is in this error's cause",
      { cause: e },
    );
  }
}

const staging = (pinDir: string): string => `${pinDir}-next`;
const retired = (pinDir: string): string => `${pinDir}-old`;

function removeDir(path: string): void {
  rmSync(path, { recursive: true, force: true });
}

/** Pins everything under a fresh staging directory. */
function pinInto(dir: string, dp: Datapath, idMap: BpfMap, info: BpfMap): void {
  removeDir(dir);
  mkdirSync(dir);
  for (const name of mapNames) dp.maps.map(name).pin(join(dir, name));
  dp.xdp.pin(join(dir, PROGRAM_PINS.xdp));
  dp.tc.pin(join(dir, PROGRAM_PINS.tc));
  idMap.pin(join(dir, ID_MAP_PIN));
  info.pin(join(dir, INFO_PIN));
}

/** Makes the staging directory the pin directory in two renames (bpffs has no atomic swap). */
function publish(pinDir: string): void {
  removeDir(retired(pinDir));
  if (existsSync(pinDir)) {
    if (readdirSync(pinDir).length === 0) rmdirSync(pinDir);
    else renameSync(pinDir, retired(pinDir));
  }
  renameSync(staging(pinDir), pinDir);
  removeDir(retired(pinDir));
}

/** The program on the uplink and its mode, if any. */
function attachedXdp(u: Uplink): { id: number; mode: XdpMode } | undefined {
  const s = inUplinkNs(u, () => xdp.query(u.ifindex));
  if (s.nativeProgId !== 0) return { id: s.nativeProgId, mode: 'native' };
  if (s.genericProgId !== 0) return { id: s.genericProgId, mode: 'generic' };
  return undefined;
}

function programNamed(id: number, name: string): boolean {
  try {
    using p = BpfProgram.fromId(id);
    return p.info.name === name;
  } catch {
    return false;
  }
}

/**
 * Puts prog on the uplink: over the program there, atomically and in its
 * mode; else native, generic when the driver refuses native.
 */
function attachXdp(u: Uplink, prog: BpfProgram, wanted: XdpMode | undefined, log: Logger): XdpMode {
  try {
    const current = attachedXdp(u);
    if (current?.id === prog.info.id) return current.mode;
    if (current !== undefined && !programNamed(current.id, XDP_PROGRAM_NAME)) {
      // Another system's program (a CNI, a firewall): not ours to replace.
      throw new DatapathLifecycleError(
        'uplinkBusy',
        `ifindex ${u.ifindex} already runs XDP program ${current.id}, which is not xlb's: ` +
          'detach it or give xlb another uplink',
      );
    }
    if (current !== undefined) {
      let old: BpfProgram | undefined;
      try {
        old = BpfProgram.fromId(current.id);
      } catch {
        old = undefined; // gone meanwhile: a plain attach replaces whatever is there
      }
      try {
        inUplinkNs(u, () =>
          xdp.attach(u.ifindex, prog, current.mode, old ? { replacing: old } : {}),
        );
      } finally {
        old?.close();
      }
      return current.mode;
    }
    if (wanted === 'generic') {
      inUplinkNs(u, () => xdp.attach(u.ifindex, prog, 'generic'));
      return 'generic';
    }
    try {
      inUplinkNs(u, () => xdp.attach(u.ifindex, prog, 'native'));
      return 'native';
    } catch (e) {
      if (wanted === 'native' || !isBpfError(e)) throw e;
      log.warn(
        { ifindex: u.ifindex, reason: e.code, err: e.message },
        'the uplink refused native XDP; attaching generic XDP (works everywhere, slower)',
      );
      inUplinkNs(u, () => xdp.attach(u.ifindex, prog, 'generic'));
      return 'generic';
    }
  } catch (e) {
    if (e instanceof DatapathLifecycleError) throw e;
    throw new DatapathLifecycleError(
      'attachFailed',
      `cannot attach the XDP program to ifindex ${u.ifindex}: ${errorText(e)}`,
      { cause: e },
    );
  }
}

function tcFilter(u: Uplink): TcFilter {
  return { ifindex: u.ifindex, direction: 'egress', ...TC_WHERE };
}

/** Attaches the tc program (replacing the filter there atomically) unless it is there. */
function attachTc(u: Uplink, prog: BpfProgram): void {
  let current: number;
  try {
    current = inUplinkNs(u, () => tc.query(tcFilter(u)));
  } catch (e) {
    throw new DatapathLifecycleError(
      'attachFailed',
      `cannot query tc egress filters of ifindex ${u.ifindex}: ${errorText(e)}`,
      { cause: e },
    );
  }
  if (current === prog.info.id) return;
  if (current !== 0 && !programNamed(current, TC_PROGRAM_NAME)) {
    throw new DatapathLifecycleError(
      'uplinkBusy',
      `ifindex ${u.ifindex} has another program (${current}) in xlb's tc egress slot ` +
        `(handle ${TC_WHERE.handle}, priority ${TC_WHERE.priority}): remove that filter`,
    );
  }
  try {
    inUplinkNs(u, () => tc.attach(u.ifindex, 'egress', prog, TC_WHERE));
  } catch (e) {
    throw new DatapathLifecycleError(
      'attachFailed',
      `cannot attach the tc egress program to ifindex ${u.ifindex}: ${errorText(e)}`,
      { cause: e },
    );
  }
}

/**
 * The pinned id map when this agent can read it and it is big enough (ids,
 * and so Maglev tables, stay as they were), else a new one (ids start afresh).
 */
function idsFor(
  pinned: BpfMap | undefined,
  dp: Datapath,
  log: Logger,
): { idMap: BpfMap; ids: DatapathIds } {
  const caps = idCapacities(dp.maps);
  if (pinned !== undefined) {
    if (isIdMap(pinned) && pinned.info.maxEntries >= caps.units + caps.backends + 1) {
      try {
        return { idMap: pinned, ids: DatapathIds.open(pinned, caps) };
      } catch (e) {
        if (!(e instanceof IdMapError)) throw e;
        log.warn({ err: e.message }, 'the pinned id map is unreadable; ids start afresh');
      }
    } else log.warn('the pinned id map is of another format or too small; ids start afresh');
    pinned.close();
  }
  const idMap = createIdMap(caps);
  try {
    return { idMap, ids: DatapathIds.open(idMap, caps) };
  } catch (e) {
    idMap.close();
    throw e;
  }
}

function openPinnedIfThere(path: string): BpfMap | undefined {
  return existsSync(path) ? BpfMap.openPinned(path) : undefined;
}

interface Parts {
  pinDir: string;
  uplink: Uplink;
  datapath: Datapath;
  idMap: BpfMap;
  infoMap: BpfMap;
  ids: DatapathIds;
  verdict: DatapathVerdict;
  xdpMode: XdpMode | undefined;
  wantedMode: XdpMode | undefined;
  pending: boolean;
  /** The old datapath's flow tables, when their layout is this one's (same ABI). */
  carry?: FlowTables;
  log: Logger;
}

/** The maps that hold established flows: copied over when a datapath is replaced. */
interface FlowTables {
  xlb_conntrack: BpfMap;
  xlb_reverse: BpfMap;
}

/** Copies every entry of `from` into `to` (both hash maps of one layout), in batches. */
function copyEntries(from: BpfMap, to: BpfMap): number {
  let n = 0;
  for (const batch of from.lookupBatches(4096)) {
    n += to.updateBatch(batch.keys.map((k, i) => [k, batch.values[i]!] as const));
  }
  return n;
}

/** A datapath this agent owns: its maps, ids and programs, pinned and attached. */
export class OpenedDatapath implements Disposable {
  readonly pinDir: string;
  readonly datapath: Datapath;
  readonly ids: DatapathIds;
  readonly verdict: DatapathVerdict;
  private readonly uplink: Uplink;
  private readonly idMap: BpfMap;
  private readonly infoMap: BpfMap;
  private readonly wantedMode: XdpMode | undefined;
  private readonly log: Logger;
  private mode: XdpMode | undefined;
  private pending: boolean;
  private carry: FlowTables | undefined;
  private closed = false;

  constructor(parts: Parts) {
    this.pinDir = parts.pinDir;
    this.datapath = parts.datapath;
    this.ids = parts.ids;
    this.verdict = parts.verdict;
    this.uplink = parts.uplink;
    this.idMap = parts.idMap;
    this.infoMap = parts.infoMap;
    this.wantedMode = parts.wantedMode;
    this.log = parts.log;
    this.mode = parts.xdpMode;
    this.pending = parts.pending;
    this.carry = parts.carry;
  }

  get maps(): DatapathMaps {
    return this.datapath.maps;
  }

  /** The XDP mode the program runs in; undefined until attached. */
  get xdpMode(): XdpMode | undefined {
    return this.mode;
  }

  /** True after a replacing upgrade until activate(): the old datapath still runs. */
  get needsActivation(): boolean {
    return this.pending;
  }

  /**
   * Puts a replacing datapath in service: swaps the XDP program and the tc
   * filter atomically (the uplink never runs without one), then moves the
   * pins over. Call after reconciling the desired state into `maps`. A no-op
   * for every other verdict.
   */
  activate(): void {
    if (!this.pending || this.closed) return;
    const dp = this.datapath;
    pinInto(staging(this.pinDir), dp, this.idMap, this.infoMap);
    // Established flows: copied as late as possible, so only those that start
    // in the moment between the copy and the swap are balanced afresh.
    let carried = 0;
    if (this.carry !== undefined) {
      try {
        for (const name of ['xlb_conntrack', 'xlb_reverse'] as const) {
          carried += copyEntries(this.carry[name], dp.maps.map(name));
        }
      } catch (e) {
        this.log.warn(
          { err: errorText(e) },
          'could not carry every flow over; the rest are balanced afresh',
        );
      }
    }
    this.mode = attachXdp(this.uplink, dp.xdp, this.wantedMode, this.log);
    attachTc(this.uplink, dp.tc);
    publish(this.pinDir);
    this.pending = false;
    this.closeCarry();
    this.log.info(
      { pinDir: this.pinDir, xdpMode: this.mode, flowEntriesCarried: carried },
      'upgraded datapath activated',
    );
  }

  private closeCarry(): void {
    this.carry?.xlb_conntrack.close();
    this.carry?.xlb_reverse.close();
    this.carry = undefined;
  }

  /**
   * Releases this process's descriptors. By default the datapath stays
   * attached and pinned, so traffic keeps flowing and the next agent adopts
   * it; `detach: true` uninstalls it (programs off the uplink, pins removed).
   */
  close(options: { detach?: boolean } = {}): void {
    if (this.closed) return;
    this.closed = true;
    try {
      if (options.detach) this.uninstall();
      else if (this.pending) removeDir(staging(this.pinDir));
    } finally {
      this.closeCarry();
      this.datapath.close();
      this.idMap.close();
      this.infoMap.close();
    }
  }

  private uninstall(): void {
    const u = this.uplink;
    try {
      const current = attachedXdp(u);
      if (current !== undefined && programNamed(current.id, XDP_PROGRAM_NAME)) {
        inUplinkNs(u, () => xdp.detach(u.ifindex, current.mode));
      }
      const tcId = inUplinkNs(u, () => tc.query(tcFilter(u)));
      if (tcId !== 0 && programNamed(tcId, TC_PROGRAM_NAME))
        inUplinkNs(u, () => tc.detach(tcFilter(u)));
    } catch (e) {
      // The uplink (or its namespace) is gone: nothing is attached to detach.
      this.log.debug({ err: errorText(e) }, 'nothing to detach');
    }
    for (const dir of [this.pinDir, staging(this.pinDir), retired(this.pinDir)]) removeDir(dir);
    this.log.info({ pinDir: this.pinDir }, 'datapath uninstalled');
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Opens this node's datapath: installs it, adopts the running one, or
 * upgrades it, as the pins under `pinDir` say (see DatapathVerdict). Hand
 * `maps` and `ids` to a DatapathReconciler; after its first pass, call
 * activate() (it does something only when an upgrade replaced the datapath).
 */
export function openDatapath(options: OpenDatapathOptions): OpenedDatapath {
  const log = options.log ?? logger('datapath');
  const pinDir = options.pinDir ?? DEFAULT_PIN_DIR;
  preparePinDir(pinDir);
  const resolved = resolveLoad(options.settings, options.sizes);
  const wanted = currentInfo(resolved.config);
  const uplink = resolveUplink(options.uplink, options.netns);
  removeDir(staging(pinDir));
  removeDir(retired(pinDir));
  const present = existsSync(pinDir) && readdirSync(pinDir).length > 0;
  return present
    ? reopen(pinDir, options, wanted, uplink, log)
    : install(pinDir, options, wanted, uplink, log);
}

function install(
  pinDir: string,
  options: OpenDatapathOptions,
  wanted: DatapathInfo,
  uplink: Uplink,
  log: Logger,
): OpenedDatapath {
  const dp = load(options.settings, options.sizes);
  const owned: Array<{ close(): void }> = [dp];
  try {
    const idMap = createIdMap(idCapacities(dp.maps));
    owned.push(idMap);
    const infoMap = createInfoMap(wanted);
    owned.push(infoMap);
    const ids = DatapathIds.open(idMap, idCapacities(dp.maps));
    pinInto(staging(pinDir), dp, idMap, infoMap);
    publish(pinDir);
    const mode = attachXdp(uplink, dp.xdp, options.xdpMode, log);
    attachTc(uplink, dp.tc);
    log.info({ pinDir, xdpMode: mode, ifindex: uplink.ifindex }, 'datapath installed');
    return new OpenedDatapath({
      pinDir,
      uplink,
      datapath: dp,
      idMap,
      infoMap,
      ids,
      verdict: { kind: 'installed' },
      xdpMode: mode,
      wantedMode: options.xdpMode,
      pending: false,
      log,
    });
  } catch (e) {
    for (const o of owned.reverse()) o.close();
    removeDir(staging(pinDir));
    removeDir(pinDir);
    throw e;
  }
}

function reopen(
  pinDir: string,
  options: OpenDatapathOptions,
  wanted: DatapathInfo,
  uplink: Uplink,
  log: Logger,
): OpenedDatapath {
  const expected = expectedMapSizes(resolveLoad(options.settings, options.sizes));
  const pinned: Partial<Record<MapName, BpfMap>> = {};
  const owned: Array<{ close(): void }> = [];
  try {
    const sizeProblems: string[] = [];
    for (const name of mapNames) {
      const m = openPinnedIfThere(join(pinDir, name));
      if (m === undefined) {
        sizeProblems.push(`map ${name} is not pinned`);
        continue;
      }
      pinned[name] = m;
      owned.push(m);
      if (m.info.maxEntries !== expected[name]) {
        sizeProblems.push(`map ${name} has ${m.info.maxEntries} entries, ${expected[name]} wanted`);
      }
    }
    const infoMap = openPinnedIfThere(join(pinDir, INFO_PIN));
    if (infoMap) owned.push(infoMap);
    const stored = infoMap ? readInfo(infoMap) : undefined;
    const missingPrograms = Object.values(PROGRAM_PINS).filter((p) => !existsSync(join(pinDir, p)));
    const verdict = judgePins(stored, wanted, sizeProblems, missingPrograms);
    const pinnedIds = openPinnedIfThere(join(pinDir, ID_MAP_PIN));
    if (pinnedIds) owned.push(pinnedIds);
    const parts = { pinDir, uplink, wantedMode: options.xdpMode, log };

    if (verdict.action === 'adopt') {
      const xdpProg = BpfProgram.openPinned(join(pinDir, PROGRAM_PINS.xdp));
      owned.push(xdpProg);
      const tcProg = BpfProgram.openPinned(join(pinDir, PROGRAM_PINS.tc));
      owned.push(tcProg);
      const dp = new Datapath(xdpProg, tcProg, new DatapathMaps(pinned as Record<MapName, BpfMap>));
      const { idMap, ids } = idsFor(pinnedIds, dp, log);
      owned.push(idMap);
      pinIdMap(pinDir, idMap, pinnedIds);
      // Someone may have detached it, or the uplink was recreated.
      const mode = attachXdp(uplink, xdpProg, options.xdpMode, log);
      attachTc(uplink, tcProg);
      log.info(
        { pinDir, xdpMode: mode },
        'datapath adopted: running as pinned, reconciling the difference',
      );
      return new OpenedDatapath({
        ...parts,
        datapath: dp,
        idMap,
        infoMap: infoMap!,
        ids,
        verdict: { kind: 'adopted' },
        xdpMode: mode,
        pending: false,
      });
    }

    if (verdict.action === 'reloadPrograms') {
      const dp = load(options.settings, options.sizes, { reuse: pinned });
      owned.push(dp);
      for (const m of Object.values(pinned)) m.close();
      // Cached verdicts and next hops were the old programs' (maybe another seed).
      dp.maps.invalidateFlowCache();
      const mode = attachXdp(uplink, dp.xdp, options.xdpMode, log);
      attachTc(uplink, dp.tc);
      for (const [prog, pin] of [
        [dp.xdp, PROGRAM_PINS.xdp],
        [dp.tc, PROGRAM_PINS.tc],
      ] as const) {
        rmSync(join(pinDir, pin), { force: true });
        prog.pin(join(pinDir, pin));
      }
      const { idMap, ids } = idsFor(pinnedIds, dp, log);
      owned.push(idMap);
      pinIdMap(pinDir, idMap, pinnedIds);
      // Written last: until now a crash leaves a record that asks for this reload again.
      let info = infoMap;
      if (info !== undefined && readInfo(info) !== undefined) writeInfo(info, wanted);
      else {
        info?.close();
        info = createInfoMap(wanted);
        owned.push(info);
        rmSync(join(pinDir, INFO_PIN), { force: true });
        info.pin(join(pinDir, INFO_PIN));
      }
      log.warn(
        { pinDir, reason: verdict.reason, xdpMode: mode },
        'datapath programs replaced over the pinned maps; flows and state carried over',
      );
      return new OpenedDatapath({
        ...parts,
        datapath: dp,
        idMap,
        infoMap: info,
        ids,
        verdict: { kind: 'upgraded', state: 'kept', reason: verdict.reason },
        xdpMode: mode,
        pending: false,
      });
    }

    const dp = load(options.settings, options.sizes);
    owned.push(dp);
    // Flow entries keep their layout within one ABI: they can move over.
    const sameAbi = stored?.abiVersion === wanted.abiVersion;
    const conntrack = pinned.xlb_conntrack;
    const reverse = pinned.xlb_reverse;
    const carry =
      sameAbi && conntrack !== undefined && reverse !== undefined
        ? { xlb_conntrack: conntrack, xlb_reverse: reverse }
        : undefined;
    for (const m of Object.values(pinned)) {
      if (m !== carry?.xlb_conntrack && m !== carry?.xlb_reverse) m.close();
    }
    infoMap?.close();
    const { idMap, ids } = idsFor(pinnedIds, dp, log);
    owned.push(idMap);
    const info = createInfoMap(wanted);
    owned.push(info);
    log.warn(
      { pinDir, reason: verdict.reason },
      'the pinned datapath is incompatible with this agent: a new one is loaded and swapped in ' +
        'after the first reconcile' +
        (carry
          ? '; established flows are copied over'
          : '; established flows may be rebalanced (the connection table starts empty)'),
    );
    return new OpenedDatapath({
      ...parts,
      datapath: dp,
      idMap,
      infoMap: info,
      ids,
      verdict: { kind: 'upgraded', state: 'reinstalled', reason: verdict.reason },
      xdpMode: undefined,
      pending: true,
      ...(carry ? { carry } : {}),
    });
  } catch (e) {
    for (const o of owned.reverse()) o.close();
    throw e;
  }
}

/** Pins a newly made id map where the old one was (the pinned one stays as is). */
function pinIdMap(pinDir: string, idMap: BpfMap, pinned: BpfMap | undefined): void {
  if (idMap === pinned) return;
  pinned?.close();
  rmSync(join(pinDir, ID_MAP_PIN), { force: true });
  idMap.pin(join(pinDir, ID_MAP_PIN));
}
