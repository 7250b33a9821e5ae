// The agent's side of a Service's cleanup: the Service controller removes
// the load-balancer-cleanup finalizer only once this node no longer
// balances the Service's addresses. The controller clears the Service's
// status first; every agent's model then drops the addresses, and the
// reconcile pass after that removes them from the maps. Checked against the
// maps themselves after every successful pass, not against the model, so a
// removal that failed (and is being retried) keeps the finalizer in place.
import type { CleanupPort } from '../k8s/cleanup.js';

import type { ReconcileAttempt } from './ports.js';

export interface ClearanceOptions {
  /** Of `addresses`, those the datapath still balances. */
  servedVips(addresses: readonly string[]): string[];
  /** Runs `listener` after every reconcile attempt; returns the unsubscribe. */
  onAttempt(listener: (attempt: ReconcileAttempt) => void): () => void;
}

interface Waiter {
  addresses: readonly string[];
  resolve: () => void;
}

export class DatapathClearance implements CleanupPort {
  private readonly waiters = new Set<Waiter>();
  private readonly unsubscribe: () => void;

  constructor(private readonly options: ClearanceOptions) {
    this.unsubscribe = options.onAttempt((attempt) => {
      if (attempt.ok) this.check();
    });
  }

  whenCleared(_serviceKey: string, addresses: string[], signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(abortReason(signal));
    if (this.options.servedVips(addresses).length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        addresses: [...addresses],
        resolve: () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = (): void => {
        this.waiters.delete(waiter);
        reject(abortReason(signal));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.add(waiter);
    });
  }

  /** Stops listening; waiters still pending stay pending until their signal aborts. */
  close(): void {
    this.unsubscribe();
  }

  private check(): void {
    for (const w of [...this.waiters]) {
      if (this.options.servedVips(w.addresses).length > 0) continue;
      this.waiters.delete(w);
      w.resolve();
    }
  }
}

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('cleanup wait aborted');
}
