/**
 * What the daemon says about routes, in its log: diagnostics when they appear and when they go
 * (never on every re-list, and at most a few lines per service), and, for the `log` output, route
 * changes in words (hosts added, removed, moved).
 */
import type { ClusterState } from '../cluster/model.ts';
import type { Config } from '../config/schema.ts';
import type { Diagnostic } from '../diagnostics.ts';
import { isLogOutput } from '../outputs/log.ts';
import { outputName } from '../pipeline.ts';
import { buildRoutes } from '../routes/build.ts';
import type { LogFields, Logger } from '../runtime/log.ts';
import type { Metrics } from '../runtime/metrics.ts';
import { diffDiagnostics, diffRoutes, isEmptyDiff, listField, type RouteSummary, summarizeRoutes } from './changes.ts';

/** Lines per service and cycle before the rest is only counted. */
const LOG_PER_SERVICE = 10;

export class DiagnosticsLog {
  readonly #log: Logger;
  readonly #m: Metrics;
  #keys = new Set<string>();

  constructor(log: Logger, metrics: Metrics) {
    this.#log = log;
    this.#m = metrics;
  }

  report(all: readonly Diagnostic[]): void {
    const { fresh, resolved, keys } = diffDiagnostics(this.#keys, all);
    this.#keys = keys;
    // At most LOG_PER_SERVICE lines per service and cycle, then one that counts the rest: a
    // service with a thousand bad labels must not flood the log (`validate --snapshot` lists all).
    const said = new Map<string, number>();
    const held = new Map<string, { cluster?: string; service?: string; fresh: number; resolved: number }>();
    const room = (cluster: string | undefined, service: string | undefined, kind: 'fresh' | 'resolved') => {
      const who = JSON.stringify([cluster, service, kind]);
      const n = said.get(who) ?? 0;
      said.set(who, n + 1);
      if (n < LOG_PER_SERVICE) return true;
      const key = JSON.stringify([cluster, service]);
      const h = held.get(key) ?? { cluster, service, fresh: 0, resolved: 0 };
      h[kind]++;
      held.set(key, h);
      return false;
    };
    for (const d of fresh) {
      if (!room(d.cluster, d.service, 'fresh')) continue;
      const fields: LogFields = {
        severity: d.severity,
        code: d.code,
        cluster: d.cluster,
        service: d.service,
        label: d.label,
        fix: d.fix,
      };
      if (d.severity === 'error') this.#log.warn(`service refused: ${d.message}`, fields);
      else this.#log.warn(d.message, fields);
    }
    for (const key of resolved) {
      const [severity, code, cluster, service, label] = JSON.parse(key) as (string | null)[];
      if (!room(cluster ?? undefined, service ?? undefined, 'resolved')) continue;
      this.#log.info('diagnostic resolved', { severity, code, cluster, service, label });
    }
    for (const h of held.values()) {
      this.#log.warn('more diagnostics than are logged per service', {
        cluster: h.cluster,
        service: h.service,
        new_not_logged: h.fresh || undefined,
        resolved_not_logged: h.resolved || undefined,
        fix: 'run `interlock validate --snapshot` on a snapshot to see them all',
      });
    }
    let errors = 0;
    for (const d of all) if (d.severity === 'error') errors++;
    this.#m.diagnostics.set({ severity: 'error' }, errors);
    this.#m.diagnostics.set({ severity: 'warning' }, all.length - errors);
  }
}

export class RouteChangeLog {
  readonly #log: Logger;
  readonly #summaries = new Map<number, RouteSummary>();

  constructor(log: Logger) {
    this.#log = log;
  }

  /** Forgets what was said (a new config numbers its outputs anew). */
  reset(): void {
    this.#summaries.clear();
  }

  /** The `log` output: route changes in words (hosts added, removed, moved). */
  report(config: Config, states: readonly ClusterState[]): void {
    config.outputs.forEach((o, index) => {
      if (!isLogOutput(o)) return;
      const wanted = clustersOf(config, o.clusters);
      const built = buildRoutes(
        states.filter((s) => wanted.includes(s.cluster)),
        config.rules,
      );
      const summary = summarizeRoutes(built.routes);
      const before = this.#summaries.get(index);
      this.#summaries.set(index, summary);
      const backends = new Set(
        built.routes.flatMap((r) => r.backends.map((b) => `${r.service}/${b.address}:${b.port}`)),
      );
      const counts = {
        output: outputName(config.outputs, index),
        routes: built.routes.length,
        backends: backends.size,
      };
      if (!before) {
        this.#log.info('routes', { ...counts, hosts: listField([...summary.keys()].sort()) });
        return;
      }
      const diff = diffRoutes(before, summary);
      if (isEmptyDiff(diff)) return;
      this.#log.info('change', {
        ...counts,
        added: listField(diff.added),
        removed: listField(diff.removed),
        changed: listField(diff.changed),
      });
    });
  }
}

function clustersOf(config: Config, wanted: readonly string[] | undefined): string[] {
  return wanted ? [...wanted] : Object.keys(config.clusters);
}
