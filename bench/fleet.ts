/**
 * `npm run bench -- --only fleet`: the proxy fleet's figures, against one controller (the built
 * `interlock watch`, reading a fake Docker Engine of 100 services on a unix socket):
 *
 * - change → every agent applied (p50, p99): 3 agents, each checking with the real `haproxy -c`;
 *   then 50 agents as processes (`true` as their proxy binary and reload command, so no proxy
 *   runs; what is measured is the controller → agent path). The 50 share this machine's cores, so
 *   a row also gives one agent's CPU per change and the floor it sets here (50 × CPU ÷ cores). The clock starts when the fake engine changes a label and emits
 *   the event, and stops at the last agent's `applied` log line: it includes the controller's
 *   debounce (the default 100 ms min users get), re-list, render and its own `haproxy -c` (which
 *   both it and the agents skip when only servers and map entries changed: src/apply/apply.ts). Each
 *   row also says how that splits: change → the controller serves the new hash (polled on
 *   /healthz every 10 ms), and served → the last agent applied.
 * - controller CPU with 100 idle agents connected (4 processes × 25 agents, each with its own
 *   long-poll connection and identity; the controller cannot tell them from 100 processes).
 * - bytes sent per change per agent: the whole bundle, gzip (what goes over the wire), and raw.
 *
 * The 50 agents reload as deploy/stack.yml's do, through HAProxy's master socket (`--reload-master-
 * socket`, on a fake master socket this bench answers). `--agent-reload command` gives them
 * `--reload-command true` instead: a command is a process spawned per change, which from a Node
 * process costs ~10-25 ms of CPU here (fork of a large process: page tables, copy-on-write
 * faults), more than the rest of the apply, so 50 of them on 2 cores queue for ~1 s more.
 *
 *   bench/fleet.ts [--changes N] [--agents N] [--idle-agents N] [--idle-seconds N] [--agent-reload master|command]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { startFakeEngine } from '../test/fleet/helpers.ts';
import { type FakeService, httpService } from '../test/watch/fake-swarm.ts';
import { processTreeCpuMs } from './lib/proc.ts';
import { fixed, int, table } from './lib/table.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = path.join(ROOT, 'bin/interlock.js');
const JITI = path.join(ROOT, 'node_modules/jiti/lib/jiti-cli.mjs');
const log = (line = '') => process.stdout.write(`${line}\n`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const { values } = parseArgs({
  options: {
    changes: { type: 'string', default: '20' },
    agents: { type: 'string', default: '50' },
    'idle-agents': { type: 'string', default: '100' },
    'idle-seconds': { type: 'string', default: '30' },
    'agent-reload': { type: 'string', default: 'master' },
  },
});
const CHANGES = Number(values.changes);
const MANY = Number(values.agents);
const IDLE = Number(values['idle-agents']);
const IDLE_SECONDS = Number(values['idle-seconds']);
const MASTER = values['agent-reload'] === 'master';
if (!MASTER && values['agent-reload'] !== 'command') throw new Error('--agent-reload: command or master');

/** A fake HAProxy master socket: answers `reload` as HAProxy 2.7+ does when it succeeded. */
function fakeMasterSocket(file: string): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((c) => {
      c.on('data', (b) => {
        if (b.toString().includes('reload')) c.end('Success=1\n--\n');
      });
      c.on('error', () => {});
    });
    server.once('error', reject);
    server.listen(file, () => resolve(server));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

function getJson(url: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let b = '';
        res.on('data', (c) => {
          b += c;
        });
        res.on('end', () => {
          try {
            resolve(JSON.parse(b) as Record<string, unknown>);
          } catch (e) {
            reject(e);
          }
        });
      })
      .on('error', reject);
  });
}

interface Proc {
  child: ChildProcess;
  /** `applied` log lines: hash prefix → time (ms). */
  applied: Map<string, number>;
  lines: string[];
}

const procs = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of procs) c.kill('SIGKILL');
});

