// Timestamps as the API server serializes them: metav1.Time with second
// precision, metav1.MicroTime with six fractional digits. Clients such as
// client-node send milliseconds; the server would store its own precision.

/** Now, as metav1.Time. */
export function now(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, 'Z');
}

/** A metav1.Time value (second precision); other values pass through. */
export function seconds(v: unknown): unknown {
  if (typeof v !== 'string') return v;
  const t = Date.parse(v);
  return Number.isNaN(t) ? v : new Date(t).toISOString().replace(/\.\d+Z$/, 'Z');
}

/** A metav1.MicroTime value (microsecond precision); other values pass through. */
export function microTime(v: unknown): unknown {
  if (typeof v !== 'string') return v;
  const m = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.(\d+))?(?:Z|[+-]\d\d:\d\d)$/.exec(v);
  const t = Date.parse(v);
  if (!m || Number.isNaN(t)) return v;
  const iso = new Date(t).toISOString().slice(0, 19);
  return `${iso}.${(m[1] ?? '').padEnd(6, '0').slice(0, 6)}Z`;
}
