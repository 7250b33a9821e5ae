// The stateful shell around allocate() for a long-running reconciler. It
// remembers its last result so that (1) an address it just assigned counts as
// held even before the status write shows up in the informer (no address is
// handed out twice from a stale read) and (2) a Service that stays pending is
// not reported again every pass with the same AllocationFailed event.
// A new Allocator (a restart, a new leader) starts from the Services' status
// alone, which is exactly what allocate() restores from.
import type { ModelOptions } from '../model/types.js';

import { allocate } from './allocate.js';
import type { AllocationEvent, AllocationInput, AllocationResult } from './types.js';

export type ReconcileInput = Omit<AllocationInput, 'options' | 'inFlight'>;

export class Allocator {
  private inFlight = new Map<string, readonly string[]>();
  private lastFailure = new Map<string, string>();

  constructor(private readonly options: Partial<ModelOptions> = {}) {}

  reconcile(input: ReconcileInput): AllocationResult {
    const result = allocate({ ...input, options: this.options, inFlight: this.inFlight });
    this.inFlight = new Map(
      result.services.map((s) => [s.service, s.addresses.map((a) => a.address)]),
    );
    const failures = new Map<string, string>();
    const events: AllocationEvent[] = [];
    for (const e of result.events) {
      if (e.reason === 'AllocationFailed') {
        const id = `${e.detail}\n${e.message}`;
        failures.set(e.service, id);
        if (this.lastFailure.get(e.service) === id) continue;
      }
      events.push(e);
    }
    this.lastFailure = failures;
    return { ...result, events };
  }

  /**
   * Forgets what it assigned to one Service, whose status then counts again:
   * for a writer that read the Service fresh and found its status is not what
   * this allocator's view was based on (another leader or a person wrote it).
   */
  forget(service: string): void {
    this.inFlight.delete(service);
  }

  /** Forgets what it assigned: for a process that lost leadership and may win it again later. */
  reset(): void {
    this.inFlight = new Map();
    this.lastFailure = new Map();
  }
}
