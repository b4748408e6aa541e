/**
 * `interlock watch`: the daemon's shell. Loads the config, wires the daemon to real clusters,
 * files and proxies, and owns everything that touches the process: signals (SIGTERM / SIGINT stop,
 * SIGHUP reloads the config), the config file watcher, the HTTP listener, and the exit code.
 *
 * Logs go to stderr, one line each (logfmt or JSON): stdout stays free, as for every other command.
 * Exit codes: 0 after SIGTERM / SIGINT; 2 when it cannot start (invalid config, unreadable
 * template, bad or busy --listen). A cluster that cannot be reached at start is not a reason to
 * exit: the daemon keeps retrying and writes nothing for outputs that read it until it answers.
 */
import { createHash } from 'node:crypto';
import { type FSWatcher, watch as watchFile } from 'node:fs';
import path from 'node:path';
import { inspect } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import type { AcmeIssuer } from '../acme/issuer.ts';
import { removeLeftovers } from '../apply/cleanup.ts';
import { connect, resolveEndpoint } from '../cluster/connect.ts';
import type { RawGetApi } from '../cluster/read.ts';
import { readTemplates } from '../config/templates.ts';
import { ConfigLoadError, InterlockError } from '../errors.ts';
import { type Fleet, startFleet } from '../fleet/controller.ts';
import type { TemplateTexts } from '../pipeline.ts';
import { createLogger, type LogFormat, type LogLevel } from '../runtime/log.ts';
import { createMetrics } from '../runtime/metrics.ts';
import type { WatchApi } from '../watch/cluster-watcher.ts';
import type { ConnectCluster } from '../watch/daemon.ts';
import { WatchDaemon } from '../watch/daemon.ts';
import { parseListen, type RunningServer, startHttpServer } from '../watch/http-server.ts';
import type { Io } from './io.ts';
import { configOption, logOptions } from './options.ts';
import { type CommandRun, ConfigRefused, runCommand, type UsableConfig } from './run.ts';

export interface WatchOptions {
  config?: string;
  outDir?: string;
  listen?: string;
  logFormat: LogFormat;
  logLevel: LogLevel;
  watchConfig?: boolean;
}

/** How long an edited config file must stay quiet before it is reloaded (editors write in steps). */
const CONFIG_QUIET_MS = 300;

/**
 * docker-modem runs `util.inspect(options, { showHidden: true, depth: null })` on every request,
 * debug logging on or off, and the options hold the http agent, whose sockets include the open
 * event stream with everything it buffered: 50–100 ms of CPU per request and megabytes of garbage
 * once a daemon polls tasks. A custom inspect makes the agent a one-word string there.
 */
function cheapToInspect(docker: object): void {
  const agent = (docker as { modem?: { agent?: object } }).modem?.agent;
  if (agent) Object.defineProperty(agent, inspect.custom, { value: () => '[http.Agent]' });
}

/**
 * A long-running daemon's memory matters more than its peak throughput. A look at a large
 * cluster (10,000 services) streams ~80 MB of lists and makes ~50 MB of short-lived objects, and
 * V8, tuned for throughput, lets the heap, the young generation and the socket's chunks (malloc'd
 * Buffers, freed only when a collection finds them dead) grow to several times the live size
 * (10,000 services: ~60 MB live). So, for `watch` only:
 * - `--optimize-for-size`: V8 grows the heap less eagerly, and `--semi-space-growth-factor=1`
 *   keeps the young generation at its starting size (1 MB a half) instead of letting it grow to
 *   16 MB (both read by V8 as it runs, so setting them now takes effect; Node allows flags after
 *   start-up; `--max-semi-space-size` is read only at start-up, so it would not);
 * - after a step of a cycle that grew the heap and the Buffers (`external`) by more than
 *   `slackBytes`, a full collection hands the garbage back: tens of ms at 10,000 services, and
 *   rare for small clusters, whose cycles do not grow the heap that much;
 * - when cycles stop (a storm is over) with more than `quietBytes` of growth left, one more full
 *   collection a second later, so the daemon rests at its live size rather than at its last peak;
 * - every `streamBytes` of a raw list streamed in, a young-generation collection (~1 ms) frees
 *   the chunks already hashed, instead of the ~45 MB V8 lets pile up before it reacts.
 * Measured with bench/watch.ts (10,000 services, fake engine, loaded 2-core machine): RSS ~133 MB
 * steady, ~172 MB peak in 10,000-event storms, ~29 s of CPU for two storms. Without
 * `--optimize-for-size` the storms take about half the CPU, but RSS is ~176 MB steady and ~243 MB
 * at peak. What stays is ~60 MB of heap (services and tasks ~19 MB, the route cache ~12 MB, the
 * reconcile's entry tables ~8 MB, code and modules the rest) and the node binary's ~41 MB of text.
 * The rest of the storm peak was malloc's: freed chunks of the streamed lists left resident in a
 * fragmented heap, and per-thread arenas. That part is not settable from here (glibc reads its
 * settings at start-up): deploy/malloc.env, which the images set, takes the peak under 150 MB.
 * `slackBytes` 8 MB and `streamBytes` 4 MB (12 and 8 MB before 2026-12-03): storm peaks 143-147
 * MB in six runs, against 148-156 MB in four runs with the old values, for the same storm CPU
 * (32-36 s against 34-36 s): RSS rises in a sawtooth between full collections (seen: ~130 to
 * ~147 MB within one storm cycle, then back), and a smaller slack cuts the teeth shorter.
 */
