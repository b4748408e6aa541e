/**
 * Reloading a proxy after its new file is in place: a command, a signal to a pid from a pid file,
 * `reload` on HAProxy's master socket, or a signal to proxy containers found by label through the
 * Docker API.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import type { FileOutput } from '../config/schema.ts';

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

function masterReload(socket: string, timeoutMs: number): Promise<ReloadResult> {
  return new Promise((resolve) => {
    const conn = net.createConnection(socket);
    let answer = '';
    const timer = setTimeout(() => {
      conn.destroy();
      resolve({ ok: false, detail: `no answer from master socket ${socket} within ${timeoutMs} ms` });
    }, timeoutMs);
    conn.on('connect', () => conn.end('reload\n'));
    conn.on('data', (b) => {
      answer += b.toString();
    });
    conn.on('error', (e) => {
      clearTimeout(timer);
      resolve({ ok: false, detail: `master socket ${socket}: ${e.message}` });
    });
    conn.on('close', () => {
      clearTimeout(timer);
      // HAProxy ≥ 2.7 answers "Success=0" on a failed reload; 2.6 answers nothing.
      resolve(
        /Success=0/.test(answer) ? { ok: false, detail: answer.trim() } : { ok: true, detail: `reload via ${socket}` },
      );
    });
  });
}

export async function reloadProxy(
  output: FileOutput,
  deps: { docker?: SignalTarget; timeoutMs?: number },
): Promise<ReloadResult> {
  const reload = output.reload ?? { kind: 'none' as const };
  const timeoutMs = deps.timeoutMs ?? 30_000;
  const defaultSignal = output.kind === 'haproxy' ? 'SIGUSR2' : 'SIGHUP';
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
