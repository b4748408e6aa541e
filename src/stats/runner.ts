/**
 * The `carbon` outputs at run time. For each output: one CarbonSender, and one StatsCollector per
 * cluster the output reads; every `interval` a round collects the task and service figures, adds
 * the running-task counts of the last cluster state it was given and interlock's own figures, and
 * hands everything to the sender.
 *
 * - Rounds of one output never overlap: the next one is scheduled when the last has ended, at the
 *   next multiple of the interval (so points keep their place in carbon's retention slots instead
 *   of drifting across them); ticks missed by a slow round are skipped, not queued.
 * - A failed round, or one cluster failing in it, is logged and the next round runs as planned.
 * - Carbon being away never blocks a round: the sender buffers (bounded) and reconnects alone.
 *
 * The engines come from the caller (`docker(cluster)`), so the same runner serves
 * `interlock watch` (its cluster watchers' connections) and `interlock stats`.
 */
import type { ClusterState } from '../cluster/model.ts';
import type { CarbonOutput, Config } from '../config/schema.ts';
import { carbonIntervalMs } from '../config/settings.ts';
import { isCarbonOutput } from '../outputs/carbon.ts';
import { outputName } from '../pipeline.ts';
import type { Timers } from '../runtime/debounce.ts';
import type { LogFields, Logger } from '../runtime/log.ts';
import type { Metrics } from '../runtime/metrics.ts';
import { type CollectorOptions, type CollectRound, StatsCollector } from './collect.ts';
import { clusterStatePoints, type DaemonFigures, daemonPoints } from './compute.ts';
import { createDockerStatsSource, type DockerStatsApi } from './docker-source.ts';
import { createNamer, type Namer } from './names.ts';
import type { Point } from './point.ts';
import { CarbonSender, type CarbonSenderOptions, type SenderCounters, type SenderEvent } from './sender.ts';

/** What the runner needs of an engine; a dockerode client satisfies it. */
export interface CarbonDockerApi extends DockerStatsApi {
  /** GET /info: names the node a `localOnly` collector covers. */
  info(): Promise<unknown>;
}

/** interlock's own figures as the caller keeps them; the Carbon counts are the runner's own. */
export type DaemonOwnFigures = Omit<DaemonFigures, 'metricsSent' | 'metricsDropped'>;

export interface CarbonRunnerOptions {
  config: Config;
  /**
   * The engine of a cluster; called before every round, so a reconnected client is picked up.
   * Return the same client while its connection lasts: a new client gets a new collector, and
   * CPU % and rates start over (they need the previous sample).
   */
  docker: (cluster: string) => CarbonDockerApi | Promise<CarbonDockerApi>;
  log: Logger;
  /** `interlock_carbon_points_{sent,dropped}_total`, labelled by output. */
  metrics?: Pick<Metrics, 'metricsSent' | 'metricsDropped'>;
  /**
   * Renders, applies, … of the watch daemon (`figuresFromMetrics(metrics)` reads them from its
   * Prometheus counters); without it only the Carbon counts are sent.
   */
  daemonFigures?: () => DaemonOwnFigures | Promise<DaemonOwnFigures>;
  /** Names this process in `<prefix>.interlock.<instance>.…` (one per node for a global service). */
  instance: string;
  /** Only these clusters (default: every cluster an output reads). */
  clusters?: readonly string[];
  now?: () => number;
  timers?: Timers;
  /** Test and tuning seam for the senders (backoff, capacity, batch size). */
  sender?: Omit<CarbonSenderOptions, 'host' | 'port' | 'protocol' | 'onEvent'>;
  /** Test and tuning seam for the collectors (concurrency, per-call timeout). */
  collector?: Pick<CollectorOptions, 'concurrency' | 'timeoutMs'>;
  /**
   * Longest wait for one cluster's round; a hung engine fails that cluster, not the runner.
   * Default 30 s.
   */
  roundTimeoutMs?: number;
  /**
   * Running-task counts are sent from a state at most this old: a cluster nobody could read for
   * this long shows a gap in Graphite rather than stale counts. Default 5 min.
   */
  stateMaxAgeMs?: number;
}

