/**
 * Applying a runtime plan (haproxy-runtime-diff.ts) through HAProxy's CLI, then reading the state
 * back and comparing it with the files. Any unexpected answer, a socket that cannot be reached or
 * a read-back that differs ends it with a reason: the caller then reloads.
 *
 * The socket: the output's admin stats socket (`masterSocket`, declared by the template with
 * `level admin`) talks to the current worker directly; without one, the master CLI of a
 * `haproxy-master` reload, each command prefixed with `@1` (the current worker).
 */
import net from 'node:net';
import path from 'node:path';
import { haproxyMapStem } from '../config/paths.ts';
import type { FileOutput, HaproxyOutput } from '../config/schema.ts';
import { driverFor } from '../outputs/drivers.ts';
import type { RuntimeExpected, RuntimeOp } from './haproxy-runtime-diff.ts';

export interface RuntimeSocket {
  path: string;
  /** `@1 ` on the master CLI, else empty. */
  prefix: string;
}

/** Where runtime commands for this output go, or undefined when it declares no socket. */
export function runtimeSocketOf(output: FileOutput): RuntimeSocket | undefined {
  if (!driverFor(output).runtimeApi) return undefined;
  const haproxy = output as HaproxyOutput;
  if (haproxy.masterSocket) return { path: haproxy.masterSocket, prefix: '' };
  if (haproxy.reload?.kind === 'haproxy-master') return { path: haproxy.reload.socket, prefix: '@1 ' };
  return undefined;
}

export class RuntimeError extends Error {
  override name = 'RuntimeError';
}

/** Sends one command on a fresh connection and returns the whole answer. */
export function cliCommand(socket: RuntimeSocket, command: string, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const conn = net.createConnection(socket.path);
    let answer = '';
    let done = false;
    const finish = (error: Error | undefined) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (error) reject(error);
      else resolve(answer);
    };
    const timer = setTimeout(() => {
      conn.destroy();
      finish(new RuntimeError(`\`${command}\`: no answer from ${socket.path} within ${timeoutMs} ms`));
    }, timeoutMs);
    conn.setEncoding('utf8');
    conn.on('connect', () => conn.end(`${socket.prefix}${command}\n`));
    conn.on('data', (d: string) => {
      answer += d;
    });
    conn.on('error', (e) => finish(new RuntimeError(`\`${command}\`: ${socket.path}: ${e.message}`)));
    conn.on('close', () => finish(undefined));
  });
}

/** Runs a command whose success answer matches `ok`; anything else is the proxy's refusal. */
async function expect(socket: RuntimeSocket, command: string, ok: RegExp): Promise<string> {
  const answer = await cliCommand(socket, command);
  const text = answer.trim();
  if (!ok.test(text)) throw new RuntimeError(`\`${command}\` answered: ${text.split('\n')[0] || '(nothing)'}`);
  return answer;
}

const EMPTY = /^$/;

interface ServerState {
  backend: string;
  name: string;
  address: string;
  port: number;
  adminState: number;
}

/** `show servers state`, version 1: `be_id be_name srv_id srv_name srv_addr ... srv_port` (col 19). */
export function parseServersState(text: string): ServerState[] {
  const out: ServerState[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#') || /^\d+$/.test(line.trim())) continue;
    const f = line.trim().split(/\s+/);
    if (f.length < 19) continue;
    out.push({
      backend: f[1] as string,
      name: f[3] as string,
      address: f[4] as string,
      adminState: Number(f[6]),
      port: Number(f[18]),
    });
  }
  return out;
}

/** `show map`: `ID (NAME) pattern loaded from file ...`. */
function loadedMaps(text: string): string[] {
  const names: string[] = [];
  for (const m of text.matchAll(/^\d+ \(([^)]+)\)/gm)) names.push(m[1] as string);
  return names;
}

/** `show map NAME`: `0xPTR KEY VALUE` lines. */
export function parseShowMap(text: string): Map<string, string> {
  const entries = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^0x[0-9a-f]+ (\S+)(?: (.*))?$/.exec(line);
    if (m && !entries.has(m[1] as string)) entries.set(m[1] as string, m[2] ?? '');
  }
  return entries;
}