function spawnLogged(argv: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(process.execPath, argv, {
    cwd: ROOT,
    // Never the host's Docker: the controller reads the fake engine only.
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  procs.add(child);
  child.once('exit', () => procs.delete(child));
  const p: Proc = { child, applied: new Map(), lines: [] };
  let rest = '';
  const onData = (b: Buffer) => {
    const parts = (rest + b.toString()).split('\n');
    rest = parts.pop() ?? '';
    for (const l of parts) {
      if (p.lines.length < 2000) p.lines.push(l);
      const m = /^time=(\S+) level=info msg=applied .*hash=([0-9a-f]{12})/.exec(l);
      if (m) p.applied.set(m[2] as string, Date.parse(m[1] as string));
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  return p;
}

async function stopAll(list: Proc[]): Promise<void> {
  await Promise.all(
    list.map(
      (p) =>
        new Promise<void>((resolve) => {
          if (p.child.exitCode !== null || p.child.signalCode !== null) return resolve();
          p.child.once('exit', () => resolve());
          p.child.kill('SIGTERM');
          setTimeout(() => p.child.kill('SIGKILL'), 10_000).unref();
        }),
    ),
  );
}

type Files = { name: string; content: string }[];

/** The output's current bundle files, as an agent fetches them. */
function bundleFiles(port: number, token: string): Promise<Files> {
  return new Promise((resolve, reject) => {
    http
      .get(
        `http://127.0.0.1:${port}/v1/bundles/edge?instance=bench-probe`,
        { headers: { authorization: `Bearer ${token}` } },
        (res) => {
          let b = '';
          res.on('data', (c) => {
            b += c;
          });
          res.on('end', () => {
            try {
              resolve((JSON.parse(b) as { files: Files }).files);
            } catch (e) {
              reject(e);
            }
          });
        },
      )
      .on('error', reject);
  });
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] as number;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'ilbf-'));
  const [listen, agentsPort] = [await freePort(), await freePort()];
  let services: FakeService[] = Array.from({ length: 100 }, (_, i) => httpService(`svc-${i}`, 21_000 + i));
  const engine = await startFakeEngine(path.join(dir, 'docker.sock'), services);
  await writeFile(path.join(dir, 'token'), 'bench-token\n');
  await writeFile(
    path.join(dir, 'interlock.config.json'),
    JSON.stringify({
      // The engine is named here (and DOCKER_HOST below): a controller that fell back to the host's
      // engine would never see the fake's changes (test/fleet/fake-engine.test.ts).
      clusters: { fake: { endpoint: { kind: 'socket', path: engine.socketPath }, nodeAddress: '127.0.0.1' } },
      agents: { tokenFile: 'token', listen: `127.0.0.1:${agentsPort}`, wait: '30s' },
      // No `watch` settings: the debounce (100 ms min, 1 s max) and reconcile (5 s) users get.
      outputs: [
        {
          kind: 'haproxy',
          name: 'edge',
          file: '/srv/edge/haproxy.cfg',
          http: { address: '127.0.0.1', port: await freePort() },
          serve: true,
          write: false,
        },
      ],
    }),
  );
  const controller = spawnLogged(
    [BIN, 'watch', '-c', path.join(dir, 'interlock.config.json'), '--listen', `127.0.0.1:${listen}`],
    { DOCKER_HOST: `unix://${engine.socketPath}` },
  );
  const healthz = `http://127.0.0.1:${listen}/healthz`;
  const fleet = async () =>
    (await getJson(healthz).catch((): Record<string, unknown> => ({}))).agents as
      | {
          outputs: Record<string, { hash: string | null; bytes: number; gzipBytes: number }>;
          list: { state: string; instance: string }[];
        }
      | undefined;
  const currentHash = async () => (await fleet())?.outputs.edge?.hash ?? undefined;
  for (let i = 0; i < 600 && !(await currentHash()); i++) await sleep(100);
  if (!(await currentHash())) throw new Error(`the controller serves nothing:\n${controller.lines.join('\n')}`);

  const agentArgs = (name: string, extra: string[]) => [
    BIN,
    'agent',
    '--controller',
    `http://127.0.0.1:${agentsPort}`,
    '--token-file',
    path.join(dir, 'token'),
    '--output',
    'edge',
    '--dir',
    path.join(dir, 'agents', name),
    '--instance',
    name,
    ...(extra.includes('--reload-master-socket') ? [] : ['--reload-command', 'true']),
    ...extra,
  ];
  const waitAll = async (agents: Proc[], hash: string, timeoutMs: number) => {
    const short = hash.slice(0, 12);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (agents.every((a) => a.applied.has(short)))
        return Math.max(...agents.map((a) => a.applied.get(short) as number));
      await sleep(20);
    }
    return undefined;
  };

  let change = 0;
  /** N label changes; per change, the ms from the change to the last agent's apply. */
  const measure = async (
    agents: Proc[],
  ): Promise<{ samples: number[]; served: number[]; first: number[]; missed: number; load: number }> => {
    const samples: number[] = [];
    const served: number[] = [];
    const first: number[] = [];
    let missed = 0;
    for (let i = 0; i < CHANGES; i++) {
      const before = await currentHash();
      change++;
      services = services.map((s, k) =>
        k === 0 ? { ...s, labels: { ...s.labels, 'interlock.hostname': `change-${change}` } } : s,
      );
      const t0 = Date.now();
      engine.set(services);
      let hash: string | undefined;
      for (let w = 0; w < 600 && (!hash || hash === before); w++) {
        hash = await currentHash();
        if (!hash || hash === before) await sleep(10);
      }
      if (hash && hash !== before) served.push(Date.now() - t0);
      const done = hash && hash !== before ? await waitAll(agents, hash, 30_000) : undefined;
      if (done !== undefined && hash)
        first.push(Math.min(...agents.map((a) => a.applied.get(hash.slice(0, 12)) as number)) - t0);
      if (done === undefined) {
        missed++;
        const late = agents.find((a) => !hash || !a.applied.has(hash.slice(0, 12)));
        log(
          `change ${change}: ${hash && hash !== before ? `hash ${hash.slice(0, 12)} not applied everywhere in 30 s` : 'the controller served no new hash in 6 s'}; an agent's last lines:\n  ${late?.lines.slice(-4).join('\n  ')}`,
        );
      } else samples.push(done - t0);
      await sleep(200);
    }
    return { samples, served, first, missed, load: loadavg()[0] ?? 0 };
  };
  /**
   * Where the time went (p50s): change → served by the controller; served → the first agent
   * applied (one agent's own check, write and reload); → the last (the agents queueing for the
   * machine's cores: here all agents share 2 cores, on a fleet each has its node).
   */
  const split = (r: { samples: number[]; served: number[]; first: number[]; load: number }) => {
    const [c, f, l] = [percentile(r.served, 50), percentile(r.first, 50), percentile(r.samples, 50)];
    return `controller ${fixed(c / 1000, 2)} s, first agent +${fixed((f - c) / 1000, 2)} s, last +${fixed((l - f) / 1000, 2)} s; load ${fixed(r.load, 1)}`;
  };

  const rows: (string | number)[][] = [];
  const verdict = (ok: boolean) => (ok ? 'PASS' : 'MISS');

  // 3 agents with the real haproxy check.
  const three = ['r1', 'r2', 'r3'].map((n) => spawnLogged(agentArgs(n, [])));
  const first = await currentHash();
  if (!first || (await waitAll(three, first, 120_000)) === undefined)
    throw new Error(`3 agents did not converge:\n${three[0]?.lines.join('\n')}`);
  const beforeFiles = await bundleFiles(agentsPort, 'bench-token');
  const r3 = await measure(three);
  // What one label change changed: the files that differ (a diff protocol's lower bound).
  const had = new Set(beforeFiles.map((f) => `${f.name}\0${f.content}`));
  const changed = (await bundleFiles(agentsPort, 'bench-token')).filter((f) => !had.has(`${f.name}\0${f.content}`));
  const changedRaw = changed.reduce((n, f) => n + Buffer.byteLength(f.content), 0);
  const changedGzip = gzipSync(JSON.stringify(changed)).length;
  await stopAll(three);
  rows.push(
    [
      'change → 3 agents applied, p50 (haproxy -c on each)',
      `${fixed(percentile(r3.samples, 50) / 1000, 2)} s`,
      '≤ 0.5 s',
      verdict(percentile(r3.samples, 50) <= 500 && r3.missed === 0),
    ],
    [
      'change → 3 agents applied, p99',
      `${fixed(percentile(r3.samples, 99) / 1000, 2)} s`,
      '≤ 2 s',
      verdict(percentile(r3.samples, 99) <= 2000 && r3.missed === 0),
    ],
    ['  where the p50 goes', split(r3), '', ''],
  );
  log(`3 agents: ${r3.samples.length} changes measured, ${r3.missed} not converged within 30 s; ${split(r3)}`);

  // 50 agents as processes: `true` as their proxy binary (its check: `true -c -f FILE`, skipped like
  // haproxy's for changes of servers and map entries only) and as their reload command, or with
  // --agent-reload master a fake master socket (one for all: it only answers `reload`).
  const many: Proc[] = [];
  const master = MASTER ? await fakeMasterSocket(path.join(dir, 'master.sock')) : undefined;
  const reloadArgs = master ? ['--reload-master-socket', path.join(dir, 'master.sock')] : [];
  for (let i = 0; i < MANY; i++) {
    many.push(spawnLogged(agentArgs(`m${i}`, ['--proxy-binary', '/bin/true', ...reloadArgs])));
    if (i % 10 === 9) await sleep(500);
  }
  const now = await currentHash();
  const startOk = now ? await waitAll(many, now, 300_000) : undefined;
  let rMany = {
    samples: [] as number[],
    served: [] as number[],
    first: [] as number[],
    missed: CHANGES,
    load: loadavg()[0] ?? 0,
  };
  // The agents' own CPU per change: 50 processes share this machine's cores, where a real fleet
  // has one node each; the floor below is what the cores alone allow.
  const agentsCpu = () =>
    many.reduce((n, p) => n + (p.child.pid ? processTreeCpuMs(p.child.pid, { reaped: true }) : 0), 0);
  const agentsCpu0 = agentsCpu();
  if (startOk !== undefined) rMany = await measure(many);
  else log(`${MANY} agents did not all start and converge within 300 s`);
  const perAgentMs = rMany.samples.length > 0 ? (agentsCpu() - agentsCpu0) / rMany.samples.length / MANY : Number.NaN;
  const cores = availableParallelism();
  await stopAll(many);
  master?.close();
  rows.push(
    [
      `change → ${MANY} agents applied, p50 (agents as processes; proxy binary true; reload ${master ? 'via a fake master socket' : 'command true'})`,
      `${fixed(percentile(rMany.samples, 50) / 1000, 2)} s`,
      '≤ 0.5 s',
      verdict(percentile(rMany.samples, 50) <= 500 && rMany.missed === 0),
    ],
    [
      `change → ${MANY} agents applied, p99`,
      `${fixed(percentile(rMany.samples, 99) / 1000, 2)} s`,
      '≤ 2 s',
      verdict(percentile(rMany.samples, 99) <= 2000 && rMany.missed === 0),
    ],
    ['  where the p50 goes', split(rMany), '', ''],
    [
      `  CPU of one agent per change; ${MANY} of them on ${cores} cores need at least`,
      `${fixed(perAgentMs, 0)} ms; ${fixed((perAgentMs * MANY) / cores / 1000, 2)} s`,
      'reported',
      'n/a',
    ],
  );
  log(`${MANY} agents: ${rMany.samples.length} changes measured, ${rMany.missed} missed; ${split(rMany)}`);

  // 100 idle agents in 4 processes.
  const perProc = Math.ceil(IDLE / 4);
  const workers = Array.from({ length: 4 }, (_, w) =>
    spawnLogged([
      JITI,
      path.join(ROOT, 'bench/lib/fleet-agents.ts'),
      `http://127.0.0.1:${agentsPort}`,
      path.join(dir, 'token'),
      path.join(dir, 'idle'),
      String(w),
      String(Math.min(perProc, IDLE - w * perProc)),
    ]),
  );
  let connected = 0;
  for (let i = 0; i < 1200; i++) {
    connected = ((await fleet())?.list ?? []).filter(
      (a) => a.state === 'converged' && a.instance.startsWith('idle-'),
    ).length;
    if (connected >= IDLE) break;
    await sleep(250);
  }
  await sleep(2000);
  const pid = controller.child.pid as number;
  const cpu0 = processTreeCpuMs(pid);
  const t0 = performance.now();
  await sleep(IDLE_SECONDS * 1000);
  const cpuPct = ((processTreeCpuMs(pid) - cpu0) / (performance.now() - t0)) * 100;
  const edge = (await fleet())?.outputs.edge;
  await stopAll(workers);
  rows.push(
    [
      `controller CPU, ${connected} idle agents connected (${IDLE_SECONDS} s)`,
      `${fixed(cpuPct, 2)} % of a core`,
      '≤ 2 %',
      verdict(connected >= IDLE && cpuPct <= 2),
    ],
    [
      'bytes sent per change per agent (whole bundle, gzip; 100 services)',
      `${int(edge?.gzipBytes ?? Number.NaN)} B`,
      'reported',
      'n/a',
    ],
    [
      '  the same bundle uncompressed (agents that do not ask for gzip)',
      `${int(edge?.bytes ?? Number.NaN)} B`,
      'reported',
      'n/a',
    ],
    [
      `  what one label change changed: ${changed.length} files (${changed.map((f) => f.name.replace(/[0-9a-f]{12}/, '<hash>')).join(', ')}), gzip / raw`,
      `${int(changedGzip)} B / ${int(changedRaw)} B`,
      'reported',
      'n/a',
    ],
  );

  await stopAll([controller]);
  await engine.close();
  await rm(dir, { recursive: true, force: true });
  const [l1, l5, l15] = loadavg();
  log();
  log(table('Proxy fleet targets', ['figure', 'value', 'target', 'result'], rows));
  log(
    `load average: ${fixed(l1 ?? 0, 2)} ${fixed(l5 ?? 0, 2)} ${fixed(l15 ?? 0, 2)} (${'2'} cores shared with other work)`,
  );
}

await main();
process.exit(0);
