/**
 * `npm run bench -- --only runtime` (issue 12): task churn through the HAProxy runtime API, with
 * the real daemon binary (build first), the host Swarm and a real HAProxy (master-worker, admin
 * socket), as test/integration/runtime-api.test.ts does and with its helpers. A host-mode
 * published service (the engine picks each task's port) is scaled 3 → 6 → 3, then rolled
 * (`docker service update --force`) under continuous loopback load. Rows: reloads (target 0),
 * failed requests (target 0), runtime updates, requests served, and the time of each step.
 * Traffic stays on loopback. On a shared machine run it under the Docker lock:
 *
 *   flock /tmp/interlock-docker.lock npm run bench -- --only runtime
 */
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { type RuntimeSocket, verifyRunning } from '../src/apply/haproxy-runtime.ts';
import { parseHaproxyConfig, planHaproxyRuntime } from '../src/apply/haproxy-runtime-diff.ts';
import { readHaproxyMap } from '../test/helpers/haproxy-map.ts';
import {
  createService,
  dockerCli,
  freePort,
  removeAllTestServices,
  removeService,
  startHaproxy,
  stopAll,
  tempDir,
  uniqueServiceName,
  waitForHttp,
  waitForReplicas,
} from '../test/helpers/infra.ts';
import { metricValue, runLoad, startWatch, type WatchProcess, waitFor } from '../test/watch/it-helpers.ts';

const { values: args } = parseArgs({ options: { rounds: { type: 'string', default: '1' } } });
const ROUNDS = Math.max(1, Number(args.rounds));
const PREFIX = 'bench-rtapi';

interface Row {
  measure: string;
  value: string;
  target: string;
  ok: boolean | undefined;
}
const rows: Row[] = [];
const load = () => `load average ${(os.loadavg()[0] ?? 0).toFixed(2)} on ${os.cpus().length} CPU(s)`;

function printTable(): void {
  const header: Row = { measure: 'measure', value: 'value', target: 'target', ok: undefined };
  const w = (k: 'measure' | 'value' | 'target') => Math.max(...[header, ...rows].map((r) => r[k].length));
  const line = (r: Row, ok: string) =>
    `| ${r.measure.padEnd(w('measure'))} | ${r.value.padStart(w('value'))} | ${r.target.padEnd(w('target'))} | ${ok.padEnd(6)} |`;
  console.log(`\n${line(header, 'result')}`);
  console.log(
    `|${'-'.repeat(w('measure') + 2)}|${'-'.repeat(w('value') + 2)}|${'-'.repeat(w('target') + 2)}|--------|`,
  );
  for (const r of rows) console.log(line(r, r.ok === undefined ? '' : r.ok ? 'PASS' : 'MISS'));
  console.log(`  (${load()})`);
}