/** Sessions still open on a server: `scur` of `show stat`. */
async function currentSessions(socket: RuntimeSocket, backend: string, server: string): Promise<number> {
  const stat = await cliCommand(socket, `show stat ${backend} 4 -1`);
  for (const line of stat.split('\n')) {
    const f = line.split(',');
    if (f[0] === backend && f[1] === server) return Number(f[4]) || 0;
  }
  return 0;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface RuntimeTiming {
  /** How long a drained server may finish its requests before it is put in maintenance. */
  drainMs: number;
  /** How long `del server` is retried while the server still holds connections. */
  deleteMs: number;
}

const DEFAULT_TIMING: RuntimeTiming = { drainMs: 5_000, deleteMs: 3_000 };

/**
 * The host map as the running proxy knows it: the name it was loaded under (its content hash
 * is that of the last reload, not of the file on disk once runtime changes were made).
 */
async function runningMapName(socket: RuntimeSocket, configFile: string): Promise<string> {
  const stem = `${haproxyMapStem(configFile)}.`;
  const names = [
    ...new Set(
      loadedMaps(await cliCommand(socket, 'show map')).filter((n) => {
        const base = path.basename(n);
        return base.startsWith(stem) && base.endsWith('.map');
      }),
    ),
  ];
  if (names.length !== 1)
    throw new RuntimeError(`the proxy has ${names.length} host maps loaded (${names.join(', ') || 'none'}), not one`);
  return names[0] as string;
}

/**
 * Applies `ops`, then compares the running servers and host map with `expected`. Returns the
 * number of commands sent; throws RuntimeError with the reason on any refusal or difference.
 */
export async function applyRuntime(
  socket: RuntimeSocket,
  configFile: string,
  ops: readonly RuntimeOp[],
  expected: RuntimeExpected,
  timing: RuntimeTiming = DEFAULT_TIMING,
): Promise<number> {
  let sent = 0;
  const run = async (command: string, ok: RegExp) => {
    sent++;
    return expect(socket, command, ok);
  };
  const map = expected.map ? await runningMapName(socket, configFile) : undefined;
  const removals: { backend: string; server: string }[] = [];
  for (const o of ops) {
    switch (o.op) {
      case 'add-server': {
        const id = `${o.backend}/${o.server.name}`;
        const addr = o.server.address.includes(':') ? `[${o.server.address}]` : o.server.address;
        const params = o.server.params ? ` ${o.server.params}` : '';
        await run(`add server ${id} ${addr}:${o.server.port}${params}`, /^New server registered\.$/);
        // A server added at run time starts in maintenance with its checks off.
        if (o.check) await run(`enable health ${id}`, EMPTY);
        await run(`set server ${id} state ready`, EMPTY);
        break;
      }
      case 'set-addr':
        await run(
          `set server ${o.backend}/${o.server.name} addr ${o.server.address} port ${o.server.port}`,
          /changed from|no need to change/,
        );
        break;
      case 'map-add':
        await run(`add map ${map} ${o.key} ${o.value}`, EMPTY);
        break;
      case 'map-set':
        await run(`set map ${map} ${o.key} ${o.value}`, EMPTY);
        break;
      case 'map-del':
        await run(`del map ${map} ${o.key}`, EMPTY);
        break;
      case 'del-server':
        // Drained first: no new requests, the ones in flight finish.
        await run(`set server ${o.backend}/${o.server} state drain`, EMPTY);
        removals.push({ backend: o.backend, server: o.server });
        break;
    }
  }
  if (removals.length > 0) {
    const until = Date.now() + timing.drainMs;
    for (const r of removals) {
      while ((await currentSessions(socket, r.backend, r.server)) > 0 && Date.now() < until) await sleep(100);
    }
    for (const r of removals) {
      const id = `${r.backend}/${r.server}`;
      await run(`set server ${id} state maint`, EMPTY);
      // Idle keep-alive connections to it are released shortly after; until then it is busy.
      const deadline = Date.now() + timing.deleteMs;
      for (;;) {
        sent++;
        const answer = (await cliCommand(socket, `del server ${id}`)).trim();
        if (/^Server deleted\.$/.test(answer)) break;
        if (!/connection|still/i.test(answer) || Date.now() >= deadline)
          throw new RuntimeError(`\`del server ${id}\` answered: ${answer.split('\n')[0] || '(nothing)'}`);
        await sleep(100);
      }
    }
  }
  await verify(socket, expected, map);
  return sent;
}

/** Compares the running servers and host map with the files' (`expected`); throws on the first difference. */
export async function verifyRunning(
  socket: RuntimeSocket,
  configFile: string,
  expected: RuntimeExpected,
): Promise<void> {
  await verify(socket, expected, expected.map ? await runningMapName(socket, configFile) : undefined);
}

/** Admin states that mean "not serving": forced maintenance (0x01) or forced drain (0x08). */
const NOT_SERVING = 0x01 | 0x08;

/** Compares the running servers (and the host map) with the files; throws on the first difference. */
export async function verify(socket: RuntimeSocket, expected: RuntimeExpected, map: string | undefined): Promise<void> {
  const running = new Map<string, Map<string, ServerState>>();
  for (const s of parseServersState(await cliCommand(socket, 'show servers state'))) {
    const b = running.get(s.backend) ?? new Map<string, ServerState>();
    running.set(s.backend, b);
    b.set(s.name, s);
  }
  for (const [backend, servers] of expected.backends) {
    const live = running.get(backend) ?? new Map<string, ServerState>();
    for (const [name, s] of servers) {
      const r = live.get(name);
      if (!r) throw new RuntimeError(`read-back: server ${backend}/${name} is not running`);
      if (r.address !== s.address || r.port !== s.port)
        throw new RuntimeError(
          `read-back: server ${backend}/${name} runs at ${r.address}:${r.port}, the file says ${s.address}:${s.port}`,
        );
      if (r.adminState & NOT_SERVING)
        throw new RuntimeError(`read-back: server ${backend}/${name} is in maintenance or drain`);
    }
    for (const name of live.keys())
      if (!servers.has(name))
        throw new RuntimeError(`read-back: server ${backend}/${name} runs but is not in the file`);
  }
  if (expected.map && map !== undefined) {
    const live = parseShowMap(await cliCommand(socket, `show map ${map}`));
    for (const [key, value] of expected.map)
      if (live.get(key) !== value)
        throw new RuntimeError(`read-back: map entry ${key} is ${live.get(key) ?? 'missing'}, the file says ${value}`);
    for (const key of live.keys())
      if (!expected.map.has(key)) throw new RuntimeError(`read-back: map entry ${key} is running but not in the file`);
  }
}
