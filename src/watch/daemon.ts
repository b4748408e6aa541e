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
 *
 * This file is the wiring (watchers, debouncer, reconcile timer, config reload, carbon, health);
 * one cycle's read, plan, apply and record is in cycle.ts.
 */

import os from 'node:os';
import { Applier, type ApplyResult, type MaterialCheck } from '../apply/apply.ts';
import { materialCheck } from '../apply/material.ts';
import { dockerSignalTarget, type SignalApi } from '../apply/reload.ts';
import type { ClusterConfig, Config } from '../config/schema.ts';
import { watchWaits } from '../config/settings.ts';
import { isCarbonOutput, isLogOutput } from '../outputs/drivers.ts';
import { outputName, type PlannedOutput } from '../pipeline.ts';
import { Debouncer, realTimers, type Timers } from '../runtime/debounce.ts';
import type { LogFields, Logger } from '../runtime/log.ts';
import type { Metrics } from '../runtime/metrics.ts';
import { type CarbonDockerApi, type CarbonRunner, figuresFromMetrics, startCarbon } from '../stats/runner.ts';
import {
  type ClusterConnection,
  ClusterWatcher,
  type ClusterWatcherOptions,
  type PokeReason,
} from './cluster-watcher.ts';
import { type AcmeHook, ApplyCycle, clustersOf, type DaemonConfig, type ServiceWhy } from './cycle.ts';
import type { ClusterEvent } from './events.ts';
import { type HealthReport, healthReport } from './health.ts';

export type { AcmeHook, DaemonConfig } from './cycle.ts';

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
  /**
   * CPU time this process has used so far, in ms (the CLI passes process.cpuUsage): the reconcile
   * spaces itself by what its last look cost. Without it the configured interval holds.
   */
  cpuMs?: () => number;
}

/** The reconcile waits at least this many times the CPU its last look took (≤ ~1.7% of a core). */
const RECONCILE_COST_FACTOR = 60;

function waits(config: Config): { minMs: number; maxMs: number; reconcileMs: number } {
  return watchWaits(config);
}

