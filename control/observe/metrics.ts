// The one prom-client registry of the process, and constructors that keep
// every metric inside the xlb_ namespace with Prometheus naming rules, so a
// metric name mistake fails at start-up, not on a dashboard.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CounterConfiguration, GaugeConfiguration, HistogramConfiguration } from 'prom-client';

export const registry = new Registry();

let processMetrics = false;

/** Process CPU, memory, event-loop lag and GC metrics, as xlb_process_* / xlb_nodejs_*. */
export function enableProcessMetrics(): void {
  if (processMetrics) return;
  processMetrics = true;
  collectDefaultMetrics({ register: registry, prefix: 'xlb_' });
}

export class MetricNameError extends Error {
  constructor(name: string, rule: string) {
    super(`metric name '${name}' ${rule}`);
    this.name = 'MetricNameError';
  }
}

function checkName(name: string, suffix?: string): void {
  if (!/^xlb_[a-z0-9_]+$/.test(name)) throw new MetricNameError(name, 'must match xlb_[a-z0-9_]+');
  if (suffix && !name.endsWith(suffix)) throw new MetricNameError(name, `must end with ${suffix}`);
  if (!suffix && name.endsWith('_total'))
    throw new MetricNameError(name, 'ends with _total but is not a counter');
}

/** Returns the registered metric of that name, or registers a new one. */
function getOrCreate<M>(name: string, create: () => M): M {
  return (registry.getSingleMetric(name) as M | undefined) ?? create();
}

export function counter<L extends string>(config: CounterConfiguration<L>): Counter<L> {
  checkName(config.name, '_total');
  return getOrCreate(config.name, () => new Counter({ ...config, registers: [registry] }));
}

export function gauge<L extends string>(config: GaugeConfiguration<L>): Gauge<L> {
  checkName(config.name);
  return getOrCreate(config.name, () => new Gauge({ ...config, registers: [registry] }));
}

export function histogram<L extends string>(config: HistogramConfiguration<L>): Histogram<L> {
  checkName(config.name);
  if (!/_(seconds|bytes)$/.test(config.name)) {
    throw new MetricNameError(config.name, 'must end with its unit (_seconds or _bytes)');
  }
  return getOrCreate(config.name, () => new Histogram({ ...config, registers: [registry] }));
}
