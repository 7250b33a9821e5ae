// The agent's datapath side as the control-plane benchmark runs it: the
// same DatapathPort and Pipeline the agent uses (control/agent), over a
// store the benchmark fills, with every reconcile attempt observable.
import { readFileSync } from 'node:fs';

import { datapathPort } from '../../control/agent/datapath.js';
import { Pipeline } from '../../control/agent/pipeline.js';
import type { AgentDatapath, ReconcileAttempt } from '../../control/agent/ports.js';
import type { ReconcileResult } from '../../control/datapath/index.js';
import type { ClusterStore } from '../../control/store/cluster-store.js';
import { THIS_NODE } from './cluster.js';

export const NODE4 = '192.0.2.1';
export const SETTINGS = { hashSeed: 0x5eed, mtu: 1500, nodeIPv4: NODE4, nodeIPv6: '2001:db8::1' };
/** Room for 16,384 services and 131,072 backends in every map that holds either. */
export const SIZES = {
  xlb_vips: 16384,
  xlb_frontends: 65536,
  xlb_maglev: 65536,
  xlb_service_stats: 65536,
  xlb_backends: 131072,
  xlb_backend_stats: 131072,
  xlb_nexthops: 131072,
};

/** kB figures of /proc/self/status, in MB. */
export function memoryMB(field: 'VmHWM' | 'VmRSS'): number {
  const line = readFileSync('/proc/self/status', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${field}:`));
  if (line === undefined) throw new Error(`no ${field} in /proc/self/status`);
  return Number(/(\d+)/.exec(line)![1]) / 1024;
}

/** Resolves with each successful reconcile attempt; a failed one rejects the wait. */
class Attempts {
  private waiting: { resolve: (r: ReconcileResult) => void; reject: (e: Error) => void }[] = [];

  listen(a: ReconcileAttempt): void {
    const w = this.waiting.shift();
    if (w === undefined) return;
    if (a.ok && a.result !== undefined) w.resolve(a.result);
    else w.reject(new Error(`reconcile failed: ${a.ok ? 'no result' : a.error.message}`));
  }

  next(timeoutMs: number): Promise<ReconcileResult> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no reconcile within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.waiting.push({
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
    });
  }
}

export interface RunningAgent {
  dp: AgentDatapath;
  pipeline: Pipeline;
  attempts: Attempts;
  /** Time each derivation took. */
  deriveMs: number[];
  /** Pipeline steps that threw: the benchmark fails on the next check. */
  failures: string[];
}

/** Opens (installs or adopts) the datapath and makes the agent's pipeline over `store`; not started. */
export async function openAgent(
  store: ClusterStore,
  pinDir: string,
  ns: string,
): Promise<RunningAgent> {
  const dp = await datapathPort.open({
    pinDir,
    netns: ns,
    uplink: 'eth0',
    settings: SETTINGS,
    sizes: SIZES,
  });
  const attempts = new Attempts();
  dp.reconciler.onAttempt((a) => attempts.listen(a));
  const deriveMs: number[] = [];
  const failures: string[] = [];
  const pipeline = new Pipeline({
    store,
    nodeName: THIS_NODE,
    sink: dp.reconciler,
    onModel: (_u, t) => deriveMs.push(t.deriveMs),
    onFailure: (step, e) => failures.push(`${step}: ${e instanceof Error ? e.message : String(e)}`),
  });
  return { dp, pipeline, attempts, deriveMs, failures };
}

/** The next successful pass after `start()`; fails on a failed pass, a pipeline failure or a timeout. */
export async function nextPass(
  a: RunningAgent,
  start: () => void,
  timeoutMs: number,
): Promise<ReconcileResult> {
  const next = a.attempts.next(timeoutMs);
  start();
  const r = await next;
  if (a.failures.length > 0) throw new Error(`pipeline: ${a.failures.join('; ')}`);
  if (!r.ok) throw new Error(`reconcile failed: ${JSON.stringify(r.failures.slice(0, 3))}`);
  return r;
}

export async function stopAgent(a: RunningAgent | undefined): Promise<void> {
  if (a === undefined) return;
  a.pipeline.stop();
  await a.dp.reconciler.stop();
  a.dp.close();
}

export function tablesBuilt(r: ReconcileResult): string {
  return Object.entries(r.tablesBuilt)
    .map(([m, n]) => `${n} of M=${m}`)
    .join(', ');
}

export function builtCount(r: ReconcileResult): number {
  return Object.values(r.tablesBuilt).reduce((a, b) => a + b, 0);
}