export interface CarbonOutputStatus {
  output: string;
  address: string;
  intervalMs: number;
  counters: SenderCounters;
}

export interface CarbonRunner {
  /** Starts the rounds: one at once (its samples are the base for the first CPU % and rates), then every interval. */
  start(): void;
  /** Stops the rounds, flushes what is buffered (within `timeoutMs`), then closes the connections. */
  stop(timeoutMs?: number): Promise<void>;
  /** The last cluster state read by the caller: the source of `tasks.running` / `tasks.desired`. */
  setClusterState(state: ClusterState): void;
  /**
   * One round of every output, returned instead of sent. Rejects with a `CollectError` when a
   * cluster's containers cannot be listed (a single container failing is only logged).
   * `ownFigures: false` leaves out interlock's own figures (meaningless when nothing is sent).
   */
  collectOnce(options?: { ownFigures?: boolean }): Promise<Point[]>;
  status(): CarbonOutputStatus[];
}

/** A cluster's stats could not be collected in a round. */
export class CollectError extends Error {
  override name = 'CollectError';
  readonly cluster: string;
  constructor(cluster: string, cause: unknown) {
    super(`cluster "${cluster}": cannot collect statistics: ${errorText(cause)}`, { cause });
    this.cluster = cluster;
  }
}

/**
 * Rounds start this long after a multiple of the interval: a timer may fire a millisecond early,
 * and a round stamped one second before the boundary would overwrite the previous slot.
 */
const TICK_OFFSET_MS = 50;
const DEFAULT_ROUND_TIMEOUT_MS = 30_000;
const DEFAULT_STATE_MAX_AGE_MS = 5 * 60_000;

interface ClusterRun {
  name: string;
  localOnly: boolean;
  /** The collector and the engine client it was built on; rebuilt when the client changes. */
  collector?: StatsCollector;
  api?: CarbonDockerApi;
  /** Last failure message, so a cluster that stays down is not logged every round. */
  lastError?: string;
}

interface OutputRun {
  name: string;
  address: string;
  intervalMs: number;
  namer: Namer;
  sender: CarbonSender;
  clusters: ClusterRun[];
  timer: unknown;
  round: Promise<void> | undefined;
  /** Sender counts already added to the Prometheus counters. */
  reportedSent: number;
  everConnected: boolean;
  /** Last connect failure logged, so a Carbon that stays away is not logged on every retry. */
  lastConnectFailure: string | undefined;
}

const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** `HOST:PORT` or `[V6]:PORT` (the schema checked the form). */
export function parseCarbonAddress(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  const host = address.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  return { host, port: Number(address.slice(colon + 1)) };
}

/** The node id a `localOnly` collector stands for: the Swarm node id, or the engine's host name off Swarm. */
export function nodeFromInfo(info: unknown): string {
  const o = typeof info === 'object' && info !== null ? (info as Record<string, unknown>) : {};
  const swarm = typeof o.Swarm === 'object' && o.Swarm !== null ? (o.Swarm as Record<string, unknown>) : {};
  // Node ids, not host names: Swarm allows two nodes with one host name, and their series would mix.
  if (typeof swarm.NodeID === 'string' && swarm.NodeID !== '') return swarm.NodeID;
  if (typeof o.Name === 'string' && o.Name !== '') return o.Name;
  throw new Error('GET /info names no node (no Swarm.NodeID, no Name)');
}

type Sample = { value: number; labels: Partial<Record<string, string | number>>; metricName?: string };

function sum(values: readonly Sample[], keep: (s: Sample) => boolean = () => true): number {
  let total = 0;
  for (const v of values) if (keep(v)) total += v.value;
  return total;
}

/**
 * The watch daemon's own figures, read from its Prometheus counters (so the daemon keeps one set
 * of counts): renders, applies, reloads that worked, failures (files the proxy rejected and
 * reloads that failed), events by cluster and type, and the mean apply latency since the previous
 * call (left out when nothing was applied in between).
 */
