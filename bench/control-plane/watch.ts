// When a service's new Maglev table becomes visible to the datapath, seen
// from another thread. A table goes in either by a flip of the half its
// inner map's header names, or (when its size changed) as a new inner map,
// whose system call returns only after an RCU grace period but is used by
// every new packet from the start of that call. A worker polls the service's
// slot of xlb_maglev and its header (every ~0.1 ms, sleeping in between so
// it does not take the other CPU) and notes when either changes.
//
// This module is also the worker's entry.
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

import { BpfMap } from '../../native/index.js';

const ROLE = 'xlb-bench-table-watcher';
/** ctl words: state, service id, the inner map id and header word1 to see replaced. */
const STATE = 0;
const SERVICE = 1;
const OLD_ID = 2;
const OLD_HALF = 3;
const IDLE = 0;
const ARMED = 1;
const SEEN = 2;
const STOP = 3;

function key32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v);
  return b;
}

export class TableWatcher {
  private readonly ctl = new Int32Array(new SharedArrayBuffer(16));
  private readonly inners = new InnerMaps();
  /** When the change was seen (process.hrtime.bigint()). */
  private readonly seenAt = new BigInt64Array(new SharedArrayBuffer(8));
  private readonly worker: Worker;
  private readonly maglev: BpfMap;

  private constructor(maglevPin: string) {
    this.maglev = BpfMap.openPinned(maglevPin);
    this.worker = new Worker(fileURLToPath(import.meta.url), {
      workerData: { role: ROLE, ctl: this.ctl, seenAt: this.seenAt, pin: maglevPin },
    });
    this.worker.unref();
  }

  /** A watcher whose thread is running. */
  static async start(maglevPin: string): Promise<TableWatcher> {
    const w = new TableWatcher(maglevPin);
    await new Promise<void>((resolve, reject) => {
      w.worker.once('message', () => resolve());
      w.worker.once('error', reject);
    });
    return w;
  }

  /** Starts watching for the service's table to change from what it is now. */
  arm(serviceId: number): void {
    const [id, half] = version(this.maglev, this.inners, serviceId);
    Atomics.store(this.ctl, SERVICE, serviceId);
    Atomics.store(this.ctl, OLD_ID, id);
    Atomics.store(this.ctl, OLD_HALF, half);
    Atomics.store(this.ctl, STATE, ARMED);
    Atomics.notify(this.ctl, STATE);
  }

  /** When the table changed (hrtime ns), or undefined when it was not seen; the watch ends. */
  take(): bigint | undefined {
    // The flip can come moments before the pass returns: give the poller
    // (which notifies when it sees it) up to 50 ms more.
    Atomics.wait(this.ctl, STATE, ARMED, 50);
    const seen = Atomics.compareExchange(this.ctl, STATE, ARMED, IDLE) === SEEN;
    Atomics.store(this.ctl, STATE, IDLE);
    return seen ? this.seenAt[0] : undefined;
  }

  close(): void {
    Atomics.store(this.ctl, STATE, STOP);
    Atomics.notify(this.ctl, STATE);
    void this.worker.terminate();
    this.maglev.close();
    this.inners.close();
  }
}

/** Inner maps opened by id, kept open while watched (opening one is a system call). */
class InnerMaps {
  private readonly open = new Map<number, BpfMap>();

  get(id: number): BpfMap | undefined {
    let m = this.open.get(id);
    if (m === undefined) {
      try {
        m = BpfMap.fromId(id);
      } catch {
        return undefined; // replaced and freed in between
      }
      if (this.open.size > 64) this.close();
      this.open.set(id, m);
    }
    return m;
  }

  close(): void {
    for (const m of this.open.values()) m.close();
    this.open.clear();
  }
}

/** The service's table version: its inner map's id and the header's word1 (the half in use). */
function version(maglev: BpfMap, inners: InnerMaps, serviceId: number): [number, number] {
  const id = maglev.lookup(key32(serviceId))?.readUInt32LE(0) ?? 0;
  const header = id === 0 ? undefined : inners.get(id)?.lookup(key32(0));
  return [id, header?.readInt32LE(4) ?? 0];
}

function serve(data: { ctl: Int32Array; seenAt: BigInt64Array; pin: string }): void {
  const { ctl, seenAt } = data;
  using maglev = BpfMap.openPinned(data.pin);
  const inners = new InnerMaps();
  parentPort?.postMessage('ready');
  for (;;) {
    const state = Atomics.load(ctl, STATE);
    if (state === STOP) return inners.close();
    if (state !== ARMED) {
      Atomics.wait(ctl, STATE, state, 100);
      continue;
    }
    const [id, half] = version(maglev, inners, Atomics.load(ctl, SERVICE));
    if (id !== Atomics.load(ctl, OLD_ID) || half !== Atomics.load(ctl, OLD_HALF)) {
      seenAt[0] = process.hrtime.bigint();
      Atomics.compareExchange(ctl, STATE, ARMED, SEEN);
      Atomics.notify(ctl, STATE);
      continue;
    }
    Atomics.wait(ctl, STATE, ARMED, 0.05);
  }
}

if (!isMainThread && (workerData as { role?: string } | null)?.role === ROLE) {
  serve(workerData as { ctl: Int32Array; seenAt: BigInt64Array; pin: string });
}
