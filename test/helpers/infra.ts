/**
 * Helpers for the integration tier: real Docker Swarm, HAProxy, Nginx and Carbon on this machine
 * (scripts/setup-test-infra.sh installs and starts them). Traffic goes to loopback only, and every
 * wait is bounded in time.
 *
 * Everything a helper starts (proxies, Swarm services, temp dirs) is registered, and `stopAll()`
 * removes what is left, also when a test failed; `describeIntegration` calls it in `afterAll`.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, it } from 'vitest';

export type ToolName =
  | 'docker'
  | 'haproxy'
  | 'nginx'
  | 'carbon-cache'
  | 'whisper-fetch'
  | 'wrk'
  | 'pebble'
  | 'pebble-challtestsrv'
  | 'openssl';

export const TEST_IMAGE = 'interlock-test/busybox:1';
const SETUP_HINT = 'run `sudo bash scripts/setup-test-infra.sh` to install and start them';

// ---------------------------------------------------------------------------------------------
// Tools

// Package binaries live in sbin dirs, which a non-root PATH often lacks.
const EXTRA_BIN_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
const toolCache = new Map<ToolName, boolean>();

/** Absolute path of an executable, searched in PATH and then in the sbin dirs; undefined if absent. */
export function whichTool(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean), ...EXTRA_BIN_DIRS];
  for (const dir of dirs) {
    const file = path.join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not in this dir
    }
  }
  return undefined;
}

function binary(name: string): string {
  const file = whichTool(name);
  if (file === undefined) throw new Error(`${name} is not installed; ${SETUP_HINT}`);
  return file;
}

function toolAvailable(name: ToolName): boolean {
  const cached = toolCache.get(name);
  if (cached !== undefined) return cached;
  let ok: boolean;
  if (name === 'docker') {
    const docker = whichTool('docker');
    const r =
      docker === undefined
        ? undefined
        : spawnSync(docker, ['info', '--format', '{{.Swarm.LocalNodeState}}'], { encoding: 'utf8', timeout: 15_000 });
    ok = r !== undefined && r.status === 0 && r.stdout.trim() === 'active';
  } else {
    ok = whichTool(name) !== undefined;
  }
  toolCache.set(name, ok);
  return ok;
}

/** Which of the tools are usable here. For 'docker' that means `docker info` works and Swarm is active. */
export function requireTools(...names: ToolName[]): { available: boolean; missing: string[] } {
  const missing = names.filter((n) => !toolAvailable(n));
  return { available: missing.length === 0, missing };
}

function isCi(): boolean {
  const ci = process.env.CI;
  return ci !== undefined && ci !== '' && ci !== '0' && ci.toLowerCase() !== 'false';
}

/**
 * A `describe` for the integration tier. With the tools present it runs `fn` and cleans up with
 * `stopAll()` afterwards. Without them it fails in CI (missing infrastructure must not pass as
 * green) and is skipped elsewhere, with the reason in the suite name.
 */
export function describeIntegration(name: string, tools: readonly ToolName[], fn: () => void): void {
  const { available, missing } = requireTools(...tools);
  if (available) {
    describe(name, () => {
      afterAll(stopAll);
      fn();
    });
    return;
  }
  const reason = `missing ${missing.join(', ')}`;
  if (isCi()) {
    describe(name, () => {
      it('has the infrastructure it needs', () => {
        throw new Error(`${name}: ${reason} (docker means: \`docker info\` works and Swarm is active); ${SETUP_HINT}`);
      });
    });
  } else {
    describe.skip(`${name} [skipped: ${reason}; ${SETUP_HINT}]`, fn);
  }
}

// ---------------------------------------------------------------------------------------------
// Registry of everything started, for cleanup

