// What the agent needs from the outside world, as interfaces: the datapath
// (open or adopt, reconcile, close, uninstall) and the uplink's facts. The
// real implementations are datapath.ts and uplink.ts; the pipeline tests
// plug in fakes, so the pipeline's logic is tested without root.
import type { MapSizes, ReconcileResult } from '../datapath/index.js';
import type { Unit } from '../model/index.js';

/** The load-time settings of the datapath (read-only globals in the BPF programs). */
export interface AgentDatapathSettings {
  hashSeed: number;
  mtu: number;
  nodeIPv4: string;
  nodeIPv6: string;
}

export interface DatapathLocation {
  /** Directory of the pinned maps and programs. */
  pinDir: string;
  /** Network namespace of the uplink; undefined: the agent's own. */
  netns: string | undefined;
  uplink: string;
}

export interface OpenDatapathRequest extends DatapathLocation {
  settings: AgentDatapathSettings;
  /** Map sizes other than the objects' own (room for more services or backends). */
  sizes?: MapSizes;
}

/** One reconcile attempt, as the agent logs and counts it. */
export type ReconcileAttempt =
  | {
      ok: true;
      durationMs: number;
      summary: Readonly<Record<string, unknown>>;
      /** The pass in full, when the datapath is a real one. */
      result?: ReconcileResult;
    }
  | { ok: false; durationMs: number; error: Error; retryInMs: number | undefined };

/**
 * Takes the desired units and makes the maps hold them, in the background:
 * the latest submission wins, failures are retried with backoff.
 */
export interface ReconcileSink {
  /** Returns at once. */
  submit(units: readonly Unit[]): void;
  /** `listener` runs after every attempt. Returns the unsubscribe. */
  onAttempt(listener: (attempt: ReconcileAttempt) => void): () => void;
  /** Stops retrying; resolves once the attempt in flight, if any, has finished. */
  stop(): Promise<void>;
}

export interface AgentDatapath {
  /**
   * installed: nothing was pinned, a new datapath now runs; adopted: the
   * running, pinned datapath was taken over as it is (a hitless restart);
   * upgraded: the pinned one was of another build or settings and is replaced.
   */
  readonly origin: 'installed' | 'adopted' | 'upgraded';
  /** Facts worth one log line at start (program ids, settings in effect, ...). */
  readonly details: Readonly<Record<string, unknown>>;
  readonly reconciler: ReconcileSink;
  /**
   * Of `addresses`, those the datapath still balances (VIPs in its maps):
   * what a Service's cleanup waits to see empty before its finalizer goes.
   */
  servedVips(addresses: readonly string[]): string[];
  /**
   * Releases this process's descriptors. The programs stay attached and the
   * maps pinned, so traffic keeps flowing until the next agent adopts them.
   */
  close(): void;
}

export interface UninstallReport {
  /** One line per thing removed, for the operator. */
  removed: string[];
}

export interface DatapathPort {
  /** Adopts the datapath pinned at pinDir if there is a usable one, else loads and pins a new one; attaches it to the uplink. */
  open(request: OpenDatapathRequest): Promise<AgentDatapath>;
  /** Detaches from the uplink and unpins everything under pinDir. */
  uninstall(location: DatapathLocation): Promise<UninstallReport>;
}

export interface UplinkFacts {
  mtu: number;
  /** Global-scope addresses in the kernel's order (primary first). */
  ipv4: string[];
  ipv6: string[];
}

export type UplinkReader = (netns: string | undefined, uplink: string) => UplinkFacts;
