// The datapath's metrics: what the reconciler did (gauges, duration, map
// errors) and what the datapath counted, read from its per-CPU maps at scrape
// time so a scrape always sees the kernel's numbers, never a stale copy.
import type { Counter } from 'prom-client';

import { logger } from '../observe/log.js';
import { counter, gauge, histogram } from '../observe/metrics.js';
import type { DatapathMaps } from './maps.js';

export function reconcilerMetrics() {
  return {
    services: gauge({
      name: 'xlb_services',
      help: 'Datapath units (Service x port x IP family) programmed on this node',
    }),
    frontends: gauge({
      name: 'xlb_frontends',
      help: 'Frontends (VIP, port, protocol) in the datapath',
    }),
    backends: gauge({
      name: 'xlb_backends',
      help: 'Backends in the datapath by state (terminating ones keep their flows but get no new ones)',
      labelNames: ['state'],
    }),
    duration: histogram({
      name: 'xlb_reconcile_duration_seconds',
      help: 'Time one datapath reconcile pass took',
      buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    }),
    mapErrors: counter({
      name: 'xlb_datapath_map_errors_total',
      help: 'Datapath map operations that failed, by operation and errno code; the unit is retried',
      labelNames: ['op', 'reason'],
    }),
  };
}

/** A unit's counters' labels and the service id they are kept under. */
export interface ServiceCounterLabels {
  serviceId: number;
  /** namespace/name */
  service: string;
  port: string;
  protocol: string;
  family: string;
}

export interface DatapathMetricsSource {
  maps: Pick<DatapathMaps, 'serviceCounters' | 'drops' | 'outcomes' | 'events'>;
  /** The units currently programmed. */
  serviceCounterLabels(): ServiceCounterLabels[];
}

const sources = new Set<DatapathMetricsSource>();
const log = logger('datapath');

/** Runs fn for every source whose maps can still be read; a closed one is skipped. */
function eachSource(fn: (s: DatapathMetricsSource) => void): void {
  for (const s of sources) {
    try {
      fn(s);
    } catch (e) {
      log.debug({ err: e }, 'datapath counters unreadable at scrape time');
    }
  }
}

function collector<L extends string>(
  name: string,
  help: string,
  labelNames: readonly L[],
  read: (c: Counter<L>) => void,
): void {
  counter<L>({
    name,
    help,
    labelNames,
    collect(this: Counter<L>) {
      this.reset();
      read(this);
    },
  });
}

const serviceLabels = ['service', 'port', 'protocol', 'family'] as const;
type ServiceLabel = (typeof serviceLabels)[number];

function serviceCounter(
  name: string,
  help: string,
  pick: (c: ReturnType<DatapathMaps['serviceCounters']>) => bigint,
): void {
  collector<ServiceLabel>(name, help, serviceLabels, (c) =>
    eachSource((s) => {
      for (const u of s.serviceCounterLabels()) {
        const { serviceId, ...labels } = u;
        c.inc(labels, Number(pick(s.maps.serviceCounters(serviceId))));
      }
    }),
  );
}

let defined = false;

function defineCollectors(): void {
  if (defined) return;
  defined = true;
  serviceCounter(
    'xlb_service_packets_total',
    'Packets the datapath balanced per Service port and family',
    (c) => c.packets,
  );
  serviceCounter(
    'xlb_service_bytes_total',
    'Bytes the datapath balanced per Service port and family',
    (c) => c.bytes,
  );
  serviceCounter(
    'xlb_service_new_flows_total',
    'New flows (connection-table misses) per Service port and family',
    (c) => c.newFlows,
  );
  collector(
    'xlb_datapath_drops_total',
    'Packets the datapath dropped, by reason',
    ['reason'],
    (c) =>
      eachSource((s) => {
        for (const row of s.maps.drops()) c.inc({ reason: row.name }, Number(row.packets));
      }),
  );
  collector(
    'xlb_datapath_outcomes_total',
    'Packets the datapath handled, by outcome',
    ['outcome'],
    (c) =>
      eachSource((s) => {
        for (const row of s.maps.outcomes()) c.inc({ outcome: row.name }, Number(row.packets));
      }),
  );
  collector(
    'xlb_datapath_events_total',
    'Datapath events that are not a packet fate (cache hits, decapsulations, reverse NAT)',
    ['event'],
    (c) =>
      eachSource((s) => {
        for (const row of s.maps.events()) c.inc({ event: row.name }, Number(row.packets));
      }),
  );
}

/**
 * Exports the datapath's own counters (per service, drops, outcomes, events)
 * from `source` at every scrape. Returns the function that stops it, e.g.
 * before the maps are closed.
 */
export function registerDatapathMetrics(source: DatapathMetricsSource): () => void {
  defineCollectors();
  reconcilerMetrics();
  sources.add(source);
  return () => {
    sources.delete(source);
  };
}