interface Running {
  readonly name: string;
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

const processes = new Map<number, Running>();
const services = new Set<string>();
const tempDirs = new Set<string>();

// Last resort when the worker exits without afterAll (e.g. a hook timed out): no proxy may outlive it.
process.once('exit', () => {
  for (const pid of processes.keys()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/**
 * Stops every proxy still running, removes every Swarm service made by `createService` and every
 * dir made by `tempDir`. Safe to call twice. Throws one error listing what could not be cleaned.
 */
export async function stopAll(): Promise<void> {
  const errors: string[] = [];
  const stops = [...processes.values()].map((p) =>
    p.stop().catch((e: unknown) => errors.push(`${p.name}: ${String(e)}`)),
  );
  await Promise.all(stops);
  if (services.size > 0) {
    const names = [...services];
    await removeServices(names).catch((e: unknown) => errors.push(`services ${names.join(', ')}: ${String(e)}`));
  }
  await Promise.all(
    [...tempDirs].map(async (dir) => {
      await rm(dir, { recursive: true, force: true });
      tempDirs.delete(dir);
    }),
  );
  if (errors.length > 0) throw new Error(`cleanup failed:\n${errors.join('\n')}`);
}

/** A fresh temp dir (short path, so unix sockets fit), removed by `stopAll()`. */
export async function tempDir(prefix = 'interlock-it-'): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

// ---------------------------------------------------------------------------------------------
// Loopback networking

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function assertLoopback(host: string): void {
  if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)) {
    throw new Error(`integration tests send traffic to loopback only (127.0.0.0/8), not to ${host}`);
  }
}

/** Ports `freePort` handed out in this process: none is given twice. */
const handedOut = new Set<number>();

/**
 * A TCP port that was free on 127.0.0.1 a moment ago, and not one this process was given before.
 * Tests take several at once and bind them later, so the kernel, asked again before the first is
 * bound, may name the same port twice (seen: a daemon's health port was its own ACME responder's).
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await unboundPort();
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    // Swarm publishes a service's ports with iptables rules, not with a listening socket: a port
    // no process here is bound to can still be answered by a container (a test's service, or one
    // still being removed). Such a port is not free: a daemon listening there would never see
    // its requests (seen once: /healthz answered by busybox httpd's 404 page).
    if (!(await somethingAnswers(port))) return port;
  }
  throw new Error('no free loopback port found in 20 tries');
}

/** True when a TCP connection to 127.0.0.1:port is accepted (or hangs) within 300 ms. */
function somethingAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const done = (answered: boolean) => {
      socket.destroy();
      resolve(answered);
    };
    socket.setTimeout(300, () => done(true));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** A port the kernel would give a listener on 127.0.0.1 now. */
function unboundPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port);
        else reject(new Error('could not read the port of a probe listener'));
      });
    });
  });
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port. */
export async function waitForPort(port: number, options: { timeoutMs?: number } = {}): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  let last = 'no attempt';
  while (Date.now() < deadline) {
    try {
      await new Promise<void>((resolve, reject) => {
        const socket = net.connect({ host: '127.0.0.1', port });
        socket.setTimeout(1000, () => socket.destroy(new Error('connect timed out')));
        socket.once('connect', () => {
          socket.destroy();
          resolve();
        });
        socket.once('error', reject);
      });
      return;
    } catch (e) {
      last = String(e);
    }
    await sleep(100);
  }
  throw new Error(`nothing listens on 127.0.0.1:${port} after ${options.timeoutMs ?? 10_000} ms (${last})`);
}

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface HttpGetOptions {
  /** Sent as the Host header (the URL's host is always a loopback address). */
  host?: string;
  headers?: Record<string, string>;
  timeoutMs?: number;
  method?: string;
  /** Redirects are never followed; a 3xx is returned as it is. */
  followRedirects?: false;
}

