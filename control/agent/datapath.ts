// The agent's DatapathPort over control/datapath: openDatapath (install,
// adopt or upgrade the pinned datapath on the uplink), a DatapathReconciler
// driven by a ReconcileLoop, and the datapath's metrics while it is open.
import { existsSync, rmSync } from 'node:fs';

import { BpfProgram, ifIndex, inNetns, tc, xdp, type XdpMode } from '../../native/index.js';
import {
  DatapathReconciler,
  openDatapath,
  ReconcileLoop,
  registerDatapathMetrics,
  type OpenedDatapath,
  type ReconcileResult,
} from '../datapath/index.js';
import type { Unit } from '../model/index.js';
import { logger, type Logger } from '../observe/log.js';

import type {
  AgentDatapath,
  DatapathLocation,
  DatapathPort,
  OpenDatapathRequest,
  ReconcileAttempt,
  ReconcileSink,
  UninstallReport,
} from './ports.js';

/** Names the programs have in xlb's objects: uninstall detaches only these. */
const XDP_PROGRAM_NAME = 'xlb_xdp';
const TC_PROGRAM_NAME = 'xlb_tc_egress';
/** Where the datapath puts its tc filter: the native API's defaults. */
const TC_WHERE = { handle: 1, priority: 1 } as const;
/** After a failed activation, the next try of it. */
const ACTIVATE_RETRY_MS = 1000;

const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** The retryable failures of a pass, as one error for the log and /readyz. */
function passError(result: ReconcileResult): Error {
  const retryable = result.failures.filter((f) => f.retryable);
  const shown = retryable.slice(0, 3).map((f) => `${f.unit}: ${f.message}`);
  const more =
    retryable.length > shown.length ? ` (and ${retryable.length - shown.length} more)` : '';
  return new Error(
    `${retryable.length} change${retryable.length === 1 ? '' : 's'} could not be applied yet: ${shown.join('; ')}${more}`,
  );
}

/**
 * Drives the reconciler through a ReconcileLoop and reports every pass. A
 * pass is a success when nothing in it is worth retrying: failures that need
 * a new desired state (an invalid object) are the model's and the
 * reconciler's to report, and must not keep the node from becoming ready.
 */
class LoopSink implements ReconcileSink {
  private readonly listeners = new Set<(attempt: ReconcileAttempt) => void>();
  private readonly loop: ReconcileLoop;
  private desired: readonly Unit[] | undefined;
  private activationTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly opened: OpenedDatapath,
    reconciler: DatapathReconciler,
    private readonly log: Logger,
  ) {
    const guarded = {
      reconcile: (units: readonly Unit[]): ReconcileResult => {
        const started = performance.now();
        try {
          return reconciler.reconcile(units);
        } catch (e) {
          // The loop logs it and retries with backoff; readiness hears of it here.
          this.emit({
            ok: false,
            durationMs: performance.now() - started,
            error: e instanceof Error ? e : new Error(String(e)),
            retryInMs: undefined,
          });
          throw e;
        }
      },
    };
    this.loop = new ReconcileLoop(guarded, { onResult: (r) => this.onResult(r), log });
  }

  submit(units: readonly Unit[]): void {
    this.desired = units;
    this.loop.update(units);
  }

  onAttempt(listener: (attempt: ReconcileAttempt) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  stop(): Promise<void> {
    // A pass is synchronous: none can be half done while this runs, so
    // cancelling the scheduled pass and retries is all there is to wait for.
    this.stopped = true;
    this.loop.stop();
    clearTimeout(this.activationTimer);
    return Promise.resolve();
  }

  private onResult(result: ReconcileResult): void {
    const durationMs = result.durationSeconds * 1000;
    if (result.retry) {
      // The loop schedules its retry after this returns; say when.
      queueMicrotask(() =>
        this.emit({
          ok: false,
          durationMs,
          error: passError(result),
          retryInMs: this.loop.retryInMs,
        }),
      );
      return;
    }
    if (this.opened.needsActivation) {
      // An upgrade that replaces the datapath goes in service only now that
      // its maps hold the desired state.
      try {
        this.opened.activate();
      } catch (e) {
        this.emit({
          ok: false,
          durationMs,
          error: new Error(`cannot put the upgraded datapath in service: ${errorText(e)}`),
          retryInMs: ACTIVATE_RETRY_MS,
        });
        this.activationTimer = setTimeout(() => {
          if (!this.stopped && this.desired !== undefined) this.loop.update(this.desired);
        }, ACTIVATE_RETRY_MS);
        return;
      }
    }
    this.emit({
      ok: true,
      durationMs,
      summary: {
        writes: result.writes,
        changes: result.changes.length,
        ...(result.failures.length > 0 ? { failures: result.failures.length } : {}),
      },
      result,
    });
  }

  private emit(attempt: ReconcileAttempt): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(attempt);
      } catch (e) {
        this.log.error({ err: e }, 'a reconcile listener failed');
      }
    }
  }
}