interface MemoryKeeper {
  checkpoint: () => void;
  streamed: (bytes: number) => void;
}

function memoryKeeper(
  slackBytes = 8 * 1024 * 1024,
  quietBytes = 2 * 1024 * 1024,
  streamBytes = 4 * 1024 * 1024,
): MemoryKeeper | undefined {
  let gc: ((options?: { type: 'minor' | 'major' }) => void) | undefined;
  try {
    setFlagsFromString('--optimize-for-size');
    setFlagsFromString('--semi-space-growth-factor=1');
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as typeof gc;
  } catch {
    return undefined;
  }
  const collect = gc;
  if (!collect) return undefined;
  const used = () => {
    const m = process.memoryUsage();
    return m.heapUsed + m.external;
  };
  let floor = used();
  let quiet: ReturnType<typeof setTimeout> | undefined;
  const full = () => {
    if (quiet) clearTimeout(quiet);
    quiet = undefined;
    collect();
    floor = used();
  };
  let sinceMinor = 0;
  return {
    checkpoint: () => {
      const grown = used() - floor;
      if (grown >= slackBytes) full();
      else if (grown >= quietBytes) {
        if (quiet) clearTimeout(quiet);
        quiet = setTimeout(full, 1000);
        quiet.unref();
      }
    },
    streamed: (bytes) => {
      sinceMinor += bytes;
      if (sinceMinor < streamBytes) return;
      sinceMinor = 0;
      collect({ type: 'minor' });
    },
  };
}

interface Modem {
  dial(options: Record<string, unknown>, callback: (error: unknown, stream?: NodeJS.ReadableStream) => void): void;
}

/**
 * GET through dockerode's connection (whatever its transport: socket, TCP, TLS, ssh), the body
 * kept as bytes: the daemon hashes the lists before it parses them (readSnapshotIfChanged).
 */
function rawGetter(docker: object, streamed?: (bytes: number) => void): RawGetApi['getRaw'] {
  const modem = (docker as { modem: Modem }).modem;
  return (path, query, { abortSignal, keep, each }) =>
    new Promise((resolve, reject) => {
      modem.dial(
        {
          path,
          method: 'GET',
          options: query,
          isStream: true,
          abortSignal,
          statusCodes: { 200: true, 400: 'bad parameter', 500: 'server error', 503: 'node is not part of a swarm' },
        },
        (error, stream) => {
          if (error || !stream) {
            reject(error ?? new Error(`GET ${path}: no answer`));
            return;
          }
          const hash = createHash('sha256');
          const chunks: Buffer[] = [];
          stream.on('data', (chunk: Buffer) => {
            hash.update(chunk);
            if (keep) chunks.push(chunk);
            each?.(chunk);
            streamed?.(chunk.length);
          });
          stream.on('end', () =>
            resolve({ digest: hash.digest('base64'), ...(keep ? { body: Buffer.concat(chunks) } : {}) }),
          );
          stream.on('error', reject);
        },
      );
    });
}

const connectCluster =
  (env: Io['env'], keeper: MemoryKeeper | undefined): ConnectCluster =>
  async (name, cluster, configDir) => {
    const resolved = await resolveEndpoint(cluster, { ...env }, { name, configDir });
    const docker = connect(resolved);
    cheapToInspect(docker);
    const api = docker as unknown as WatchApi;
    api.getRaw = rawGetter(docker, keeper?.streamed);
    return {
      api,
      display: resolved.display,
      timeoutMs: resolved.timeoutMs,
      warnings: resolved.warnings,
    };
  };

/** The config with its templates, ready for the daemon. A template that cannot be read refuses the config. */
async function loadUsable(
  run: CommandRun,
  file: string | undefined,
  outDir: string | undefined,
): Promise<UsableConfig & { templates: TemplateTexts }> {
  const checked = await run.config({ outDir, ...(file ? { file } : {}) });
  try {
    return { ...checked, templates: await readTemplates(checked.config, checked.configDir) };
  } catch (error) {
    throw new ConfigLoadError(`cannot read a template: ${(error as Error).message}`);
  }
}

function withDefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export function runWatch(io: Io, args: WatchOptions): Promise<void> {
  const log = createLogger({ format: args.logFormat, level: args.logLevel, write: (line) => io.stderr(line) });
  return runCommand(io, { name: 'watch', configOption: args.config, log, daemon: true }, async (run) => {
    const listen = args.listen === undefined ? undefined : parseListen(args.listen);
    if (args.listen !== undefined && !listen)
      throw new InterlockError(`--listen ${args.listen}: write ADDRESS:PORT, e.g. 127.0.0.1:9090`);
    const first = await loadUsable(run, args.config, args.outDir);
    const configFile = first.loaded.file;
    await removeLeftovers(first.config, { ...first, cwd: io.cwd, outDir: args.outDir });
    const metrics = createMetrics();
    // The ACME issuer starts first, so certificates issued before a restart are in the first render.
    const acme = first.config.acme;
    // Loaded only with an `acme` config: acme-client and its crypto take seconds to import on a busy machine.
    const issuer: AcmeIssuer | undefined = acme
      ? new (await import('../acme/issuer.ts')).AcmeIssuer({
          config: acme,
          configDir: first.configDir,
          log,
          registry: metrics.registry,
          onChange: () => daemon.refresh(),
        })
      : undefined;
    try {
      await issuer?.start();
    } catch (error) {
      throw new InterlockError(`cannot start the ACME issuer: ${(error as Error).message}`);
    }
    let fleet: Fleet | undefined;
    try {
      fleet = await startFleet(first.config, first.configDir, log, metrics);
    } catch (error) {
      throw new InterlockError(`cannot serve agents: ${(error as Error).message}`);
    }
    const keeper = memoryKeeper();
    const daemon: WatchDaemon = new WatchDaemon({
      config: first.config,
      configDir: first.configDir,
      templates: first.templates,
      ...(args.outDir ? { outDir: path.resolve(io.cwd, args.outDir) } : {}),
      env: io.env,
      log,
      metrics,
      connect: connectCluster(io.env, keeper),
      ...withDefined({ checkpoint: keeper?.checkpoint, serve: fleet?.serve }),
      cpuMs: () => {
        const used = process.cpuUsage();
        return (used.user + used.system) / 1000;
      },
      ...(issuer ? { acme: issuer } : {}),
    });

    let server: RunningServer | undefined;
    if (listen) {
      try {
        server = await startHttpServer(listen, {
          health: () => {
            const report = daemon.health();
            // Agents do not change the controller's own status: a broken proxy node is not a reason
            // to restart the controller.
            if (fleet) report.body.agents = fleet.hub.health();
            return report;
          },
          metrics: async () => ({ contentType: metrics.registry.contentType, text: await metrics.registry.metrics() }),
        });
        log.info('listening', { address: `${server.address.host}:${server.address.port}` });
      } catch (error) {
        await fleet?.close();
        throw new InterlockError(`cannot listen on ${args.listen}: ${(error as Error).message}`);
      }
    }

    // Config reloads run one at a time, in the order asked.
    let reloading = Promise.resolve();
    const reloadConfig = (why: string) => {
      reloading = reloading.then(async () => {
        log.info('reloading config', { why, file: configFile });
        let next: Awaited<ReturnType<typeof loadUsable>>;
        try {
          next = await loadUsable(run, configFile, args.outDir);
        } catch (error) {
          // A refused config has had its diagnostics logged.
          if (!(error instanceof ConfigRefused))
            log.error(error instanceof InterlockError ? error.message : String(error));
          log.error('new config rejected; the running one stays in force');
          return;
        }
        if (JSON.stringify(next.config.acme) !== JSON.stringify(acme)) {
          log.warn('the acme section changed: it takes effect when interlock restarts');
        }
        fleet?.update(next.config);
        await daemon.reload({ config: next.config, configDir: next.configDir, templates: next.templates });
      });
    };

    let fileWatcher: FSWatcher | undefined;
    let quiet: ReturnType<typeof setTimeout> | undefined;
    if (args.watchConfig) {
      // Watch the folder, not the file: editors and `mv` replace the file, and a watch on the old
      // inode would go silent.
      const base = path.basename(configFile);
      fileWatcher = watchFile(path.dirname(configFile), (_event, name) => {
        if (name !== null && name.toString() !== base) return;
        if (quiet) clearTimeout(quiet);
        quiet = setTimeout(() => reloadConfig('config file changed'), CONFIG_QUIET_MS);
      });
      fileWatcher.on('error', (error) => log.warn(`cannot watch the config file: ${error.message}`));
    }

    await run.untilStopped({
      start: () => daemon.start(),
      hangup: () => reloadConfig('SIGHUP'),
      stop: async () => {
        if (quiet) clearTimeout(quiet);
        fileWatcher?.close();
        await reloading.catch(() => {});
        await daemon.stop();
        await issuer?.stop();
        await server?.close();
        await fleet?.close();
      },
    });
    return 'ok';
  });
}

export function watchCommand(io: Io): CommandModule<object, WatchOptions> {
  return {
    command: 'watch',
    describe: 'Run as a daemon: follow cluster events and keep the proxies in step',
    builder: (y: Argv) =>
      logOptions(configOption(y), 'debug shows every event and cycle')
        .option('out-dir', {
          alias: 'o',
          type: 'string',
          describe: 'Write every output under DIR (by file name) and never reload a proxy',
        })
        .option('listen', {
          type: 'string',
          describe: 'Serve /healthz and /metrics on ADDRESS:PORT (e.g. 127.0.0.1:9090). Default: off',
        })
        .option('watch-config', {
          type: 'boolean',
          describe: 'Reload the config when its file changes (SIGHUP always does)',
        }) as unknown as Argv<WatchOptions>,
    handler: (args: ArgumentsCamelCase<WatchOptions>) => runWatch(io, args),
  };
}
