// When a service's new Maglev table becomes visible to the datapath, seen
// from another thread: the reconciler's thread is inside the update system
// call until the kernel has waited for an RCU grace period (no program still
// using the old table), but the new table is in the map, and used by every
// new packet, from the start of that call. A worker polls the service's slot
// of xlb_maglev (every ~0.1 ms, sleeping in between so it does not take the
// other CPU from the grace period) and notes when the inner map changes.
//
// This module is also the worker's entry.
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

import { BpfMap } from '../../native/index.js';

const ROLE = 'xlb-bench-table-watcher';
/** ctl words: state, service id, the inner map id to see replaced. */
const STATE = 0;
const SERVICE = 1;
const OLD = 2;
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

  /** The inner map now under the service id (0: none). */
  current(serviceId: number): number {
    return this.maglev.lookup(key32(serviceId))?.readUInt32LE(0) ?? 0;
  }

  /** Starts watching for the service's table to change from what it is now. */
  arm(serviceId: number): void {
    Atomics.store(this.ctl, SERVICE, serviceId);
    Atomics.store(this.ctl, OLD, this.current(serviceId));
    Atomics.store(this.ctl, STATE, ARMED);
    Atomics.notify(this.ctl, STATE);
  }

  /** When the table changed (hrtime ns), or undefined when it was not seen; the watch ends. */
  take(): bigint | undefined {
    const seen = Atomics.compareExchange(this.ctl, STATE, ARMED, IDLE) === SEEN;
    Atomics.store(this.ctl, STATE, IDLE);
    return seen ? this.seenAt[0] : undefined;
  }

  close(): void {
    Atomics.store(this.ctl, STATE, STOP);
    Atomics.notify(this.ctl, STATE);
    void this.worker.terminate();
    this.maglev.close();
  }
}

function serve(data: { ctl: Int32Array; seenAt: BigInt64Array; pin: string }): void {
  const { ctl, seenAt } = data;
  using maglev = BpfMap.openPinned(data.pin);
  parentPort?.postMessage('ready');
  for (;;) {
    const state = Atomics.load(ctl, STATE);
    if (state === STOP) return;
    if (state !== ARMED) {
      Atomics.wait(ctl, STATE, state, 100);
      continue;
    }
    const id = maglev.lookup(key32(Atomics.load(ctl, SERVICE)))?.readUInt32LE(0) ?? 0;
    if (id !== Atomics.load(ctl, OLD)) {
      seenAt[0] = process.hrtime.bigint();
      Atomics.compareExchange(ctl, STATE, ARMED, SEEN);
      continue;
    }
    Atomics.wait(ctl, STATE, ARMED, 0.05);
  }
}

if (!isMainThread && (workerData as { role?: string } | null)?.role === ROLE) {
  serve(workerData as { ctl: Int32Array; seenAt: BigInt64Array; pin: string });
}
