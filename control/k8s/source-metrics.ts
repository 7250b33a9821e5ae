// The Kubernetes source's metrics, by kind, on the registry the caller
// passes (the agent's, or a test's own).
import { Counter, Gauge, type Registry } from 'prom-client';

import type { SourceKind } from './watched-kinds.js';

export interface SourceMetrics {
  relisted(kind: SourceKind): void;
  failed(kind: SourceKind): void;
  connected(kind: SourceKind, connected: boolean): void;
}

/** The metric of that name already on `registry` (a second source), or a new one. */
function reuse<M>(registry: Registry, name: string, make: () => M): M {
  return (registry.getSingleMetric(name) as M | undefined) ?? make();
}

export function sourceMetrics(registry: Registry): SourceMetrics {
  const relists = reuse(
    registry,
    'xlb_k8s_relists_total',
    () =>
      new Counter({
        name: 'xlb_k8s_relists_total',
        help: 'Lists of a kind after its first: after a 410 Gone, a failed watch or a failed list',
        labelNames: ['kind'],
        registers: [registry],
      }),
  );
  const errors = reuse(
    registry,
    'xlb_k8s_watch_errors_total',
    () =>
      new Counter({
        name: 'xlb_k8s_watch_errors_total',
        help: 'Failed lists and watches ended by an error, by kind; each is retried with back-off',
        labelNames: ['kind'],
        registers: [registry],
      }),
  );
  const up = reuse(
    registry,
    'xlb_k8s_watch_connected',
    () =>
      new Gauge({
        name: 'xlb_k8s_watch_connected',
        help: '1 while a watch of the kind is open, else 0 (the objects read before stay in effect)',
        labelNames: ['kind'],
        registers: [registry],
      }),
  );
  return {
    relisted: (kind) => relists.inc({ kind }),
    failed: (kind) => errors.inc({ kind }),
    connected: (kind, connected) => up.set({ kind }, connected ? 1 : 0),
  };
}
