/** The daemon's own figures, in Prometheus text format on /metrics (prom-client, private registry). */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export function createMetrics() {
  const registry = new Registry();
  const m = {
    registry,
    events: new Counter({
      name: 'interlock_events_total',
      help: 'Cluster events seen',
      labelNames: ['cluster', 'type', 'action'],
      registers: [registry],
    }),
    relists: new Counter({
      name: 'interlock_relists_total',
      help: 'Full cluster re-lists',
      labelNames: ['cluster', 'reason'],
      registers: [registry],
    }),
    serviceReads: new Counter({
      name: 'interlock_service_reads_total',
      help: 'Services read again on their own after an event about them (instead of a full re-list)',
      labelNames: ['cluster'],
      registers: [registry],
    }),
    renders: new Counter({ name: 'interlock_renders_total', help: 'Renders of all outputs', registers: [registry] }),
    applies: new Counter({
      name: 'interlock_applies_total',
      help: 'Files replaced after validation',
      labelNames: ['output'],
      registers: [registry],
    }),
    reloads: new Counter({
      name: 'interlock_reloads_total',
      help: 'Proxy reloads',
      labelNames: ['output', 'result'],
      registers: [registry],
    }),
    runtimeUpdates: new Counter({
      name: 'interlock_runtime_updates_total',
      help: 'Changes applied through the proxy runtime API without a reload (failed: fell back to a reload)',
      labelNames: ['output', 'result'],
      registers: [registry],
    }),
    validationFailures: new Counter({
      name: 'interlock_validation_failures_total',
      help: 'Rendered files the proxy rejected (not applied)',
      labelNames: ['output'],
      registers: [registry],
    }),
    applyLatency: new Histogram({
      name: 'interlock_apply_duration_seconds',
      help: 'From the triggering event to the reloaded proxy',
      labelNames: ['output'],
      buckets: [0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5, 10],
      registers: [registry],
    }),
    clusterUp: new Gauge({
      name: 'interlock_cluster_up',
      help: '1 when the cluster was read successfully last time',
      labelNames: ['cluster'],
      registers: [registry],
    }),
    routes: new Gauge({
      name: 'interlock_routes',
      help: 'Routes in the last render',
      labelNames: ['output'],
      registers: [registry],
    }),
    diagnostics: new Gauge({
      name: 'interlock_diagnostics',
      help: 'Problems in the last render',
      labelNames: ['severity'],
      registers: [registry],
    }),
    metricsSent: new Counter({
      name: 'interlock_carbon_points_sent_total',
      help: 'Points written to carbon',
      labelNames: ['output'],
      registers: [registry],
    }),
    metricsDropped: new Counter({
      name: 'interlock_carbon_points_dropped_total',
      help: 'Points dropped (buffer full or too long)',
      labelNames: ['output'],
      registers: [registry],
    }),
  };
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;
