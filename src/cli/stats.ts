/**
 * `interlock stats`: the config's `carbon` outputs without the proxies.
 *
 * - `--once` prints the points of one collection to stdout as plaintext protocol lines
 *   (`path value timestamp`) and exits: a way to see the names and figures without a Carbon.
 *   CPU % and rates need two samples, so it collects twice, a second apart, and prints the second.
 * - Without `--once` it runs the carbon outputs until SIGINT / SIGTERM: a stats-only daemon (e.g.
 *   one per node as a global service with `localOnly`), logging to stderr.
 *
 * Exit codes: 0 done (or stopped by a signal); 1 invalid config; 2 a cluster cannot be reached
 * (`--once`), no carbon output to run, or an endpoint that cannot be resolved.
 */
import os from 'node:os';
import type Docker from 'dockerode';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { connect, type ResolvedEndpoint, resolveEndpoint } from '../cluster/connect.ts';
import { readSnapshot, toClusterError } from '../cluster/read.ts';
import { mapSnapshots } from '../cluster/sources.ts';
import type { CarbonOutput, Config } from '../config/schema.ts';
import { InterlockError } from '../errors.ts';
import { carbonOutputs } from '../outputs/carbon.ts';
import { createLogger, type LogFormat, type Logger, type LogLevel } from '../runtime/log.ts';
import { plaintextLine } from '../stats/point.ts';
import { type CarbonDockerApi, type CarbonRunner, CollectError, createCarbonRunner } from '../stats/runner.ts';
import type { Io } from './io.ts';
import { configOption, logOptions } from './options.ts';
import { type CommandRun, runCommand } from './run.ts';

export interface StatsOptions {
  config?: string;
  once?: boolean;
  cluster?: string;
  logFormat: LogFormat;
  logLevel: LogLevel;
}

/** Time between the two samples of `--once`: the engine samples once a second. */
const ONCE_GAP_MS = 1_000;
/** How long buffered points may take to reach Carbon on shutdown. */
const STOP_TIMEOUT_MS = 5_000;

/** Used by `--once` when the config has no carbon output: the names a default output would write. */
const DEFAULT_ONCE_OUTPUT: CarbonOutput = {
  kind: 'carbon',
  address: '127.0.0.1:2003',
  prefix: 'interlock',
  interval: '10s',
  protocol: 'plaintext',
  tags: false,
};