/** One HTTP request to a loopback URL on a fresh connection (no keep-alive). */
export async function httpGet(url: string, options: HttpGetOptions = {}): Promise<HttpResponse> {
  const target = new URL(url);
  if (target.protocol !== 'http:') throw new Error(`httpGet speaks plain http only, not ${target.protocol}`);
  assertLoopback(target.hostname);
  const headers: Record<string, string> = { ...options.headers };
  if (options.host !== undefined) headers['host'] = options.host;
  const timeoutMs = options.timeoutMs ?? 5000;
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: target.hostname,
        port: target.port === '' ? 80 : Number(target.port),
        path: `${target.pathname}${target.search}`,
        method: options.method ?? 'GET',
        headers,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
        });
      },
    );
    const timer = setTimeout(
      () => req.destroy(new Error(`${req.method} ${url} timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    req.end();
  });
}

/**
 * Polls `url` until `accept` says yes (default: any HTTP response at all) and returns that response.
 * Throws after `timeoutMs` with the last status or error seen.
 */
export async function waitForHttp(
  url: string,
  options: Omit<HttpGetOptions, 'timeoutMs'> & {
    timeoutMs?: number;
    intervalMs?: number;
    accept?: (r: HttpResponse) => boolean;
  } = {},
): Promise<HttpResponse> {
  const { timeoutMs = 15_000, intervalMs = 100, accept = () => true, ...request } = options;
  const deadline = Date.now() + timeoutMs;
  let last = 'no attempt';
  while (Date.now() < deadline) {
    try {
      const r = await httpGet(url, { ...request, timeoutMs: Math.min(2000, Math.max(deadline - Date.now(), 1)) });
      if (accept(r)) return r;
      last = `HTTP ${r.status} ${r.body.slice(0, 200)}`;
    } catch (e) {
      last = String(e);
    }
    await sleep(intervalMs);
  }
  throw new Error(`${url} not ready after ${timeoutMs} ms; last: ${last}`);
}

// ---------------------------------------------------------------------------------------------
// Processes

export interface ExecOutput {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a program to its end (killed after `timeoutMs`), keeping what it printed. */
export function run(
  file: string,
  args: readonly string[],
  options: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {},
) {
  return new Promise<ExecOutput>((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: options.cwd,
      ...(options.env ? { env: { ...process.env, ...options.env } } : {}),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
    });
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString();
    });
    const timeoutMs = options.timeoutMs ?? 60_000;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      stderr += `\n[killed after ${timeoutMs} ms]`;
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Keeps the last `limit` characters a long-running process printed, for error messages. */
function captureOutput(child: ChildProcess, limit = 64 * 1024): () => string {
  let text = '';
  const add = (b: Buffer) => {
    text += b.toString();
    if (text.length > limit) text = text.slice(-limit);
  };
  child.stdout?.on('data', add);
  child.stderr?.on('data', add);
  return () => text;
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (exited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, timeoutMs);
    const onExit = () => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

/** SIGTERM (or `signal`), then SIGKILL after `graceMs`; resolves when the process is gone. */
async function terminate(child: ChildProcess, signal: NodeJS.Signals, graceMs: number): Promise<void> {
  if (exited(child)) return;
  child.kill(signal);
  if (await waitForExit(child, graceMs)) return;
  child.kill('SIGKILL');
  if (!(await waitForExit(child, 5000))) throw new Error(`pid ${child.pid} survived SIGKILL`);
}

/** Waits for `port` to listen while making sure the process has not died meanwhile. */
async function waitUntilListening(
  child: ChildProcess,
  what: string,
  port: number,
  timeoutMs: number,
  output: () => string,
): Promise<void> {
  const died = new Promise<never>((_, reject) => {
    const onExit = () =>
      reject(new Error(`${what} exited (${child.exitCode ?? child.signalCode}) before listening:\n${output()}`));
    if (exited(child)) onExit();
    else child.once('exit', onExit);
  });
  died.catch(() => {}); // only observed through the race below
  try {
    await Promise.race([waitForPort(port, { timeoutMs }), died]);
  } catch (e) {
    throw new Error(`${String(e)}\n${what} output:\n${output()}`, { cause: e });
  }
}

export interface ProxyProcess {
  readonly pid: number;
  /** Everything the process printed so far (last 64 KiB). */
  output(): string;
  /** Validates the config file first, then reloads and resolves once the new config is in force. */
  reload(): Promise<void>;
  stop(): Promise<void>;
}

function register(name: string, child: ChildProcess, stop: () => Promise<void>): () => Promise<void> {
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${name} did not start`);
  const entry: Running = {
    name,
    child,
    stop: async () => {
      try {
        await stop();
      } finally {
        processes.delete(pid);
      }
    },
  };
  processes.set(pid, entry);
  child.once('exit', () => processes.delete(pid));
  return entry.stop;
}

// --- HAProxy ------------------------------------------------------------------------------------

/** `haproxy -c -f file`: exit 0 when the file is valid. */
export async function checkHaproxy(file: string, cwd?: string): Promise<{ ok: boolean; output: string }> {
  const r = await run(binary('haproxy'), ['-c', '-f', file], { cwd: cwd ?? path.dirname(file) });
  return { ok: r.code === 0, output: r.stdout + r.stderr };
}

interface MasterState {
  reloads: number;
  failed: number;
  workers: number[];
}

/** One non-interactive command on the HAProxy master CLI. */
function masterCli(socketPath: string, command: string, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ path: socketPath });
    let text = '';
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`master CLI timed out on "${command}"`)));
    socket.on('data', (b: Buffer) => {
      text += b.toString();
    });
    socket.once('connect', () => socket.end(`${command}\n`));
    socket.once('error', reject);
    socket.once('close', (hadError) => {
      if (!hadError) resolve(text);
    });
  });
}

