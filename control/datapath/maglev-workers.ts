// Maglev tables built on worker threads while the calling thread builds too
// and fills inner maps: a full sync builds thousands of tables (half a
// millisecond each at M=16381), most of the sync on one thread. Synchronous
// to its caller, as a reconcile pass is: a worker copies each table into one
// of a few shared slots, and the caller sleeps on a shared word while it
// waits, so no turn of the event loop is needed. Both sides take jobs from
// one shared counter, so the work splits itself between them. No buffer
// crosses threads: memory one thread's allocator hands out is freed there.
//
// This module is also the workers' entry (see serve() at the bottom).
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Worker, isMainThread, workerData } from 'node:worker_threads';

import { buildTable } from '../maglev/table.js';
import { distScript } from '../paths.js';

/** What buildTable needs: names (sorted, unique) and their weights. */
export interface TableJob {
  size: number;
  names: readonly string[];
  weights: readonly number[];
}

/**
 * A job's table (slot -> index into its names), or why it could not be
 * built. The table may live in a shared slot: it is the caller's until it
 * asks for the next outcome.
 */
export type TableOutcome = { table: Uint32Array } | { error: string };

const ROLE = 'xlb-maglev-worker';
/** Fewer jobs than this are built on the calling thread: a worker takes tens of ms to start. */
const MIN_JOBS = 64;
/** Shared slots per worker: tables built and not yet taken. */
const SLOTS = 4;
/** Control words: the next job to take, a change counter (waited on), then per slot its state and job. */
const NEXT = 0;
const CHANGED = 1;
const SLOT_STATE = 2;
const FREE = 0;
const FILLED = 1;
/** A job that failed: its slot holds no table. */
const FAILED = 2;
/** No word from a worker for this long: it is taken for dead, and its jobs are built here. */
const STALL_MS = 10_000;

interface Shared {
  ctl: Int32Array;
  /** Per slot: the job index. */
  jobOf: Int32Array;
  tables: Uint32Array;
  slotWords: number;
  jobs: SharedJobs;
}

/**
 * The jobs, written once where every worker reads them (a structured clone
 * per worker of 10,000 jobs would be megabytes each): per job its size and
 * where its text lies; the text is its weights, then its names, a line each.
 */
interface SharedJobs {
  count: number;
  /** Per job: byte offset, byte length, table size. */
  index: Int32Array;
  text: Uint8Array;
}

function shareJobs(jobs: readonly TableJob[]): SharedJobs {
  const texts = jobs.map((j) => Buffer.from(`${j.weights.join(',')}\n${j.names.join('\n')}`));
  const index = new Int32Array(new SharedArrayBuffer(12 * jobs.length));
  const text = new Uint8Array(new SharedArrayBuffer(texts.reduce((n, t) => n + t.length, 0)));
  let at = 0;
  texts.forEach((t, i) => {
    index.set([at, t.length, jobs[i]!.size], 3 * i);
    text.set(t, at);
    at += t.length;
  });
  return { count: jobs.length, index, text };
}

function sharedJob(jobs: SharedJobs, i: number): TableJob {
  const [at, length, size] = jobs.index.subarray(3 * i, 3 * i + 3);
  const [weights = '', ...names] = Buffer.from(jobs.text.buffer, at, length).toString().split('\n');
  return { size: size!, names, weights: weights.split(',').map(Number) };
}

function buildOne(job: TableJob): TableOutcome {
  try {
    const { table } = buildTable(
      job.names.map((name, i) => ({ name, weight: job.weights[i]! })),
      job.size,
    );
    return { table };
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  }
}

/** The compiled entry the workers run; undefined when there is none (running from sources). */
function workerEntry(): string | undefined {
  const file = distScript('control/datapath/maglev-workers.js');
  return existsSync(file) ? file : undefined;
}

function signal(ctl: Int32Array): void {
  Atomics.add(ctl, CHANGED, 1);
  Atomics.notify(ctl, CHANGED);
}

/**
 * Builds `jobs`, yielding each outcome with its job's index as soon as it
 * is ready (in no particular order). With many jobs, worker threads (one
 * less than the CPUs) build alongside the calling thread.
 */
