/**
 * Fleet test helpers: a fake Docker Engine on a unix socket whose services the test changes (the
 * controller's source), backends that answer on loopback, `interlock agent` processes, and a
 * read of the controller's fleet status.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { BIN, ROOT } from '../helpers/exec.ts';
import { type FakeService, MANAGER_INFO, NODE_DOC, serviceDoc, taskDocs, VERSION } from '../watch/fake-swarm.ts';
import { waitFor } from '../watch/it-helpers.ts';

export interface FakeEngine {
  socketPath: string;
  services: FakeService[];
  /** Replaces the services and tells the open event streams. */
  set(services: FakeService[]): void;
  close(): Promise<void>;
}

export async function startFakeEngine(socketPath: string, initial: FakeService[]): Promise<FakeEngine> {
  let services = initial;
  const streams = new Set<http.ServerResponse>();
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://docker');
    const route = url.pathname.replace(/^\/v[\d.]+/, '');
    const json = (body: unknown) =>
      res.writeHead(200, { 'content-type': 'application/json', 'api-version': '1.41' }).end(JSON.stringify(body));
    switch (route) {
      case '/version':
        return json(VERSION);
      case '/info':
        return json(MANAGER_INFO);
      case '/services':
        return json(services.map(serviceDoc));
      case '/tasks': {
        const filters = url.searchParams.get('filters');
        const wanted = filters ? (JSON.parse(filters) as { service?: string[] }).service : undefined;
        return json(services.filter((s) => !wanted || wanted.includes(s.id)).flatMap(taskDocs));
      }
      case '/networks':
      case '/containers/json':
        return json([]);
      case '/nodes':
        return json([NODE_DOC]);
      case '/events':
        res.writeHead(200, { 'content-type': 'application/json' });
        res.flushHeaders();
        streams.add(res);
        res.on('close', () => streams.delete(res));
        return;
      default:
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"page not found"}');
    }
  });
  rmSync(socketPath, { force: true });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  const engine: FakeEngine = {
    socketPath,
    get services() {
      return services;
    },
    set(next) {
      services = next;
      const now = Date.now();
      for (const s of streams)
        s.write(
          `${JSON.stringify({ Type: 'service', Action: 'update', Actor: { ID: next[0]?.id ?? 'x', Attributes: { name: next[0]?.name ?? 'x' } }, time: Math.floor(now / 1000), timeNano: now * 1e6 })}\n`,
        );
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of streams) s.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  return engine;
}

/** A backend answering 200 with its name on 127.0.0.1:port. */
export async function startBackend(port: number, name: string): Promise<{ close(): Promise<void> }> {
  const server = http.createServer((_req, res) =>
    res.writeHead(200, { 'content-type': 'text/plain' }).end(`${name}\n`),
  );
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

export interface AgentProcess {
  child: ChildProcess;
  lines(): string[];
  count(re: RegExp): number;
  waitForLog(re: RegExp, timeoutMs?: number): Promise<string>;
  stop(): Promise<void>;
}

export function startAgent(args: string[], env: Record<string, string> = {}): AgentProcess {
  const child = spawn(process.execPath, [BIN, 'agent', ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const lines: string[] = [];
  let rest = '';
  const onData = (b: Buffer) => {
    const parts = (rest + b.toString()).split('\n');
    rest = parts.pop() ?? '';
    lines.push(...parts.filter(Boolean));
    if (lines.length > 20_000) lines.splice(0, lines.length - 20_000);
  };
  child.stderr?.on('data', onData);
  child.stdout?.on('data', onData);
  return {
    child,
    lines: () => lines,
    count: (re) => lines.filter((l) => re.test(l)).length,
    waitForLog: (re, timeoutMs = 20_000) =>
      waitFor(`agent log ${re}`, () => lines.find((l) => re.test(l)), { timeoutMs }).catch((e: unknown) => {
        throw new Error(`${String(e)}\nagent log:\n${lines.join('\n')}`);
      }),
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
}

export interface FleetView {
  outputs: Record<string, { hash: string | null }>;
  list: { instance: string; output: string; state: string; applied: string | null; error: string | null }[];
}

export async function fleetOf(listenPort: number): Promise<FleetView> {
  const body = await new Promise<string>((resolve, reject) => {
    http
      .get(`http://127.0.0.1:${listenPort}/healthz`, (res) => {
        let b = '';
        res.on('data', (c) => {
          b += c;
        });
        res.on('end', () => resolve(b));
      })
      .on('error', reject);
  });
  return (JSON.parse(body) as { agents: FleetView }).agents;
}

/** Waits until every listed instance of `output` runs the output's current (non-null) hash. */
export async function waitConverged(
  listenPort: number,
  output: string,
  instances: readonly string[],
  options: { timeoutMs?: number; notHash?: string } = {},
): Promise<string> {
  let last: FleetView | undefined;
  return waitFor(
    `${instances.join(',')} converged on ${output}`,
    async () => {
      last = await fleetOf(listenPort).catch(() => undefined);
      const hash = last?.outputs[output]?.hash;
      if (!hash || hash === options.notHash) return undefined;
      const ok = instances.every((i) =>
        last?.list.some(
          (a) => a.output === output && a.instance === i && a.applied === hash && a.state === 'converged',
        ),
      );
      return ok ? hash : undefined;
    },
    { timeoutMs: options.timeoutMs ?? 30_000 },
  ).catch((e: unknown) => {
    throw new Error(`${String(e)}\nfleet: ${JSON.stringify(last, null, 1)}`);
  });
}

/** One command on an HAProxy master CLI socket (`@1 show backend`): its answer. */
export function masterCli(socket: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.createConnection(socket);
    let out = '';
    const timer = setTimeout(() => c.destroy(new Error(`no answer from ${socket}`)), 5000);
    c.on('connect', () => c.end(`${command}\n`));
    c.on('data', (b) => {
      out += b.toString();
    });
    c.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    c.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}