// Format of `show proc` in 2.6: "<pid> master <reloads> [failed: <n>] <uptime> <version>",
// then "# workers" with one "<pid> worker ..." line each.
async function masterState(socketPath: string): Promise<MasterState> {
  const text = await masterCli(socketPath, 'show proc');
  const master = /^\d+\s+master\s+(\d+)(?:\s+\[failed:\s*(\d+)\])?/m.exec(text);
  if (master === null) throw new Error(`unexpected "show proc" answer:\n${text}`);
  const workersPart = text.split('# workers')[1]?.split('#')[0] ?? '';
  const workers = [...workersPart.matchAll(/^(\d+)\s+worker\b/gm)].map((m) => Number(m[1]));
  return { reloads: Number(master[1]), failed: Number(master[2] ?? 0), workers };
}

/**
 * Starts `haproxy -W -S <cwd>/master.sock -f cfgFile` in the foreground (master-worker) and
 * resolves once 127.0.0.1:`port` accepts connections. `cwd` defaults to the config's dir; relative
 * paths in the config resolve against it.
 */
export async function startHaproxy(
  cfgFile: string,
  options: { port: number; cwd?: string; timeoutMs?: number },
): Promise<ProxyProcess> {
  const cwd = options.cwd ?? path.dirname(path.resolve(cfgFile));
  const timeoutMs = options.timeoutMs ?? 10_000;
  const socketPath = path.join(cwd, 'master.sock');
  if (Buffer.byteLength(socketPath) > 100)
    throw new Error(`master socket path too long for a unix socket: ${socketPath}`);
  const child = spawn(binary('haproxy'), ['-W', '-S', socketPath, '-f', cfgFile], {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = captureOutput(child);
  child.on('error', () => {}); // spawn errors surface as an exit below
  const stop = register(`haproxy ${cfgFile}`, child, () => terminate(child, 'SIGTERM', 5000));
  try {
    await waitUntilListening(child, 'haproxy', options.port, timeoutMs, output);
  } catch (e) {
    await stop();
    throw e;
  }
  const pid = child.pid ?? 0;

  const reload = async (): Promise<void> => {
    const check = await checkHaproxy(cfgFile, cwd);
    if (!check.ok) throw new Error(`haproxy would reject ${cfgFile}; not reloading:\n${check.output}`);
    const before = await masterState(socketPath);
    process.kill(pid, 'SIGUSR2');
    const deadline = Date.now() + timeoutMs;
    let last = 'no answer';
    while (Date.now() < deadline) {
      if (exited(child)) throw new Error(`haproxy master exited during reload:\n${output()}`);
      // The master re-executes itself; its socket is briefly gone.
      const state = await masterState(socketPath).catch((e: unknown) => {
        last = String(e);
        return undefined;
      });
      if (state !== undefined && state.reloads > before.reloads) {
        if (state.failed > 0) throw new Error(`haproxy failed to load ${cfgFile} on reload:\n${output()}`);
        if (state.workers.some((w) => !before.workers.includes(w))) return;
        last = `reloaded, waiting for the new worker (workers ${state.workers.join(', ')})`;
      }
      await sleep(50);
    }
    throw new Error(`haproxy reload not confirmed after ${timeoutMs} ms (${last}):\n${output()}`);
  };

  return { pid, output, reload, stop };
}

// --- Nginx --------------------------------------------------------------------------------------

/** `nginx -t -p prefixDir -c file`. The file must put pid, error_log and *_temp_path under a writable dir. */
export async function checkNginx(file: string, prefixDir: string): Promise<{ ok: boolean; output: string }> {
  const r = await run(binary('nginx'), ['-t', '-p', prefixDir, '-c', path.resolve(prefixDir, file)]);
  return { ok: r.code === 0, output: r.stdout + r.stderr };
}

/** Pids of the live (not shutting down) worker processes of an nginx master. */
function nginxWorkers(masterPid: number): number[] {
  const childrenFile = `/proc/${masterPid}/task/${masterPid}/children`;
  let pids: number[];
  if (existsSync(childrenFile)) {
    pids = readFileSync(childrenFile, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } else {
    pids = readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .map(Number)
      .filter((p) => {
        try {
          // Field 4 of /proc/<pid>/stat is the parent pid; the command name (field 2) may hold spaces.
          const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
          return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === masterPid;
        } catch {
          return false;
        }
      });
  }
  return pids.filter((p) => {
    try {
      const title = readFileSync(`/proc/${p}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
      return title.startsWith('nginx: worker process') && !title.includes('shutting down');
    } catch {
      return false;
    }
  });
}

/**
 * Starts `nginx -p prefixDir -c confFile -g 'daemon off;'` (so the config must not set `daemon`)
 * and resolves once 127.0.0.1:`port` accepts connections.
 */
export async function startNginx(
  confFile: string,
  prefixDir: string,
  options: { port: number; timeoutMs?: number },
): Promise<ProxyProcess> {
  const conf = path.resolve(prefixDir, confFile);
  const timeoutMs = options.timeoutMs ?? 10_000;
  const child = spawn(binary('nginx'), ['-p', prefixDir, '-c', conf, '-g', 'daemon off;'], {
    cwd: prefixDir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = captureOutput(child);
  child.on('error', () => {});
  // SIGQUIT is nginx's graceful stop; SIGKILL follows if it takes too long.
  const stop = register(`nginx ${conf}`, child, () => terminate(child, 'SIGQUIT', 5000));
  try {
    await waitUntilListening(child, 'nginx', options.port, timeoutMs, output);
  } catch (e) {
    await stop();
    throw e;
  }
  const pid = child.pid ?? 0;

  const reload = async (): Promise<void> => {
    const check = await checkNginx(conf, prefixDir);
    if (!check.ok) throw new Error(`nginx would reject ${conf}; not reloading:\n${check.output}`);
    const before = nginxWorkers(pid);
    process.kill(pid, 'SIGHUP');
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (exited(child)) throw new Error(`nginx master exited during reload:\n${output()}`);
      // New workers run and every old one has been told to quit (its title says "shutting down").
      const live = nginxWorkers(pid);
      if (live.some((w) => !before.includes(w)) && !live.some((w) => before.includes(w))) return;
      await sleep(50);
    }
    throw new Error(`nginx reload not confirmed after ${timeoutMs} ms (no new worker process):\n${output()}`);
  };

  return { pid, output, reload, stop };
}

// ---------------------------------------------------------------------------------------------
// Docker

/** Runs the docker CLI; resolves stdout, rejects with the command and its stderr. */
export async function dockerCli(args: readonly string[], options: { timeoutMs?: number } = {}): Promise<string> {
  const r = await run(binary('docker'), args, options);
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')} failed (exit ${r.code}):\n${r.stderr.trim()}`);
  return r.stdout;
}

let serviceCounter = 0;

/** A service name unique to this worker process, e.g. `it-infra-4242-1`. */
export function uniqueServiceName(prefix: string): string {
  serviceCounter += 1;
  return `${prefix}-${process.pid}-${serviceCounter}`;
}

export interface CreateServiceOptions {
  name: string;
  labels?: Record<string, string>;
  /**
   * Published in host mode on the node, so tests reach it at 127.0.0.1:published. Without
   * `published` the engine picks the host port (one per address family, see host-port-family.test.ts).
   */
  publish?: { target: number; published?: number };
  replicas?: number;
  /** Command and arguments; default `/bin/httpd -f -p <target or 80> -h /www` (serves "ok\n" at /). */
  args?: readonly string[];
  env?: Record<string, string>;
  timeoutMs?: number;
  /** `--stop-grace-period`: how long a stopping task keeps serving before it is killed. Default 1s. */
  stopGracePeriod?: string;
}

/**
 * `docker service create` with the local busybox image, then waits until the requested replicas
 * run. Host-mode publishing allows one task per node, hence one replica on this one-node Swarm.
 */
export async function createService(options: CreateServiceOptions): Promise<{ id: string; name: string }> {
  const replicas = options.replicas ?? 1;
  if (options.publish !== undefined && replicas > 1) {
    throw new Error(`${options.name}: a host-mode published port fits one task per node; use replicas: 1`);
  }
  const timeoutMs = options.timeoutMs ?? 60_000;
  const cmd = options.args ?? ['/bin/httpd', '-f', '-p', String(options.publish?.target ?? 80), '-h', '/www'];
  const flags = [
    '--detach',
    '--name',
    options.name,
    '--replicas',
    String(replicas),
    '--stop-grace-period',
    options.stopGracePeriod ?? '1s',
  ];
  for (const [k, v] of Object.entries(options.labels ?? {})) flags.push('--label', `${k}=${v}`);
  for (const [k, v] of Object.entries(options.env ?? {})) flags.push('--env', `${k}=${v}`);
  if (options.publish !== undefined) {
    const published = options.publish.published === undefined ? '' : `,published=${options.publish.published}`;
    flags.push('--publish', `mode=host,target=${options.publish.target}${published}`);
  }
  services.add(options.name);
  const id = (await dockerCli(['service', 'create', ...flags, TEST_IMAGE, ...cmd])).trim();
  await waitForReplicas(options.name, replicas, timeoutMs);
  return { id, name: options.name };
}

/** Waits until exactly `replicas` tasks of the service are running. */
export async function waitForReplicas(name: string, replicas: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let running = -1;
  while (Date.now() < deadline) {
    const states = await dockerCli([
      'service',
      'ps',
      name,
      '--filter',
      'desired-state=running',
      '--format',
      '{{.CurrentState}}',
    ]);
    running = states.split('\n').filter((s) => s.startsWith('Running')).length;
    if (running === replicas) return;
    await sleep(250);
  }
  const tasks = await dockerCli([
    'service',
    'ps',
    name,
    '--no-trunc',
    '--format',
    '{{.Name}} {{.CurrentState}} {{.Error}}',
  ])
    .catch((e: unknown) => String(e))
    .then((t) => t.trim());
  throw new Error(`service ${name}: ${running}/${replicas} tasks running after ${timeoutMs} ms; tasks:\n${tasks}`);
}

async function removeServices(names: readonly string[]): Promise<void> {
  if (names.length === 0) return;
  const existing = new Set((await dockerCli(['service', 'ls', '--format', '{{.Name}}'])).split('\n'));
  const present = names.filter((n) => existing.has(n));
  if (present.length > 0) await dockerCli(['service', 'rm', ...present]);
  for (const n of names) services.delete(n);
  // Wait for the containers to go, so their host ports are free again.
  const deadline = Date.now() + 20_000;
  for (const n of present) {
    for (;;) {
      const ids = await dockerCli(['ps', '-aq', '--filter', `label=com.docker.swarm.service.name=${n}`]);
      if (ids.trim() === '') break;
      if (Date.now() > deadline) throw new Error(`containers of removed service ${n} still exist after 20 s`);
      await sleep(200);
    }
  }
}

/** Removes one service (if it exists) and waits until its containers are gone. */
export function removeService(name: string): Promise<void> {
  return removeServices([name]);
}

/** Removes every service whose name starts with `prefix`, e.g. leftovers of an earlier run. */
export async function removeAllTestServices(prefix: string): Promise<void> {
  if (prefix.length < 2) throw new Error('removeAllTestServices needs a real prefix, not to remove every service');
  const names = (await dockerCli(['service', 'ls', '--format', '{{.Name}}']))
    .split('\n')
    .filter((n) => n !== '' && n.startsWith(prefix));
  await removeServices(names);
}