export function* buildTables(
  jobs: readonly TableJob[],
  options: {
    workers?: number;
    /** Filled in as it goes: how many tables this thread and the workers built. */
    stats?: { here: number; workers: number };
  } = {},
): Generator<[number, TableOutcome]> {
  const stats = options.stats ?? { here: 0, workers: 0 };
  const count = Math.min(options.workers ?? availableParallelism(), 4);
  const entry = workerEntry();
  if (jobs.length < MIN_JOBS || count < 1 || entry === undefined) {
    for (const [i, job] of jobs.entries()) {
      stats.here++;
      yield [i, buildOne(job)];
    }
    return;
  }
  const slotWords = Math.max(...jobs.map((j) => j.size));
  const slots = SLOTS * count;
  const shared: Shared = {
    ctl: new Int32Array(new SharedArrayBuffer(4 * (SLOT_STATE + slots))),
    jobOf: new Int32Array(new SharedArrayBuffer(4 * slots)),
    tables: new Uint32Array(new SharedArrayBuffer(4 * slotWords * slots)),
    slotWords,
    jobs: shareJobs(jobs),
  };
  const { ctl, jobOf, tables } = shared;
  const workers: Worker[] = [];
  try {
    for (let w = 0; w < count; w++) {
      const worker = new Worker(entry, {
        workerData: { role: ROLE, ...shared, first: w * SLOTS, slots: SLOTS },
        // It builds tables and nothing else. A small young generation is collected often,
        // and with it the tables it built (64 KiB each, outside the heap): with the
        // default the dead ones pile up to tens of megabytes first.
        resourceLimits: { maxYoungGenerationSizeMb: 1 },
      });
      worker.unref();
      // A worker that fails to start shows up as a stall below.
      worker.on('error', () => undefined);
      workers.push(worker);
    }
    const pending = new Set(jobs.keys());
    let lastWord = performance.now();
    while (pending.size > 0) {
      const seen = Atomics.load(ctl, CHANGED);
      let received = false;
      for (let s = 0; s < slots; s++) {
        const state = Atomics.load(ctl, SLOT_STATE + s);
        if (state !== FILLED && state !== FAILED) continue;
        received = true;
        const i = jobOf[s]!;
        const size = jobs[i]?.size ?? 0;
        if (pending.delete(i)) {
          stats.workers++;
          // The caller is done with the slot when it asks for the next outcome.
          yield [
            i,
            state === FILLED
              ? { table: tables.subarray(s * slotWords, s * slotWords + size) }
              : // Built again here for its reason: failures are rare (a bad size).
                buildOne(jobs[i]!),
          ];
        }
        Atomics.store(ctl, SLOT_STATE + s, FREE);
        signal(ctl);
      }
      if (received) lastWord = performance.now();
      if (pending.size === 0) break;
      if (received) continue;
      if (performance.now() - lastWord > STALL_MS) {
        // Every job was taken, but some table never came: build it here.
        for (const j of [...pending]) {
          pending.delete(j);
          stats.here++;
          yield [j, buildOne(jobs[j]!)];
        }
        break;
      }
      Atomics.wait(ctl, CHANGED, seen, 50);
    }
  } finally {
    // Claim whatever is left, so workers stop taking jobs, then let them go.
    Atomics.store(ctl, NEXT, jobs.length);
    signal(ctl);
    for (const worker of workers) void worker.terminate();
  }
}

/** A worker: takes jobs from the shared counter until none is left, each into a free slot of its own. */
function serve(data: Shared & { first: number; slots: number }): void {
  const { ctl, jobOf, tables, slotWords, jobs, first, slots } = data;
  const freeSlot = (): number => {
    for (;;) {
      const seen = Atomics.load(ctl, CHANGED);
      for (let s = first; s < first + slots; s++)
        if (Atomics.load(ctl, SLOT_STATE + s) === FREE) return s;
      Atomics.wait(ctl, CHANGED, seen);
    }
  };
  for (let i = Atomics.add(ctl, NEXT, 1); i < jobs.count; i = Atomics.add(ctl, NEXT, 1)) {
    const outcome = buildOne(sharedJob(jobs, i));
    const s = freeSlot();
    jobOf[s] = i;
    if ('table' in outcome) tables.set(outcome.table, s * slotWords);
    Atomics.store(ctl, SLOT_STATE + s, 'table' in outcome ? FILLED : FAILED);
    signal(ctl);
  }
}

if (!isMainThread && (workerData as { role?: string } | null)?.role === ROLE) {
  serve(workerData as Shared & { first: number; slots: number });
}