export function figuresFromMetrics(
  metrics: Pick<Metrics, 'renders' | 'applies' | 'reloads' | 'validationFailures' | 'applyLatency' | 'events'>,
): () => Promise<DaemonOwnFigures> {
  let last = { sum: 0, count: 0 };
  return async () => {
    const [renders, applies, reloads, rejected, latency, events] = await Promise.all([
      metrics.renders.get(),
      metrics.applies.get(),
      metrics.reloads.get(),
      metrics.validationFailures.get(),
      metrics.applyLatency.get(),
      metrics.events.get(),
    ]);
    const byCluster: Record<string, Record<string, number>> = {};
    for (const v of events.values as Sample[]) {
      const cluster = String(v.labels.cluster ?? '');
      const type = `${v.labels.type ?? ''}.${v.labels.action ?? ''}`;
      const types = byCluster[cluster] ?? {};
      types[type] = (types[type] ?? 0) + v.value;
      byCluster[cluster] = types;
    }
    const latencySum = sum(latency.values as Sample[], (v) => v.metricName?.endsWith('_sum') === true);
    const latencyCount = sum(latency.values as Sample[], (v) => v.metricName?.endsWith('_count') === true);
    const figures: DaemonOwnFigures = {
      renders: sum(renders.values as Sample[]),
      applies: sum(applies.values as Sample[]),
      reloads: sum(reloads.values as Sample[], (v) => v.labels.result === 'ok'),
      failures: sum(rejected.values as Sample[]) + sum(reloads.values as Sample[], (v) => v.labels.result === 'failed'),
      events: byCluster,
    };
    if (latencyCount > last.count) {
      figures.applyLatencyMs = ((latencySum - last.sum) / (latencyCount - last.count)) * 1000;
    }
    last = { sum: latencySum, count: latencyCount };
    return figures;
  };
}