interface Engine {
  docker: Docker;
  resolved: ResolvedEndpoint;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The clusters the carbon outputs read, limited to `--cluster`. */
function clustersToRead(config: Config, only: string | undefined): string[] {
  const names = new Set<string>();
  for (const o of carbonOutputs(config)) {
    for (const c of o.clusters ?? Object.keys(config.clusters)) if (c in config.clusters) names.add(c);
  }
  const all = [...names].sort();
  if (all.length === 0) throw new InterlockError('no carbon output reads any cluster');
  if (only === undefined) return all;
  if (!(only in config.clusters)) {
    throw new InterlockError(
      `unknown cluster "${only}": the config declares ${Object.keys(config.clusters).join(', ')}`,
    );
  }
  if (!all.includes(only)) throw new InterlockError(`no carbon output reads cluster "${only}"`);
  return [only];
}

async function connectClusters(io: Io, log: Logger, config: Config, configDir: string, names: readonly string[]) {
  const engines = new Map<string, Engine>();
  for (const name of names) {
    const cluster = config.clusters[name];
    if (!cluster) continue;
    const resolved = await resolveEndpoint(cluster, { ...io.env }, { name, configDir });
    for (const w of resolved.warnings) log.warn(w, { cluster: name });
    engines.set(name, { docker: connect(resolved), resolved });
  }
  return engines;
}

/** Reads one cluster's state for the running-task counts; a failure is one line naming the cluster. */
async function readState(config: Config, name: string, engine: Engine, runner: CarbonRunner): Promise<void> {
  const doc = await readSnapshot(engine.docker, {
    cluster: name,
    timeoutMs: engine.resolved.timeoutMs,
    endpointDisplay: engine.resolved.display,
  });
  for (const state of mapSnapshots([{ cluster: name, doc }], config).states) runner.setClusterState(state);
}

function engineOf(engines: ReadonlyMap<string, Engine>, cluster: string): CarbonDockerApi {
  const engine = engines.get(cluster);
  if (!engine) throw new Error(`cluster "${cluster}" is not connected`);
  return engine.docker;
}

/** Connects the clusters to read and makes a carbon runner over them. */
async function connectRunner(io: Io, log: Logger, config: Config, configDir: string, only: string | undefined) {
  const names = clustersToRead(config, only);
  const engines = await connectClusters(io, log, config, configDir, names);
  const runner = createCarbonRunner({
    config,
    docker: (cluster) => engineOf(engines, cluster),
    log,
    instance: os.hostname(),
    clusters: names,
  });
  return { engines, runner };
}

async function runOnce(io: Io, log: Logger, config: Config, configDir: string, only: string | undefined) {
  const hasCarbon = carbonOutputs(config).length > 0;
  if (!hasCarbon) {
    io.stderr('interlock: the config has no carbon output; printing the names of a default one (prefix "interlock")');
    config = { ...config, outputs: [...config.outputs, DEFAULT_ONCE_OUTPUT] };
  }
  const { engines, runner } = await connectRunner(io, log, config, configDir, only);
  try {
    await Promise.all([...engines].map(([name, engine]) => readState(config, name, engine, runner)));
    await runner.collectOnce();
    await sleep(ONCE_GAP_MS);
    const points = await runner.collectOnce({ ownFigures: false });
    if (points.length === 0) io.stderr('interlock: no points: no running container and no Swarm service');
    else io.stdout(points.map(plaintextLine).join(''));
  } catch (error) {
    if (error instanceof CollectError) {
      const engine = engines.get(error.cluster);
      throw toClusterError(error.cause, {
        cluster: error.cluster,
        endpointDisplay: engine?.resolved.display ?? error.cluster,
        timeoutMs: engine?.resolved.timeoutMs ?? 0,
      });
    }
    throw error;
  } finally {
    await runner.stop(0);
  }
}

async function runDaemon(run: CommandRun, log: Logger, config: Config, configDir: string, only: string | undefined) {
  if (carbonOutputs(config).length === 0) {
    throw new InterlockError(
      'the config has no carbon output to run: add one ({ kind: "carbon", address: "HOST:2003" }), or use --once to print the points',
    );
  }
  const { engines, runner } = await connectRunner(run.io, log, config, configDir, only);

  // The running-task counts come from a manager's view of each cluster, re-read every shortest
  // interval; a cluster that cannot be read keeps its last state (the runner ages it out).
  const refreshMs = Math.min(...runner.status().map((o) => o.intervalMs));
  const readErrors = new Map<string, string>();
  let refreshTimer: ReturnType<typeof setTimeout> | undefined;
  let stopping = false;
  const refresh = async () => {
    await Promise.all(
      [...engines].map(async ([name, engine]) => {
        try {
          await readState(config, name, engine, runner);
          if (readErrors.delete(name)) log.info('cluster readable again', { cluster: name });
        } catch (error) {
          const message = error instanceof Error ? error.message : String(error);
          if (readErrors.get(name) !== message) log.warn('cannot read cluster', { cluster: name, error: message });
          readErrors.set(name, message);
        }
      }),
    );
    if (!stopping) refreshTimer = setTimeout(() => void refresh(), refreshMs);
  };

  await run.untilStopped({
    // The first state before the first round, so its counts are in it; bounded by the cluster timeouts.
    start: () =>
      void refresh().then(() => {
        if (!stopping) runner.start();
      }),
    stop: async () => {
      stopping = true;
      if (refreshTimer) clearTimeout(refreshTimer);
      await runner.stop(STOP_TIMEOUT_MS);
    },
  });
}

export function runStats(io: Io, args: StatsOptions): Promise<void> {
  const log = createLogger({ format: args.logFormat, level: args.logLevel, write: (line) => io.stderr(line) });
  return runCommand(io, { name: 'stats', configOption: args.config, log }, async (run) => {
    const checked = await run.config();
    if (args.once) await runOnce(io, log, checked.config, checked.configDir, args.cluster);
    else await runDaemon(run, log, checked.config, checked.configDir, args.cluster);
    return 'ok';
  });
}

export function statsCommand(io: Io): CommandModule<object, StatsOptions> {
  return {
    command: 'stats',
    describe: 'Send container and service statistics to the carbon outputs (--once: print one round instead)',
    builder: (y: Argv) =>
      logOptions(configOption(y), 'debug shows every round')
        .option('once', {
          type: 'boolean',
          describe: 'Print the points of one collection (path value timestamp) to stdout and exit; no Carbon needed',
        })
        .option('cluster', { type: 'string', describe: 'Only this cluster' }) as unknown as Argv<StatsOptions>,
    handler: (args: ArgumentsCamelCase<StatsOptions>) => runStats(io, args),
  };
}
