/**
 * The watch daemon: cluster watchers poke one debouncer; when it fires, the poked clusters are
 * re-listed, every output is planned from the last good state of every cluster, and each output
 * is applied (checked by the proxy, written, reloaded) when its bytes changed.
 *
 * - A cluster that cannot be read keeps its last good state (reported stale); the others go on.
 *   An output is not written until every cluster it reads has been read once, so a cluster that
 *   is down at start never turns into an empty proxy config.
 * - One cycle at a time: pokes during a cycle are collected and run right after it.
 * - Diagnostics are logged when they appear and when they go, not on every re-list.
 */

import os from 'node:os';
import type { CertificateStatus } from '../acme/issuer.ts';
import { Applier, type ApplyResult, type MaterialCheck } from '../apply/apply.ts';
import { materialCheck } from '../apply/material.ts';
import { dockerSignalTarget, type SignalApi } from '../apply/reload.ts';
import type { ClusterState } from '../cluster/model.ts';
import { mapSnapshots } from '../cluster/sources.ts';
import type { ClusterConfig, Config } from '../config/schema.ts';
import { watchWaits } from '../config/settings.ts';
import type { Diagnostic } from '../diagnostics.ts';
import { isCarbonOutput, isLogOutput } from '../outputs/drivers.ts';
import { isFileOutput, outputName, type PlannedOutput, planRender, type TemplateTexts } from '../pipeline.ts';
import { Debouncer, realTimers, type Timers } from '../runtime/debounce.ts';
import type { LogFields, Logger } from '../runtime/log.ts';
import type { Metrics } from '../runtime/metrics.ts';
import { type CarbonDockerApi, type CarbonRunner, figuresFromMetrics, startCarbon } from '../stats/runner.ts';
import { listField } from './changes.ts';
import {
  type ClusterConnection,
  ClusterWatcher,
  type ClusterWatcherOptions,
  type PokeReason,
} from './cluster-watcher.ts';
import type { ClusterEvent } from './events.ts';
import { type HealthReport, healthReport, type OutputRecord } from './health.ts';
import { DiagnosticsLog, RouteChangeLog } from './route-log.ts';

export interface DaemonConfig {
  config: Config;
  /** Relative config paths resolve against it. */
  configDir: string;
  /** Template texts (built-in and overrides), already read. */
  templates: TemplateTexts;
}

export type ConnectCluster = (
  name: string,
  cluster: ClusterConfig,
  configDir: string,
) => Promise<ClusterConnection & { warnings?: readonly string[] }>;

export interface DaemonOptions extends DaemonConfig {
  /** Write every output under this folder and never reload (as `render --out-dir`). */
  outDir?: string;
  env: Readonly<Record<string, string | undefined>>;
  log: Logger;
  metrics: Metrics;
  /** Resolves and connects a cluster's endpoint. */
  connect: ConnectCluster;
  timers?: Timers;
  now?: () => number;
  /** Test seam: apply one planned output. */
  apply?: (planned: PlannedOutput) => Promise<ApplyResult>;
  /** Per-service material checks (TLS files) before the proxy sees a render. */
  material?: MaterialCheck;
  /**
   * Called between the big steps of a cycle (after the re-list, after the apply): the CLI uses it
   * to hand back the garbage of large re-lists.
   */
  checkpoint?: () => void;
  /** Tuning for tests and benchmarks: backoff, task following. */
  watcher?: Pick<ClusterWatcherOptions, 'backoff' | 'follow' | 'stableStreamMs'>;
  /**
   * Outputs with `serve: true` (src/fleet): called in each cycle with what was applied, or for
   * `write: false` outputs what the proxy check accepted. A throw is reported like a failed write.
   */
  serve?: (planned: PlannedOutput, configDir: string) => Promise<void>;
  /** With an `acme` config: the issuer (its certificates go into renders, it learns the hosts). */
  acme?: AcmeHook;
}

/** What the daemon needs of the ACME issuer (src/acme/issuer.ts). */
export interface AcmeHook {
  certificates(): ReadonlyMap<string, string>;
  want(hosts: readonly string[]): void;
  status(): CertificateStatus[];
}

interface KnownState {
  state: ClusterState;
  diagnostics: Diagnostic[];
}

function waits(config: Config): { minMs: number; maxMs: number; reconcileMs: number } {
  return watchWaits(config);
}