export function createCarbonRunner(options: CarbonRunnerOptions): CarbonRunner {
  const { config, log } = options;
  const now = options.now ?? Date.now;
  const timers = options.timers ?? realTimers;
  const roundTimeoutMs = options.roundTimeoutMs ?? DEFAULT_ROUND_TIMEOUT_MS;
  const stateMaxAgeMs = options.stateMaxAgeMs ?? DEFAULT_STATE_MAX_AGE_MS;
  const states = new Map<string, { state: ClusterState; atMs: number }>();
  const outputs: OutputRun[] = [];
  let started = false;
  let stopped = false;

  config.outputs.forEach((output, index) => {
    if (!isCarbonOutput(output)) return;
    const clusterNames = (output.clusters ?? Object.keys(config.clusters)).filter(
      (c) => c in config.clusters && (options.clusters === undefined || options.clusters.includes(c)),
    );
    if (clusterNames.length === 0) return;
    outputs.push(makeOutput(output, outputName(config.outputs, index), clusterNames));
  });

  function makeOutput(output: CarbonOutput, name: string, clusterNames: string[]): OutputRun {
    const { host, port } = parseCarbonAddress(output.address);
    const o: OutputRun = {
      name,
      address: output.address,
      intervalMs: carbonIntervalMs(output).used,
      namer: createNamer({
        prefix: output.prefix,
        tags: output.tags,
        ...(output.pattern !== undefined ? { pattern: output.pattern } : {}),
      }),
      // Events only come from I/O callbacks, after `o` exists.
      sender: new CarbonSender({
        ...options.sender,
        host,
        port,
        protocol: output.protocol,
        onEvent: (event) => onSenderEvent(o, event),
      }),
      clusters: clusterNames.map((c) => ({ name: c, localOnly: config.clusters[c]?.localOnly === true })),
      timer: undefined,
      round: undefined,
      reportedSent: 0,
      everConnected: false,
      lastConnectFailure: undefined,
    };
    return o;
  }

  function onSenderEvent(o: OutputRun, event: SenderEvent): void {
    const fields: LogFields = { output: o.name, address: o.address };
    switch (event.type) {
      case 'connected': {
        const counters = o.sender.counters();
        log.info(o.everConnected ? 'carbon reconnected' : 'carbon connected', {
          ...fields,
          queued: counters.queued,
          dropped_total: counters.dropped + counters.rejected,
        });
        o.everConnected = true;
        o.lastConnectFailure = undefined;
        return;
      }
      case 'disconnected':
        log.warn('carbon disconnected; points are buffered until it is back', {
          ...fields,
          reason: event.reason,
          retry_in_ms: event.retryInMs,
        });
        return;
      case 'connect-failed': {
        // Said once per reason; the retries of a Carbon that stays away go to debug.
        const repeated = o.lastConnectFailure === event.reason;
        o.lastConnectFailure = event.reason;
        (repeated ? log.debug : log.warn)('cannot connect to carbon; will retry', {
          ...fields,
          reason: event.reason,
          retry_in_ms: event.retryInMs,
        });
        return;
      }
      case 'dropped': {
        options.metrics?.metricsDropped.inc({ output: o.name }, event.count);
        const counters = o.sender.counters();
        log.warn('carbon points dropped', {
          ...fields,
          count: event.count,
          reason: event.reason,
          detail: event.detail,
          dropped_total: counters.dropped + counters.rejected,
          queued: counters.queued,
        });
        return;
      }
    }
  }

  function reportSent(o: OutputRun): void {
    const sent = o.sender.counters().sent;
    if (sent > o.reportedSent) options.metrics?.metricsSent.inc({ output: o.name }, sent - o.reportedSent);
    o.reportedSent = sent;
  }

  async function collectorFor(o: OutputRun, c: ClusterRun): Promise<StatsCollector> {
    const api = await options.docker(c.name);
    if (c.collector && c.api === api) return c.collector;
    const node = c.localOnly ? nodeFromInfo(await api.info()) : undefined;
    c.collector = new StatsCollector(createDockerStatsSource(api), {
      ...options.collector,
      cluster: c.name,
      namer: o.namer,
      now,
      ...(node !== undefined ? { node } : {}),
    });
    c.api = api;
    return c.collector;
  }

  /** Rejects after `ms`; the call itself cannot be cancelled, but the round no longer waits for it. */
  function bounded<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = timers.setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
      promise.then(
        (value) => {
          timers.clearTimeout(timer);
          resolve(value);
        },
        (error: unknown) => {
          timers.clearTimeout(timer);
          reject(error);
        },
      );
    });
  }

  async function collectCluster(o: OutputRun, c: ClusterRun): Promise<CollectRound> {
    const collector = await collectorFor(o, c);
    return collector.collect();
  }

  /** One round of one output: the points, and the clusters that failed. */
  async function collectRound(
    o: OutputRun,
    { quiet = false, own = true }: { quiet?: boolean; own?: boolean } = {},
  ): Promise<{ points: Point[]; failures: CollectError[] }> {
    const timestamp = Math.floor(now() / 1000);
    const results = await Promise.all(
      o.clusters.map(async (c) => {
        const fields = { output: o.name, cluster: c.name };
        try {
          const round = await bounded(collectCluster(o, c), roundTimeoutMs, 'statistics');
          if (c.lastError !== undefined) log.info('statistics readable again', fields);
          c.lastError = undefined;
          const first = round.failed[0];
          const summary = {
            ...fields,
            containers: round.containers,
            sampled: round.sampled,
            failed: round.failed.length,
            points: round.points.length,
            ms: round.durationMs,
            first_failure: first ? `${first.name}: ${first.message}` : undefined,
          };
          // Containers that stop between the list and their stats call are normal during a
          // deploy; every one of them failing is not.
          if (round.sampled === 0 && round.containers > 0) log.warn('no container gave statistics', summary);
          else log.debug('statistics round', summary);
          return round.points;
        } catch (error) {
          const failure = new CollectError(c.name, error);
          if (!quiet && c.lastError !== failure.message) {
            log.warn('cannot collect statistics; will retry next round', { ...fields, error: errorText(error) });
          }
          c.lastError = failure.message;
          return failure;
        }
      }),
    );
    const points: Point[] = [];
    const failures: CollectError[] = [];
    for (const r of results) {
      if (r instanceof CollectError) failures.push(r);
      else points.push(...r);
    }
    for (const c of o.clusters) {
      const known = states.get(c.name);
      if (!known?.state.swarm || now() - known.atMs > stateMaxAgeMs) continue;
      // Standalone containers have no tasks to count: every one would be a series of constant 1.
      const services = known.state.services.filter((s) => s.mode !== 'container');
      points.push(...clusterStatePoints({ ...known.state, services }, o.namer, timestamp));
    }
    if (own) points.push(...(await ownPoints(o, timestamp)));
    return { points, failures };
  }

  async function ownPoints(o: OutputRun, timestamp: number): Promise<Point[]> {
    const counters = o.sender.counters();
    const carbon = { metricsSent: counters.sent, metricsDropped: counters.dropped + counters.rejected };
    if (options.daemonFigures) {
      return daemonPoints({ ...(await options.daemonFigures()), ...carbon }, o.namer, options.instance, timestamp);
    }
    return [
      { path: o.namer.daemon(options.instance, 'metrics.dropped'), value: carbon.metricsDropped, timestamp },
      { path: o.namer.daemon(options.instance, 'metrics.sent'), value: carbon.metricsSent, timestamp },
    ];
  }

  async function tick(o: OutputRun): Promise<void> {
    try {
      const { points } = await collectRound(o);
      if (!stopped) o.sender.send(points);
    } catch (error) {
      // A bug in one round must not end the rounds.
      log.error('statistics round failed', {
        output: o.name,
        error: error instanceof Error ? (error.stack ?? error.message) : String(error),
      });
    }
    reportSent(o);
  }

  function schedule(o: OutputRun): void {
    if (stopped) return;
    // The next multiple of the interval (plus the offset) strictly after now.
    const phase = (((now() - TICK_OFFSET_MS) % o.intervalMs) + o.intervalMs) % o.intervalMs;
    const delay = o.intervalMs - phase;
    o.timer = timers.setTimeout(() => {
      o.timer = undefined;
      run(o);
    }, delay);
  }

  function run(o: OutputRun): void {
    if (stopped || o.round) return;
    o.round = tick(o).finally(() => {
      o.round = undefined;
      schedule(o);
    });
  }

  return {
    start() {
      if (started || stopped) return;
      started = true;
      for (const o of outputs) {
        log.info('sending statistics to carbon', {
          output: o.name,
          address: o.address,
          interval_ms: o.intervalMs,
          clusters: o.clusters.map((c) => (c.localOnly ? `${c.name}(local)` : c.name)).join(','),
        });
        o.sender.start();
        run(o);
      }
    },

    async stop(timeoutMs = 5_000) {
      if (stopped) return;
      stopped = true;
      const deadline = now() + timeoutMs;
      for (const o of outputs) {
        if (o.timer !== undefined) timers.clearTimeout(o.timer);
        o.timer = undefined;
      }
      const left = () => Math.max(0, deadline - now());
      // A round in flight adds no more points once `stopped` is set; waiting only lets it finish cleanly.
      await Promise.all(outputs.map((o) => (o.round ? bounded(o.round, left(), 'round').catch(() => {}) : undefined)));
      await Promise.all(
        outputs.map(async (o) => {
          const flushed = started ? await o.sender.flush(left()) : true;
          await o.sender.close(Math.max(left(), 100));
          reportSent(o);
          const counters = o.sender.counters();
          if (started) {
            log.info('carbon closed', {
              output: o.name,
              flushed,
              sent_total: counters.sent,
              dropped_total: counters.dropped + counters.rejected,
            });
          }
        }),
      );
    },

    setClusterState(state) {
      states.set(state.cluster, { state, atMs: now() });
    },

    async collectOnce(collectOptions = {}) {
      const all: Point[] = [];
      for (const o of outputs) {
        // The caller reports the failure; logging it too would say it twice.
        const { points, failures } = await collectRound(o, { quiet: true, own: collectOptions.ownFigures !== false });
        if (failures[0]) throw failures[0];
        all.push(...points);
      }
      return all;
    },

    status() {
      return outputs.map((o) => ({
        output: o.name,
        address: o.address,
        intervalMs: o.intervalMs,
        counters: o.sender.counters(),
      }));
    },
  };
}

/** `createCarbonRunner(options)` already started: the watch daemon's entry point. */
export function startCarbon(options: CarbonRunnerOptions): CarbonRunner {
  const runner = createCarbonRunner(options);
  runner.start();
  return runner;
}