function open(request: OpenDatapathRequest): AgentDatapath {
  const log = logger('datapath');
  const opened = openDatapath({
    pinDir: request.pinDir,
    uplink: request.uplink,
    ...(request.netns !== undefined ? { netns: request.netns } : {}),
    ...(request.sizes !== undefined ? { sizes: request.sizes } : {}),
    settings: request.settings,
    log,
  });
  let unregister: (() => void) | undefined;
  try {
    const reconciler = new DatapathReconciler({
      maps: opened.maps,
      ids: opened.ids,
      settings: request.settings,
      log,
    });
    unregister = registerDatapathMetrics({
      maps: opened.maps,
      serviceCounterLabels: () => reconciler.serviceCounterLabels(),
    });
    const sink = new LoopSink(opened, reconciler, log);
    const v = opened.verdict;
    return {
      origin: v.kind,
      details: {
        ...(v.kind === 'upgraded' ? { upgrade: v.state, upgradeReason: v.reason } : {}),
        xdpMode: opened.xdpMode ?? 'after the first reconcile',
      },
      reconciler: sink,
      servedVips: (addresses) => {
        if (addresses.length === 0) return [];
        const wanted = new Set(addresses);
        return [...opened.maps.vips()].filter((v) => wanted.has(v));
      },
      close: () => {
        unregister?.();
        opened.close();
      },
    };
  } catch (e) {
    unregister?.();
    opened.close();
    throw e;
  }
}

function programNamed(id: number, name: string): boolean {
  try {
    using p = BpfProgram.fromId(id);
    return p.info.name === name;
  } catch {
    return false; // gone meanwhile
  }
}

/**
 * Detaches xlb's programs from the uplink and removes the pin directory
 * (with the staging directories openDatapath may have left). Needs no
 * working datapath: it also cleans up after a crash half-way through an
 * install, or after the uplink is gone. Programs of other names are left
 * alone: the uplink may carry someone else's XDP or tc program.
 */
function uninstall(location: DatapathLocation): UninstallReport {
  const removed: string[] = [];
  const where = location.netns === undefined ? '' : ` in ${location.netns}`;
  const inNs = <T>(fn: () => T): T =>
    location.netns === undefined ? fn() : inNetns(location.netns, fn);
  let ifindex: number | undefined;
  try {
    ifindex = inNs(() => ifIndex(location.uplink));
  } catch {
    ifindex = undefined; // no uplink, so nothing attached to it
  }
  if (ifindex !== undefined) {
    const index = ifindex;
    const state = inNs(() => xdp.query(index));
    const attached: [number, XdpMode][] = [
      [state.nativeProgId, 'native'],
      [state.genericProgId, 'generic'],
    ];
    for (const [id, mode] of attached) {
      if (id === 0 || !programNamed(id, XDP_PROGRAM_NAME)) continue;
      inNs(() => xdp.detach(index, mode));
      removed.push(`detached XDP program ${id} (${mode}) from ${location.uplink}${where}`);
    }
    const filter = { ifindex: index, direction: 'egress' as const, ...TC_WHERE };
    const tcId = inNs(() => tc.query(filter));
    if (tcId !== 0 && programNamed(tcId, TC_PROGRAM_NAME)) {
      inNs(() => tc.detach(filter));
      removed.push(`detached tc egress program ${tcId} from ${location.uplink}${where}`);
    }
  }
  for (const dir of [location.pinDir, `${location.pinDir}-next`, `${location.pinDir}-old`]) {
    if (!existsSync(dir)) continue;
    rmSync(dir, { recursive: true, force: true });
    removed.push(`unpinned ${dir}`);
  }
  return { removed };
}

export const datapathPort: DatapathPort = {
  open: (request) => Promise.resolve().then(() => open(request)),
  uninstall: (location) => Promise.resolve().then(() => uninstall(location)),
};