function clustersOf(config: Config, wanted: readonly string[] | undefined): string[] {
  return wanted ? [...wanted] : Object.keys(config.clusters);
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A multi-line proxy complaint, kept readable in one log field. */
function clip(text: string, max = 2000): string {
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}

export class WatchDaemon {
  readonly #o: DaemonOptions;
  readonly #timers: Timers;
  readonly #now: () => number;
  readonly #log: Logger;
  readonly #m: Metrics;
  #current: DaemonConfig;
  readonly #watchers = new Map<string, { watcher: ClusterWatcher; key: string }>();
  readonly #states = new Map<string, KnownState>();
  readonly #pending = new Map<string, PokeReason>();
  #burstStartMs: number | undefined;
  #debouncer: Debouncer;
  #reconcileTimer: unknown;
  #cycle: Promise<void> | undefined;
  #rerun = false;
  #stopping = false;
  /** Set while a config reload swaps watchers: cycles wait (the reload re-lists everything after). */
  #paused = false;
  #readAbort = new AbortController();
  readonly #applier: {
    apply: (planned: PlannedOutput) => Promise<ApplyResult>;
    prepare?: Applier['prepare'];
  };
  /** `write: false` outputs: the last render checked, so an unchanged one is not checked again. */
  readonly #checked = new Map<string, { key: string; result: ApplyResult }>();
  readonly #records = new Map<string, OutputRecord>();
  #lastError: { timeMs: number; message: string } | undefined;
  /** Something other than a cluster changed since the last render (config, a failed apply to retry). */
  #dirty = true;
  readonly #readErrors = new Map<string, string>();
  readonly #waitingFor = new Map<string, string>();
  readonly #diagnosticsLog: DiagnosticsLog;
  readonly #routeLog: RouteChangeLog;
  /** Statistics to carbon, for the config's `carbon` outputs. */
  #carbon: CarbonRunner | undefined;
  /** Cycles run, for tests and benchmarks. */
  cycles = 0;

  constructor(options: DaemonOptions) {
    this.#o = options;
    this.#timers = options.timers ?? realTimers;
    this.#now = options.now ?? Date.now;
    this.#log = options.log;
    this.#m = options.metrics;
    this.#diagnosticsLog = new DiagnosticsLog(options.log, options.metrics);
    this.#routeLog = new RouteChangeLog(options.log);
    this.#current = { config: options.config, configDir: options.configDir, templates: options.templates };
    this.#debouncer = this.#makeDebouncer();
    this.#applier = options.apply
      ? { apply: options.apply }
      : new Applier({
          env: options.env,
          reload: options.outDir === undefined,
          runtime: options.outDir === undefined,
          missingBinary: 'fail',
          docker: dockerSignalTarget((cluster) => this.#signalApi(cluster)),
          material: options.material ?? ((planned) => materialCheck(this.#current.configDir)(planned)),
        });
    this.#resetRecords();
  }

  get config(): Config {
    return this.#current.config;
  }

  /** Connects every cluster and starts the first full cycle. */
  start(): void {
    const { config } = this.#current;
    const w = waits(config);
    this.#log.info('watching', {
      clusters: Object.keys(config.clusters).join(','),
      outputs: config.outputs.map((_, i) => outputName(config.outputs, i)).join(','),
      debounce_min_ms: w.minMs,
      debounce_max_ms: w.maxMs,
      reconcile_ms: w.reconcileMs,
      out_dir: this.#o.outDir,
    });
    for (const name of Object.keys(config.clusters)) this.#addWatcher(name);
    // Read everything now, whether or not the event streams come up.
    for (const name of Object.keys(config.clusters)) this.#poke(name, 'start');
    this.#scheduleReconcile();
    this.#startCarbon();
  }

  #startCarbon(): void {
    const { config } = this.#current;
    if (!config.outputs.some(isCarbonOutput)) return;
    this.#carbon = startCarbon({
      config,
      log: this.#log,
      metrics: this.#m,
      instance: os.hostname(),
      daemonFigures: figuresFromMetrics(this.#m),
      docker: async (cluster) => {
        const w = this.#watchers.get(cluster);
        if (!w) throw new Error(`cluster "${cluster}" is not watched`);
        return (await w.watcher.api()) as unknown as CarbonDockerApi;
      },
    });
    for (const known of this.#states.values()) this.#carbon.setClusterState(known.state);
  }

  /** Stops watching: no new cycle starts; the one in flight finishes its apply. */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#debouncer.cancel();
    if (this.#reconcileTimer !== undefined) this.#timers.clearTimeout(this.#reconcileTimer);
    // Reads still running are abandoned; an apply already started is not.
    this.#readAbort.abort();
    await this.#cycle;
    await this.#carbon?.stop(5_000);
    await Promise.all([...this.#watchers.values()].map((w) => w.watcher.stop()));
    this.#watchers.clear();
  }

  /** Swaps in a new, already checked config: clusters whose settings changed are reconnected. */
  async reload(next: DaemonConfig): Promise<void> {
    if (this.#stopping) return;
    this.#paused = true;
    try {
      await this.#cycle;
      await this.#swap(next);
    } finally {
      this.#paused = false;
    }
    for (const name of Object.keys(this.#current.config.clusters)) this.#poke(name, 'config');
  }

  async #swap(next: DaemonConfig): Promise<void> {
    const before = this.#current.config;
    this.#current = next;
    const after = next.config;
    for (const [name, entry] of [...this.#watchers]) {
      const cluster = after.clusters[name];
      if (!cluster || JSON.stringify(cluster) !== entry.key) {
        await entry.watcher.stop();
        this.#watchers.delete(name);
        // Its state was read from another engine or mapped with other settings.
        this.#states.delete(name);
        this.#readErrors.delete(name);
      }
    }
    for (const name of Object.keys(after.clusters)) if (!this.#watchers.has(name)) this.#addWatcher(name);
    await this.#carbon?.stop(2_000);
    this.#carbon = undefined;
    this.#startCarbon();
    const pending = this.#debouncer.pending;
    this.#debouncer.cancel();
    this.#debouncer = this.#makeDebouncer();
    if (pending > 0) this.#debouncer.poke();
    if (this.#reconcileTimer !== undefined) this.#timers.clearTimeout(this.#reconcileTimer);
    this.#scheduleReconcile();
    this.#resetRecords();
    this.#routeLog.reset();
    this.#checked.clear();
    this.#dirty = true;
    this.#log.info('config reloaded', {
      clusters: Object.keys(after.clusters).join(','),
      outputs: after.outputs.length,
      clusters_before: Object.keys(before.clusters).join(','),
    });
  }

  health(): HealthReport {
    const clusters = Object.keys(this.#current.config.clusters).map(
      (name) =>
        this.#watchers.get(name)?.watcher.health() ?? {
          cluster: name,
          state: 'down' as const,
          streamUp: false,
        },
    );
    const report = healthReport(clusters, [...this.#records.values()], this.#lastError);
    if (this.#o.acme) report.body.certificates = this.#o.acme.status();
    return report;
  }

  /** Render again with what is known (the ACME issuer calls it when a certificate changed). */
  refresh(): void {
    if (this.#stopping) return;
    this.#dirty = true;
    this.#debouncer.poke();
  }

  // ---------- wiring ----------

  #makeDebouncer(): Debouncer {
    const w = waits(this.#current.config);
    return new Debouncer({ minMs: w.minMs, maxMs: w.maxMs, timers: this.#timers, fire: () => this.#run() });
  }

  #resetRecords(): void {
    const { outputs } = this.#current.config;
    const next = new Map<string, OutputRecord>();
    outputs.forEach((o, i) => {
      if (!isFileOutput(o)) return;
      const name = outputName(outputs, i);
      next.set(name, this.#records.get(name) ?? { name, state: 'pending' });
    });
    this.#records.clear();
    for (const [k, v] of next) this.#records.set(k, v);
  }

  #addWatcher(name: string): void {
    const { config, configDir } = this.#current;
    const cluster = config.clusters[name];
    if (!cluster) return;
    const watcher = new ClusterWatcher({
      ...this.#o.watcher,
      cluster: name,
      timers: this.#timers,
      now: this.#now,
      log: this.#log,
      connect: async () => {
        const c = await this.#o.connect(name, cluster, configDir);
        for (const w of c.warnings ?? []) this.#log.warn(w, { cluster: name });
        return c;
      },
      onPoke: (c, reason) => this.#poke(c, reason),
      onEvent: (c, event) => this.#onEvent(c, event),
    });
    this.#watchers.set(name, { watcher, key: JSON.stringify(cluster) });
    watcher.start();
  }

  async #signalApi(cluster: string | undefined): Promise<SignalApi> {
    const names = [...this.#watchers.keys()];
    const name = cluster ?? (names.length === 1 ? names[0] : undefined);
    const entry = name === undefined ? undefined : this.#watchers.get(name);
    if (!entry)
      throw new Error(cluster ? `unknown cluster ${cluster}` : 'several clusters: name one in reload.cluster');
    return (await entry.watcher.api()) as unknown as SignalApi;
  }

  #scheduleReconcile(): void {
    const { reconcileMs } = waits(this.#current.config);
    this.#reconcileTimer = this.#timers.setTimeout(() => {
      if (this.#stopping) return;
      for (const name of this.#watchers.keys()) this.#poke(name, 'reconcile');
      this.#scheduleReconcile();
    }, reconcileMs);
  }

  #logsFor(cluster: string): boolean {
    return this.#current.config.outputs.some(
      (o) => isLogOutput(o) && clustersOf(this.#current.config, o.clusters).includes(cluster),
    );
  }

  #onEvent(cluster: string, event: ClusterEvent): void {
    this.#m.events.inc({ cluster, type: event.type, action: event.action });
    const fields: LogFields = {
      cluster,
      type: event.type,
      action: event.action,
      name: event.name ?? event.id.slice(0, 12),
      service: event.type === 'service' ? undefined : event.serviceName,
    };
    // The `log` output prints every event, as the original example plugin did.
    if (this.#logsFor(cluster)) this.#log.info('event', fields);
    else this.#log.debug('event', fields);
  }

  #poke(cluster: string, reason: PokeReason): void {
    if (this.#stopping) return;
    // A re-list for any reason covers the others; keep the first reason for the metric.
    if (!this.#pending.has(cluster)) this.#pending.set(cluster, reason);
    this.#burstStartMs ??= this.#now();
    this.#debouncer.poke();
  }

  #run(): void {
    if (this.#stopping || this.#paused) return;
    if (this.#cycle) {
      this.#rerun = true;
      return;
    }
    this.#cycle = this.#loop().finally(() => {
      this.#cycle = undefined;
    });
  }

  async #loop(): Promise<void> {
    do {
      this.#rerun = false;
      const pending = new Map(this.#pending);
      this.#pending.clear();
      const startedMs = this.#burstStartMs ?? this.#now();
      this.#burstStartMs = undefined;
      try {
        await this.#runCycle(pending, startedMs);
      } catch (error) {
        // A bug in one cycle must not end the daemon; the next poke tries again.
        this.#fail(`cycle failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      }
      this.#o.checkpoint?.();
    } while (this.#rerun && !this.#stopping && this.#pending.size > 0);
  }

  #fail(message: string, fields: LogFields = {}): void {
    this.#lastError = { timeMs: this.#now(), message };
    this.#log.error(message, fields);
  }

  // ---------- one cycle ----------

  async #runCycle(pending: ReadonlyMap<string, PokeReason>, startedMs: number): Promise<void> {
    this.cycles++;
    const current = this.#current;
    const { config } = current;
    const t0 = this.#now();
    const signal = this.#readAbort.signal;
    let fresh = 0;
    await Promise.all(
      [...pending].map(async ([name, reason]) => {
        const entry = this.#watchers.get(name);
        if (!entry) return;
        try {
          // Unchanged raw lists (an idle reconcile): the state held is current, nothing to parse.
          const doc =
            reason === 'reconcile' && this.#states.has(name)
              ? await entry.watcher.readIfChanged(signal)
              : await entry.watcher.read(signal);
          if (doc === undefined) {
            this.#m.relists.inc({ cluster: name, reason });
            this.#m.clusterUp.set({ cluster: name }, 1);
            if (this.#readErrors.delete(name)) this.#log.info('cluster readable again', { cluster: name });
            return;
          }
          const mapped = mapSnapshots([{ cluster: name, doc }], config);
          const state = mapped.states[0];
          if (state) {
            this.#states.set(name, { state, diagnostics: mapped.diagnostics });
            this.#carbon?.setClusterState(state);
          }
          fresh++;
          this.#m.relists.inc({ cluster: name, reason });
          this.#m.clusterUp.set({ cluster: name }, 1);
          if (this.#readErrors.delete(name)) this.#log.info('cluster readable again', { cluster: name });
        } catch (error) {
          if (signal.aborted) return;
          this.#m.clusterUp.set({ cluster: name }, 0);
          const message = errorText(error);
          if (this.#readErrors.get(name) !== message) {
            this.#readErrors.set(name, message);
            const known = this.#states.has(name);
            this.#log.warn(known ? 'cannot read cluster; keeping its last known state' : 'cannot read cluster', {
              cluster: name,
              error: message,
            });
          }
          this.#lastError = { timeMs: this.#now(), message };
        }
      }),
    );
    if (this.#stopping) return;
    this.#o.checkpoint?.();
    const tRead = this.#now();

    const names = Object.keys(config.clusters).filter((n) => this.#states.has(n));
    const known = names.map((n) => this.#states.get(n) as KnownState);
    const states = known.map((k) => k.state).sort((a, b) => a.cluster.localeCompare(b.cluster));
    // Nothing read and nothing else changed: the render would be the last one again.
    if (states.length === 0 || (fresh === 0 && !this.#dirty)) return;
    this.#dirty = false;

    let plan: ReturnType<typeof planRender>;
    try {
      plan = planRender(config, states, {
        configDir: current.configDir,
        ...(this.#o.outDir ? { outDir: this.#o.outDir } : {}),
        templates: current.templates,
        ...(this.#o.acme ? { acmeCertificates: this.#o.acme.certificates() } : {}),
      });
      if (plan.acmeHosts) this.#o.acme?.want(plan.acmeHosts);
    } catch (error) {
      this.#fail(`render failed: ${errorText(error)}`);
      return;
    }
    this.#m.renders.inc();
    const tRender = this.#now();

    const ready: PlannedOutput[] = [];
    for (const o of plan.outputs) {
      const missing = clustersOf(config, o.output.clusters).filter((c) => !this.#states.has(c));
      if (missing.length > 0) {
        const why = missing.join(',');
        if (this.#waitingFor.get(o.name) !== why) {
          this.#waitingFor.set(o.name, why);
          this.#log.warn('not writing output until its clusters have been read', { output: o.name, clusters: why });
        }
        continue;
      }
      this.#waitingFor.delete(o.name);
      ready.push(o);
    }
    const results = await Promise.all(
      ready.map(async (o) => {
        try {
          const result = o.output.write === false ? await this.#checkOnly(o) : await this.#applier.apply(o);
          if (o.output.serve && this.#o.serve && (result.kind === 'applied' || result.kind === 'unchanged'))
            await this.#o.serve(result.planned ?? o, current.configDir);
          return result;
        } catch (error) {
          return { kind: 'failed', stage: 'write', error: errorText(error) } as ApplyResult;
        }
      }),
    );
    const tApply = this.#now();
    for (const [i, o] of ready.entries()) this.#record(o, results[i] as ApplyResult, startedMs);
    // Services left out of an output (the proxy rejected their part, or their files are
    // broken) are reported like refused labels: once when it starts, once when it is over.
    const leftOut = results.flatMap((r) =>
      (r.kind === 'applied' || r.kind === 'unchanged') && r.leftOut ? r.leftOut.map((l) => l.diagnostic) : [],
    );
    this.#diagnosticsLog.report([...known.flatMap((k) => k.diagnostics), ...plan.diagnostics, ...leftOut]);
    this.#routeLog.report(config, states);
    this.#log.debug('cycle', {
      clusters: [...pending.keys()].join(','),
      read_ms: tRead - t0,
      render_ms: tRender - tRead,
      apply_ms: tApply - tRender,
      since_first_event_ms: tApply - startedMs,
    });
  }

  /**
   * A `write: false` output (served to agents only): checked by the proxy as if it were written,
   * with the same leaving-out of rejected services, but nothing is written or reloaded here.
   */
  async #checkOnly(o: PlannedOutput): Promise<ApplyResult> {
    const key = JSON.stringify(o.files);
    const last = this.#checked.get(o.name);
    if (last?.key === key) return last.result.kind === 'rejected' ? { ...last.result, repeated: true } : last.result;
    let result: ApplyResult;
    if (!this.#applier.prepare) result = { kind: 'unchanged', planned: o };
    else {
      const p = await this.#applier.prepare(o);
      result = p.ok
        ? { kind: 'unchanged', planned: p.planned, ...(p.leftOut.length > 0 ? { leftOut: p.leftOut } : {}) }
        : {
            kind: 'rejected',
            command: p.check.command,
            error: p.check.output || `${p.check.command} failed`,
            services: p.services,
            repeated: false,
          };
    }
    this.#checked.set(o.name, { key, result });
    return result;
  }

  #record(o: PlannedOutput, result: ApplyResult, startedMs: number): void {
    const now = this.#now();
    const previous = this.#records.get(o.name) ?? { name: o.name, state: 'pending' as const };
    const label = { output: o.name };
    this.#m.routes.set(label, o.routes);
    const base = { ...previous, lastAttemptMs: now };
    switch (result.kind) {
      case 'unchanged': {
        this.#records.set(o.name, {
          name: o.name,
          state: 'ok',
          lastAttemptMs: now,
          ...success(previous),
          ...leftOutOf(result),
          ...(previous.appliedBy ? { appliedBy: previous.appliedBy } : {}),
        });
        return;
      }
      case 'applied': {
        this.#records.set(o.name, {
          name: o.name,
          state: 'ok',
          lastAttemptMs: now,
          lastSuccessMs: now,
          ...leftOutOf(result),
          ...appliedBy(result, now, previous),
        });
        const written = result.planned ?? o;
        if (result.files.some((f) => f.result !== 'unchanged')) this.#m.applies.inc(label);
        if (result.reload) this.#m.reloads.inc({ ...label, result: 'ok' });
        if (result.runtime) this.#m.runtimeUpdates.inc({ ...label, result: result.runtime.ok ? 'ok' : 'failed' });
        if (result.runtime && !result.runtime.ok)
          this.#log.warn('runtime update failed; reloaded instead', {
            output: o.name,
            reason: clip(result.runtime.reason),
          });
        this.#m.applyLatency.observe(label, (now - startedMs) / 1000);
        const main = o.files[o.files.length - 1];
        this.#log.info(result.retriedReload ? 'reloaded (retry)' : 'applied', {
          output: o.name,
          file: main?.path,
          routes: written.routes,
          backends: written.backends,
          refused: listField(written.refused),
          reload: result.runtime?.ok
            ? `none (runtime API, ${result.runtime.commands} command(s))`
            : (result.reload?.detail ?? (this.#o.outDir ? 'skipped (--out-dir)' : 'none configured')),
          ...(result.reloadReason ? { why_reload: result.reloadReason } : {}),
          ms: now - startedMs,
        });
        return;
      }
      case 'rejected': {
        this.#records.set(o.name, { ...base, state: 'rejected', error: result.error, services: result.services });
        if (result.repeated) return;
        this.#m.validationFailures.inc(label);
        this.#fail('proxy rejected the rendered config; keeping the last good one and not reloading', {
          output: o.name,
          command: result.command,
          services: listField(result.services) ?? 'unknown',
          error: clip(result.error),
        });
        return;
      }
      case 'failed': {
        this.#records.set(o.name, { ...base, state: 'failed', error: result.error });
        // Retried on the next cycle even when no cluster can be read meanwhile.
        this.#dirty = true;
        if (result.stage === 'reload') this.#m.reloads.inc({ ...label, result: 'failed' });
        const fields = { output: o.name, error: clip(result.error) };
        const message = result.stage === 'reload' ? 'reload failed; will retry' : 'write failed; will retry';
        // The same failure on every re-list (a proxy not started yet) is said once, then quietly.
        if (previous.state === 'failed' && previous.error === result.error) this.#log.debug(message, fields);
        else this.#fail(message, fields);
        return;
      }
    }
  }
}

function leftOutOf(result: ApplyResult): Pick<OutputRecord, 'leftOut'> {
  if ((result.kind !== 'applied' && result.kind !== 'unchanged') || !result.leftOut) return {};
  return { leftOut: result.leftOut.map((l) => ({ service: l.service, reason: l.reason })) };
}

/** How the proxy took the change: through its runtime API, or by a reload. */
function appliedBy(
  result: ApplyResult & { kind: 'applied' },
  now: number,
  previous: OutputRecord,
): Pick<OutputRecord, 'appliedBy'> {
  if (result.runtime?.ok) return { appliedBy: { how: 'runtime', atMs: now } };
  if (result.reload) return { appliedBy: { how: 'reload', atMs: now } };
  return previous.appliedBy ? { appliedBy: previous.appliedBy } : {};
}

function success(previous: OutputRecord): { lastSuccessMs?: number } {
  return previous.lastSuccessMs === undefined ? {} : { lastSuccessMs: previous.lastSuccessMs };
}
