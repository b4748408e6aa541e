/**
 * Reloading a proxy after its new file is in place: a command, a signal to a pid from a pid file,
 * `reload` on HAProxy's master socket, or a signal to proxy containers found by label through the
 * Docker API.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import type { FileOutput } from '../config/schema.ts';
import { driverFor } from '../outputs/drivers.ts';

export interface ReloadResult {
  ok: boolean;
  detail: string;
}

export interface SignalTarget {
  /** Sends `signal` to every running container carrying `label` (KEY or KEY=VALUE). Returns how many. */
  signalContainers(cluster: string | undefined, label: string, signal: string): Promise<number>;
}

function runCommand(argv: readonly string[], timeoutMs: number): Promise<ReloadResult> {
  const [cmd, ...args] = argv;
  return new Promise((resolve) => {
    execFile(cmd as string, args, { timeout: timeoutMs }, (error, stdout, stderr) => {
      const out = `${stdout}${stderr}`.trim();
      resolve(
        error
          ? { ok: false, detail: `${argv.join(' ')} failed: ${out || error.message}` }
          : { ok: true, detail: out || argv.join(' ') },
      );
    });
  });
}

function masterReloadOnce(socket: string, timeoutMs: number): Promise<ReloadResult & { code?: string }> {
  return new Promise((resolve) => {
    const conn = net.createConnection(socket);
    let answer = '';
    let done = false;
    const finish = (r: ReloadResult & { code?: string }) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(r);
    };
    const timer = setTimeout(() => {
      conn.destroy();
      finish({ ok: false, detail: `no answer from master socket ${socket} within ${timeoutMs} ms` });
    }, timeoutMs);
    conn.on('connect', () => conn.end('reload\n'));
    conn.on('data', (b) => {
      answer += b.toString();
    });
    conn.on('error', (e: NodeJS.ErrnoException) => {
      finish({ ok: false, detail: `master socket ${socket}: ${e.message}`, ...(e.code ? { code: e.code } : {}) });
    });
    conn.on('close', () => {
      // HAProxy ≥ 2.7 answers "Success=0" on a failed reload; 2.6 answers nothing.
      finish(
        /Success=0/.test(answer) ? { ok: false, detail: answer.trim() } : { ok: true, detail: `reload via ${socket}` },
      );
    });
  });
}

/**
 * While the master re-executes itself for the previous reload, its socket is briefly gone
 * (ENOENT), not listening yet (ECONNREFUSED), or drops a connection it had accepted (ECONNRESET).
 */
const RETRY_CODES = new Set(['ENOENT', 'ECONNREFUSED', 'ECONNRESET', 'EPIPE']);

/**
 * `reload` on the master CLI, retried for a moment while the master is busy with the previous
 * reload, or a change right after another would fail its reload. A retried `reload` that had
 * in fact reached the master reloads the same files twice, which is harmless.
 */
async function masterReload(socket: string, timeoutMs: number): Promise<ReloadResult> {
  const deadline = Date.now() + Math.min(timeoutMs, 1500);
  for (;;) {
    const r = await masterReloadOnce(socket, timeoutMs);
    if (r.ok || !RETRY_CODES.has(r.code ?? '') || Date.now() >= deadline) {
      return { ok: r.ok, detail: r.detail };
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export async function reloadProxy(
  output: FileOutput,
  deps: { docker?: SignalTarget; timeoutMs?: number },
): Promise<ReloadResult> {
  const reload = output.reload ?? { kind: 'none' as const };
  const timeoutMs = deps.timeoutMs ?? 30_000;
  const defaultSignal = driverFor(output).reloadSignal;
  switch (reload.kind) {
    case 'none':
      return { ok: true, detail: 'no reload configured' };
    case 'command':
      return runCommand(reload.command, timeoutMs);
    case 'signal': {
      let pid: number;
      try {
        pid = Number.parseInt((await readFile(reload.pidFile, 'utf8')).trim().split(/\s+/)[0] ?? '', 10);
      } catch (error) {
        return {
          ok: false,
          detail: `cannot read pid file ${reload.pidFile}: ${(error as NodeJS.ErrnoException).code}`,
        };
      }
      if (!Number.isInteger(pid) || pid <= 1) return { ok: false, detail: `pid file ${reload.pidFile} holds no pid` };
      const signal = reload.signal ?? defaultSignal;
      try {
        process.kill(pid, signal);
        return { ok: true, detail: `${signal} to pid ${pid}` };
      } catch (error) {
        return { ok: false, detail: `${signal} to pid ${pid} failed: ${(error as NodeJS.ErrnoException).code}` };
      }
    }
    case 'haproxy-master':
      return masterReload(reload.socket, timeoutMs);
    case 'docker-signal': {
      if (!deps.docker) return { ok: false, detail: 'docker-signal reload needs a cluster connection' };
      const signal = reload.signal ?? defaultSignal;
      try {
        const n = await deps.docker.signalContainers(reload.cluster, reload.label, signal);
        return n > 0
          ? { ok: true, detail: `${signal} to ${n} container(s) labelled ${reload.label}` }
          : { ok: false, detail: `no running container labelled ${reload.label}` };
      } catch (error) {
        return {
          ok: false,
          detail: `signalling containers labelled ${reload.label} failed: ${(error as Error).message}`,
        };
      }
    }
  }
}

/** The calls a `docker-signal` reload needs; dockerode satisfies it. */
export interface SignalApi {
  listContainers(options?: { filters?: Record<string, string[]> }): Promise<unknown>;
  listServices(options?: { filters?: Record<string, string[]> }): Promise<unknown>;
  getContainer(id: string): { kill(options?: { signal?: string }): Promise<unknown> };
}

function ids(list: unknown, key: 'Id' | 'ID'): string[] {
  if (!Array.isArray(list)) return [];
  return list
    .map((x) => (typeof x === 'object' && x !== null ? (x as Record<string, unknown>)[key] : undefined))
    .filter((x): x is string => typeof x === 'string');
}

/**
 * Signals proxies through the Docker API: running containers carrying the label, and the
 * containers of Swarm services carrying it (a service label is not copied onto its containers).
 * The engine can only signal its own containers, so tasks on other nodes are out of reach: run
 * the proxies on the node the cluster endpoint reaches, or reload with a command.
 */
export function dockerSignalTarget(lookup: (cluster: string | undefined) => Promise<SignalApi>): SignalTarget {
  return {
    async signalContainers(cluster, label, signal) {
      const api = await lookup(cluster);
      const services = ids(await api.listServices({ filters: { label: [label] } }), 'ID');
      const containers = new Set(ids(await api.listContainers({ filters: { label: [label] } }), 'Id'));
      for (const service of services) {
        const list = await api.listContainers({ filters: { label: [`com.docker.swarm.service.id=${service}`] } });
        for (const id of ids(list, 'Id')) containers.add(id);
      }
      await Promise.all([...containers].map((id) => api.getContainer(id).kill({ signal })));
      return containers.size;
    },
  };
}
