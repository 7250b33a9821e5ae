// What one allocation run knows about each Service and each address in use.
import type { Family } from '../model/types.js';

import type { PoolEntry } from './pools.js';
import { allocationSeverity, type PendingReason, type ReleaseReason } from './reasons.js';
import type { Address, ServiceRequest } from './requests.js';
import type { AllocationEvent } from './types.js';

export type Holder = { kind: 'ours'; state: ServiceState } | { kind: 'foreign'; key: string };

/** One address in use, by one Service or several sharing it. */
export interface Holding {
  address: Address;
  pool: PoolEntry;
  holders: Holder[];
}

export interface Kept {
  address: Address;
  pool: PoolEntry;
  /** Not held at input: allocated by this run. */
  isNew: boolean;
  /** Other Services on the same address when it was taken. */
  sharedWith: string[];
}

export interface ServiceState {
  req: ServiceRequest;
  namespaceLabels: Readonly<Record<string, string>>;
  kept: Map<Family, Kept>;
  events: AllocationEvent[];
  failure?: { reason: PendingReason; message: string };
  /** Families a PreferDualStack Service goes without, and why. */
  notes: string[];
}

/** Records that `st` gives up `a`, and why. */
export function release(st: ServiceState, a: Address, reason: ReleaseReason, why: string): void {
  st.events.push({
    service: st.req.key,
    type: allocationSeverity(reason) === 'warning' ? 'Warning' : 'Normal',
    reason: 'IPReleased',
    detail: reason,
    address: a.address,
    message: `Released IP ${a.address}: ${why}`,
  });
}
