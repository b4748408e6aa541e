/**
 * Helpers for the watch daemon's integration tests: the real binary as a child process, its
 * /metrics and /healthz, a unix-socket relay in front of the Docker socket (to cut the daemon's
 * connection to the engine without touching dockerd), label updates through the Engine API (a
 * burst without the CLI's start-up time), and a bounded HTTP load loop. Loopback only.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import net from 'node:net';
import Docker from 'dockerode';
import { BIN, ROOT } from '../helpers/exec.ts';
import { httpGet } from '../helpers/infra.ts';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` until it returns a value other than undefined / false; throws after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  options: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 15_000;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = e;
    }
    await sleep(options.intervalMs ?? 50);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
}

// ---------- the daemon ----------

const daemons = new Set<ChildProcess>();
process.once('exit', () => {
  for (const d of daemons) d.kill('SIGKILL');
});

export interface WatchProcess {
  child: ChildProcess;
  /** Every log line so far. */
  lines(): string[];
  /** Waits for a log line matching `re` (among lines after `from`, an index into lines()). */
  waitForLog(re: RegExp, options?: { timeoutMs?: number; from?: number }): Promise<string>;
  metrics(): Promise<string>;
  health(): Promise<{ status: number; body: Record<string, unknown> }>;
  /** SIGTERM; resolves with the exit code. */
  stop(): Promise<number | null>;
}

export async function startWatch(options: {
  config: string;
  listenPort: number;
  args?: string[];
  env?: Record<string, string>;
}): Promise<WatchProcess> {
  const child = spawn(
    process.execPath,
    [BIN, 'watch', '--config', options.config, '--listen', `127.0.0.1:${options.listenPort}`, ...(options.args ?? [])],
    {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  daemons.add(child);
  child.once('exit', () => daemons.delete(child));
  const lines: string[] = [];
  let rest = '';
  const onData = (b: Buffer) => {
    const parts = (rest + b.toString()).split('\n');
    rest = parts.pop() ?? '';
    lines.push(...parts.filter((p) => p !== ''));
    // Bound memory in long runs.
    if (lines.length > 50_000) lines.splice(0, lines.length - 50_000);
  };
  child.stderr?.on('data', onData);
  child.stdout?.on('data', onData);
  const base = `http://127.0.0.1:${options.listenPort}`;
  const proc: WatchProcess = {
    child,
    lines: () => lines,
    waitForLog: (re, o = {}) =>
      waitFor(
        `log line ${re}`,
        () => {
          if (child.exitCode !== null)
            throw new Error(`interlock watch exited (${child.exitCode}):\n${lines.join('\n')}`);
          return lines.slice(o.from ?? 0).find((l) => re.test(l));
        },
        { timeoutMs: o.timeoutMs ?? 15_000 },
      ),
    metrics: async () => (await httpGet(`${base}/metrics`)).body,
    health: async () => {
      const r = await httpGet(`${base}/healthz`);
      return { status: r.status, body: JSON.parse(r.body) as Record<string, unknown> };
    },
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) {
          resolve(child.exitCode);
          return;
        }
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        child.once('exit', (code) => {
          clearTimeout(timer);
          resolve(code);
        });
        child.kill('SIGTERM');
      }),
  };
  await waitFor('the daemon to listen', async () => (await proc.health()).status > 0, { timeoutMs: 15_000 });
  return proc;
}

/** Sum of a Prometheus series (all label sets matching `labels`). */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

// ---------- a relay in front of the Docker socket ----------

export interface SocketRelay {
  path: string;
  /** The engine "goes away": every connection is cut and new ones are refused. */
  cut(): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function socketRelay(path: string, target = '/var/run/docker.sock'): Promise<SocketRelay> {
  const sockets = new Set<net.Socket>();
  let server: net.Server | undefined;
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      rmSync(path, { force: true });
      const s = net.createServer((client) => {
        const upstream = net.connect(target);
        sockets.add(client);
        sockets.add(upstream);
        const drop = () => {
          client.destroy();
          upstream.destroy();
          sockets.delete(client);
          sockets.delete(upstream);
        };
        client.on('error', drop).on('close', drop);
        upstream.on('error', drop).on('close', drop);
        client.pipe(upstream);
        upstream.pipe(client);
      });
      s.once('error', reject);
      s.listen(path, () => {
        server = s;
        resolve();
      });
    });
  const cut = async () => {
    const s = server;
    server = undefined;
    for (const x of sockets) x.destroy();
    sockets.clear();
    if (s) await new Promise<void>((r) => s.close(() => r()));
    rmSync(path, { force: true });
  };
  await listen();
  return { path, cut, restore: listen, close: cut };
}

// ---------- the Engine API ----------

export const docker = new Docker({ socketPath: '/var/run/docker.sock' });

/** Changes a service's labels through the API (one call, no CLI start-up): `null` removes a label. */
export async function updateLabels(service: string, change: Record<string, string | null>): Promise<void> {
  // The version moves with every update; retry when another update got in between.
  for (let attempt = 0; ; attempt++) {
    const s = docker.getService(service);
    const info = (await s.inspect()) as { Version: { Index: number }; Spec: { Labels?: Record<string, string> } };
    const labels = { ...(info.Spec.Labels ?? {}) };
    for (const [k, v] of Object.entries(change)) {
      if (v === null) delete labels[k];
      else labels[k] = v;
    }
    try {
      await s.update({ ...info.Spec, Labels: labels, version: info.Version.Index });
      return;
    } catch (e) {
      if (attempt >= 5 || !/out of sequence/i.test(String(e))) throw e;
    }
  }
}

// ---------- load ----------

export interface LoadResult {
  ok: number;
  failed: number;
  /** A few failures, for the message. */
  samples: string[];
}

/**
 * Requests in a loop, a fresh connection each (keep-alive off, so every reload's listening-socket
 * hand-over is exercised), `concurrency` at a time, until `stop()` says so or `maxMs` passes.
 */
export function runLoad(options: { targets: { url: string; host: string }[]; concurrency: number; maxMs: number }): {
  stop: () => Promise<LoadResult>;
} {
  const result: LoadResult = { ok: 0, failed: 0, samples: [] };
  let running = true;
  const deadline = Date.now() + options.maxMs;
  const worker = async (n: number) => {
    let i = n;
    while (running && Date.now() < deadline) {
      const t = options.targets[i++ % options.targets.length];
      if (!t) break;
      try {
        const r = await httpGet(t.url, { host: t.host, timeoutMs: 5000 });
        if (r.status === 200) result.ok++;
        else {
          result.failed++;
          if (result.samples.length < 10)
            result.samples.push(`${t.url} ${t.host}: HTTP ${r.status} ${r.body.slice(0, 80)}`);
        }
      } catch (e) {
        result.failed++;
        if (result.samples.length < 10) result.samples.push(`${t.url} ${t.host}: ${String(e)}`);
      }
    }
  };
  const workers = Array.from({ length: options.concurrency }, (_, n) => worker(n));
  return {
    stop: async () => {
      running = false;
      await Promise.all(workers);
      return result;
    },
  };
}
