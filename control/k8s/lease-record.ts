// The leader-election record a coordination.k8s.io/v1 Lease carries, read
// defensively (anyone with write access can put anything there) and written
// the way client-go writes it, so kubectl and other tools read it alike.

export interface LeaseRecord {
  /** '' when nobody holds the lease (released, never held, or unreadable). */
  holderIdentity: string;
  /** The holder's lease duration; undefined when absent or not a positive whole number. */
  leaseDurationSeconds: number | undefined;
  acquireTime: string | undefined;
  renewTime: string | undefined;
  /** 0 when absent or unreadable. */
  leaseTransitions: number;
}

export type LeaseObject = Record<string, unknown> & {
  metadata?: Record<string, unknown>;
  spec?: Record<string, unknown>;
};

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

function wholeNumber(value: unknown, min: number): number | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= min
    ? value
    : undefined;
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** Reads the record from a Lease; never throws. */
export function readLeaseRecord(lease: unknown): LeaseRecord {
  const spec = record(record(lease)?.spec) ?? {};
  return {
    holderIdentity: text(spec.holderIdentity) ?? '',
    leaseDurationSeconds: wholeNumber(spec.leaseDurationSeconds, 1),
    acquireTime: text(spec.acquireTime),
    renewTime: text(spec.renewTime),
    leaseTransitions: wholeNumber(spec.leaseTransitions, 0) ?? 0,
  };
}

/**
 * What "the record changed" compares: the holder renews by rewriting
 * renewTime, so any change here means someone is alive. Raw values, so even
 * an unreadable field that changes counts.
 */
export function recordFingerprint(lease: unknown): string {
  const spec = record(record(lease)?.spec) ?? {};
  return JSON.stringify([
    spec.holderIdentity,
    spec.leaseDurationSeconds,
    spec.acquireTime,
    spec.renewTime,
    spec.leaseTransitions,
  ]);
}

/** metav1.MicroTime: RFC 3339 with six fractional digits. */
export function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export function resourceVersionOf(lease: unknown): string | undefined {
  return text(record(record(lease)?.metadata)?.resourceVersion);
}

/**
 * `lease` with its record replaced (other spec fields, labels and the
 * resourceVersion that makes the update conditional are kept).
 */
export function withRecord(lease: LeaseObject, next: LeaseRecord): LeaseObject {
  const spec: Record<string, unknown> = { ...(record(lease.spec) ?? {}) };
  spec.holderIdentity = next.holderIdentity === '' ? undefined : next.holderIdentity;
  spec.leaseDurationSeconds = next.leaseDurationSeconds;
  spec.acquireTime = next.acquireTime;
  spec.renewTime = next.renewTime;
  spec.leaseTransitions = next.leaseTransitions;
  for (const k of Object.keys(spec)) if (spec[k] === undefined) delete spec[k];
  return {
    ...lease,
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { ...(record(lease.metadata) ?? {}) },
    spec,
  };
}