let daemon: WatchProcess | undefined;
const name = uniqueServiceName(PREFIX);
try {
  await removeAllTestServices(`${PREFIX}-`);
  const dir = await tempDir('ilbrt-');
  const hp = await freePort();
  const host = `${name}.test`;
  const stats: RuntimeSocket = { path: path.join(dir, 'stats.sock'), prefix: '' };
  const cfgFile = path.join(dir, 'haproxy.cfg');
  await createService({
    name,
    labels: { 'interlock.hostname': name, 'interlock.domain': 'test', 'interlock.port': '80' },
    publish: { target: 80 },
    // As in the integration test: a stopping task keeps serving long enough to be taken out.
    stopGracePeriod: '10s',
  });
  await dockerCli(['service', 'scale', '--detach', `${name}=3`]);
  await waitForReplicas(name, 3, 90_000);
  const config = path.join(dir, 'interlock.config.json');
  await writeFile(
    config,
    JSON.stringify({
      clusters: { local: { nodeAddress: '127.0.0.1' } },
      outputs: [
        {
          kind: 'haproxy',
          file: 'haproxy.cfg',
          http: { address: '127.0.0.1', port: hp },
          masterSocket: stats.path,
          reload: { kind: 'haproxy-master', socket: path.join(dir, 'master.sock') },
        },
      ],
    }),
  );
  const d = await startWatch({
    config,
    listenPort: await freePort(),
    env: { DOCKER_HOST: 'unix:///var/run/docker.sock' },
  });
  daemon = d;
  const fileServers = async () => {
    const parsed = parseHaproxyConfig(await readFile(cfgFile, 'utf8'));
    const backend = [...parsed.backends.values()].find((b) => b.name.startsWith(`${name}__`));
    return backend ? backend.servers.size : 0;
  };
  const runningEqualsFiles = async () => {
    const text = await readFile(cfgFile, 'utf8');
    const map = await readHaproxyMap(dir);
    const plan = planHaproxyRuntime({ config: text, map }, { config: text, map });
    if (plan.kind !== 'runtime') return false;
    return verifyRunning(stats, cfgFile, plan.expected).then(
      () => true,
      () => false,
    );
  };
  const settled = async (n: number, what: string) => {
    await waitFor(`${what}: ${n} servers in the file`, async () => (await fileServers()) === n, {
      timeoutMs: 90_000,
      intervalMs: 200,
    });
    await waitFor(`${what}: the running proxy to equal the files`, runningEqualsFiles, {
      timeoutMs: 30_000,
      intervalMs: 200,
    });
  };
  const counters = async () => {
    const m = await d.metrics();
    return {
      reloads:
        metricValue(m, 'interlock_reloads_total', { output: 'haproxy', result: 'ok' }) +
        metricValue(m, 'interlock_reloads_total', { output: 'haproxy', result: 'failed' }),
      runtime: metricValue(m, 'interlock_runtime_updates_total', { output: 'haproxy', result: 'ok' }),
      runtimeFailed: metricValue(m, 'interlock_runtime_updates_total', { output: 'haproxy', result: 'failed' }),
    };
  };
  const taskIds = async () =>
    (await dockerCli(['service', 'ps', name, '--filter', 'desired-state=running', '--format', '{{.ID}}', '-q']))
      .trim()
      .split('\n')
      .filter(Boolean)
      .sort();

  await waitFor('the first render with 3 servers', async () => (await fileServers()) === 3, { timeoutMs: 60_000 });
  await startHaproxy(cfgFile, { port: hp, cwd: dir });
  // The daemon's first reload failed (no proxy yet): its retry makes the running proxy its own.
  await waitFor('the retried reload', async () => (await counters()).reloads >= 1, { timeoutMs: 30_000 });
  await waitForHttp(`http://127.0.0.1:${hp}/`, { host, accept: (r) => r.status === 200 });
  await settled(3, 'start');

  const before = await counters();
  const traffic = runLoad({ targets: [{ url: `http://127.0.0.1:${hp}/`, host }], concurrency: 4, maxMs: 600_000 });
  const steps: string[] = [];
  const step = async (what: string, fn: () => Promise<void>) => {
    const t0 = performance.now();
    await fn();
    steps.push(`${what} ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  };
  let failure: unknown;
  try {
    for (let round = 0; round < ROUNDS; round++) {
      await step('3→6', async () => {
        await dockerCli(['service', 'scale', '--detach', `${name}=6`]);
        await settled(6, 'scaled to 6');
      });
      await step('6→3', async () => {
        await dockerCli(['service', 'scale', '--detach', `${name}=3`]);
        await settled(3, 'scaled to 3');
      });
      await step('rolling update', async () => {
        const old = await taskIds();
        await dockerCli(['service', 'update', '--force', '--detach', name]);
        await waitFor(
          'the rolling update to replace every task',
          async () => {
            const now = await taskIds();
            return now.length === 3 && now.every((id) => !old.includes(id));
          },
          { timeoutMs: 120_000, intervalMs: 500 },
        );
        await waitForReplicas(name, 3, 90_000);
        await settled(3, 'rolled');
      });
    }
  } catch (e) {
    failure = e;
  }
  const result = await traffic.stop();
  const after = await counters();
  const reloads = after.reloads - before.reloads;
  const runtime = after.runtime - before.runtime;
  const runtimeFailed = after.runtimeFailed - before.runtimeFailed;
  console.log(
    `runtime: ${ROUNDS} round(s) of scale 3→6→3 + rolling update under load: ${result.ok} served, ${result.failed} failed; reloads ${reloads}, runtime updates ${runtime} (failed ${runtimeFailed}); ${steps.join(', ')} (${load()})`,
  );
  if (result.samples.length > 0) console.log(`  failed requests:\n    ${result.samples.join('\n    ')}`);
  if (failure) console.log(`  the scenario did not complete: ${String(failure)}`);
  const complete = failure === undefined;
  rows.push({
    measure: `scale 3→6→3 + rolling update under load: reloads (${load()})`,
    value: String(reloads),
    target: '0 (runtime only)',
    ok: complete && reloads === 0 && runtimeFailed === 0,
  });
  rows.push({
    measure: `scale 3→6→3 + rolling update under load: failed requests of ${result.ok + result.failed}`,
    value: String(result.failed),
    target: '0',
    ok: complete && result.failed === 0 && result.ok > 0,
  });
  rows.push({
    measure: 'runtime API updates (failed)',
    value: `${runtime} (${runtimeFailed})`,
    target: '',
    ok: undefined,
  });
  if (!complete) process.exitCode = 1;
} finally {
  if (daemon) await daemon.stop();
  await removeService(name).catch(() => {});
  await stopAll();
  printTable();
}