export class WatchDaemon {
  readonly #o: DaemonOptions;
  readonly #timers: Timers;
  readonly #now: () => number;
  readonly #log: Logger;
  readonly #m: Metrics;
  #current: DaemonConfig;
  readonly #watchers = new Map<string, { watcher: ClusterWatcher; key: string }>();
  readonly #pending = new Map<string, PokeReason>();
  /** Per cluster, services to read again on their own (events about them). */
  readonly #pendingServices = new Map<string, Map<string, ServiceWhy>>();
  /** Clusters whose reconcile look (detect) is under way. */
  readonly #detecting = new Set<string>();
  /** Reconcile looks that failed in a row, per cluster. */
  readonly #detectFailures = new Map<string, number>();
  #burstStartMs: number | undefined;
  #debouncer: Debouncer;
  #reconcileTimer: unknown;
  #cycle: Promise<void> | undefined;
  #rerun = false;
  #stopping = false;
  /** Set while a config reload swaps watchers: cycles wait (the reload re-lists everything after). */
  #paused = false;
  #readAbort = new AbortController();
  /** One cycle's read, plan, apply and record, and what cycles carry from one to the next. */
  readonly #apply: ApplyCycle;
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
    this.#current = { config: options.config, configDir: options.configDir, templates: options.templates };
    this.#debouncer = this.#makeDebouncer();
    const applier = options.apply
      ? { apply: options.apply }
      : new Applier({
          env: options.env,
          reload: options.outDir === undefined,
          runtime: options.outDir === undefined,
          missingBinary: 'fail',
          docker: dockerSignalTarget((cluster) => this.#signalApi(cluster)),
          material: options.material ?? ((planned) => materialCheck(this.#current.configDir)(planned)),
        });
    this.#apply = new ApplyCycle(
      {
        now: this.#now,
        log: this.#log,
        metrics: this.#m,
        applier,
        outDir: options.outDir,
        checkpoint: options.checkpoint,
        serve: options.serve,
        acme: options.acme,
        watcher: (cluster) => this.#watchers.get(cluster)?.watcher,
        carbon: () => this.#carbon,
        stopping: () => this.#stopping,
        signal: () => this.#readAbort.signal,
      },
      this.#current.config,
    );
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
    for (const known of this.#apply.states.values()) this.#carbon.setClusterState(known.state);
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
        this.#apply.forget(name);
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
    this.#apply.reconfigured(after);
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
    const report = healthReport(clusters, [...this.#apply.records.values()], this.#apply.lastError);
    if (this.#o.acme) report.body.certificates = this.#o.acme.status();
    return report;
  }

  /** Render again with what is known (the ACME issuer calls it when a certificate changed). */
  refresh(): void {
    if (this.#stopping) return;
    this.#apply.dirty = true;
    this.#debouncer.poke();
  }

  // ---------- wiring ----------

  #makeDebouncer(): Debouncer {
    const w = waits(this.#current.config);
    return new Debouncer({ minMs: w.minMs, maxMs: w.maxMs, timers: this.#timers, fire: () => this.#run() });
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
      onPokeService: (c, id, known) => this.#pokeService(c, id, known ? 'known' : 'event'),
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

  #scheduleReconcile(delayMs?: number): void {
    const { reconcileMs } = waits(this.#current.config);
    this.#reconcileTimer = this.#timers.setTimeout(() => {
      if (this.#stopping) return;
      void this.#reconcile(reconcileMs);
    }, delayMs ?? reconcileMs);
  }

  /**
   * The periodic reconcile, for events missed: every cluster's lists are compared with the last
   * look without parsing them, and only what changed is read (see ClusterWatcher.detect); an API
   * without raw bodies re-lists whole. At scale the look costs (10,000 services: ~80 MB of lists
   * to fetch and hash), so the next one waits at least RECONCILE_COST_FACTOR times the CPU the
   * last one took: the reconcile stays under ~1.7% of a core however large the cluster, and the
   * configured interval holds for the clusters where it costs less.
   */
  async #reconcile(reconcileMs: number): Promise<void> {
    const before = this.#o.cpuMs?.() ?? 0;
    let looked = false;
    await Promise.all(
      [...this.#watchers.keys()].map(async (name) => {
        looked = (await this.#detect(name)) || looked;
      }),
    );
    if (this.#stopping) return;
    const cpuMs = looked && this.#o.cpuMs ? this.#o.cpuMs() - before : 0;
    this.#scheduleReconcile(Math.max(reconcileMs, Math.round(cpuMs * RECONCILE_COST_FACTOR)));
  }

  /** One cluster's reconcile look; true when it looked without a full re-list. */
  async #detect(name: string): Promise<boolean> {
    const entry = this.#watchers.get(name);
    if (!entry || this.#detecting.has(name)) return false;
    const watcher = entry.watcher;
    if (!this.#apply.states.has(name) || !(await watcher.canDetect().catch(() => false))) {
      this.#poke(name, 'reconcile');
      return false;
    }
    this.#detecting.add(name);
    try {
      const found = await watcher.detect(this.#readAbort.signal);
      if (this.#stopping || this.#watchers.get(name) !== entry) return true;
      this.#detectFailures.delete(name);
      this.#m.relists.inc({ cluster: name, reason: 'reconcile' });
      if (found.kind === 'services') for (const id of found.ids) this.#pokeService(name, id, 'known');
      else if (found.kind === 'full') this.#poke(name, 'reconcile');
      return true;
    } catch (error) {
      // One failed look (a slow engine) is tried again at the next reconcile; a second in a row
      // re-lists whole, which reports the failure, keeps the last known state and, when the
      // engine is gone, drops the event stream to reconnect.
      const failures = (this.#detectFailures.get(name) ?? 0) + 1;
      this.#detectFailures.set(name, failures);
      this.#log.debug('reconcile look failed', { cluster: name, failures, error: String(error) });
      if (!this.#stopping && failures >= 2) this.#poke(name, 'reconcile');
      return true;
    } finally {
      this.#detecting.delete(name);
    }
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
    // The event stream came up while the first read runs or after it: what it could have missed
    // is found by a reconcile look once that read is done, not by a second full re-list (seconds
    // of CPU at 10,000 services).
    if (reason === 'start' && (this.#cycle || this.#apply.states.has(cluster)) && !this.#pending.has(cluster)) {
      const running = this.#cycle ?? Promise.resolve();
      void running.then(() => {
        if (!this.#stopping) void this.#detect(cluster);
      });
      return;
    }
    // A re-list for any reason covers the others; keep the first reason for the metric.
    if (!this.#pending.has(cluster)) this.#pending.set(cluster, reason);
    this.#burstStartMs ??= this.#now();
    this.#debouncer.poke();
  }

  #pokeService(cluster: string, serviceId: string, why: ServiceWhy): void {
    if (this.#stopping) return;
    let ids = this.#pendingServices.get(cluster);
    if (!ids) {
      ids = new Map();
      this.#pendingServices.set(cluster, ids);
    }
    if (ids.get(serviceId) !== 'known') ids.set(serviceId, why);
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
      const services = new Map(this.#pendingServices);
      this.#pendingServices.clear();
      const startedMs = this.#burstStartMs ?? this.#now();
      this.#burstStartMs = undefined;
      try {
        await this.#runCycle(pending, startedMs, services);
      } catch (error) {
        // A bug in one cycle must not end the daemon; the next poke tries again.
        this.#apply.fail(`cycle failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      }
      this.#o.checkpoint?.();
    } while (this.#rerun && !this.#stopping && (this.#pending.size > 0 || this.#pendingServices.size > 0));
  }

  // ---------- one cycle (src/watch/cycle.ts) ----------

  async #runCycle(
    pending: ReadonlyMap<string, PokeReason>,
    startedMs: number,
    services: ReadonlyMap<string, ReadonlyMap<string, ServiceWhy>>,
  ): Promise<void> {
    this.cycles++;
    await this.#apply.run(this.#current, pending, startedMs, services);
  }
}
