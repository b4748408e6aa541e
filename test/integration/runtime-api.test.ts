/**
 * Task churn without reloads (issue 12): `interlock watch` in front of a real HAProxy (master-worker,
 * admin stats socket) and the host Swarm. A host-mode published service (the engine picks each
 * task's host port, so several tasks fit on this one node; routed through 127.0.0.1) is scaled
 * 3 → 6 → 3 and rolled (`service update --force`) under continuous loopback load: no request
 * fails, the reload counter stays where it was, the runtime-update counter goes up, and the
 * running servers and host map equal the files.
 *
 * Then the runtime path fails on purpose, once with the socket gone and once with the proxy
 * answering an error (a server removed behind the daemon's back): each change falls back to a
 * reload with one log line, and still no request fails.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cliCommand, type RuntimeSocket, verifyRunning } from '../../src/apply/haproxy-runtime.ts';
import { parseHaproxyConfig, planHaproxyRuntime } from '../../src/apply/haproxy-runtime-diff.ts';
import { readHaproxyMap } from '../helpers/haproxy-map.ts';
import {
  createService,
  describeIntegration,
  dockerCli,
  freePort,
  removeAllTestServices,
  startHaproxy,
  tempDir,
  uniqueServiceName,
  waitForHttp,
  waitForReplicas,
} from '../helpers/infra.ts';
import { metricValue, runLoad, startWatch, type WatchProcess, waitFor } from '../watch/it-helpers.ts';

const PREFIX = 'it-rtapi';

describeIntegration('HAProxy runtime API: scale and roll without reloads', ['docker', 'haproxy'], () => {
  let dir = '';
  let daemon: WatchProcess;
  let hp = 0;
  let stats: RuntimeSocket;
  const web = { name: '', host: '' };

  const cfgFile = () => path.join(dir, 'haproxy.cfg');
  /** The servers of the service's backend, as the file says. */
  const fileServers = async () => {
    const parsed = parseHaproxyConfig(await readFile(cfgFile(), 'utf8'));
    const backend = [...parsed.backends.values()].find((b) => b.name.startsWith(`${web.name}__`));
    return backend ? [...backend.servers.values()] : [];
  };
  /** The running proxy's servers and host map equal the files: undefined when they do, else why not. */
  const runningDiffers = async (): Promise<string | undefined> => {
    const config = await readFile(cfgFile(), 'utf8');
    const map = await readHaproxyMap(dir);
    const plan = planHaproxyRuntime({ config, map }, { config, map });
    if (plan.kind !== 'runtime') return plan.reason;
    try {
      await verifyRunning(stats, cfgFile(), plan.expected);
      return undefined;
    } catch (e) {
      return (e as Error).message;
    }
  };
  const counters = async () => {
    const m = await daemon.metrics();
    return {
      reloads: metricValue(m, 'interlock_reloads_total', { output: 'haproxy', result: 'ok' }),
      reloadsFailed: metricValue(m, 'interlock_reloads_total', { output: 'haproxy', result: 'failed' }),
      runtime: metricValue(m, 'interlock_runtime_updates_total', { output: 'haproxy', result: 'ok' }),
      runtimeFailed: metricValue(m, 'interlock_runtime_updates_total', { output: 'haproxy', result: 'failed' }),
    };
  };
  /** Waits until the file lists `n` servers and the running proxy equals the files. */
  const settled = async (n: number, what: string) => {
    await waitFor(`${what}: ${n} servers in the file`, async () => (await fileServers()).length === n, {
      timeoutMs: 90_000,
      intervalMs: 200,
    });
    let why: string | undefined = 'not checked';
    await waitFor(
      `${what}: the running proxy to equal the files`,
      async () => {
        why = await runningDiffers();
        return why === undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    ).catch((e: unknown) => {
      throw new Error(`${String(e)}: ${why}`);
    });
  };
  const taskIds = async () =>
    (await dockerCli(['service', 'ps', web.name, '--filter', 'desired-state=running', '--format', '{{.ID}}', '-q']))
      .trim()
      .split('\n')
      .filter(Boolean)
      .sort();

  beforeAll(async () => {
    await removeAllTestServices(`${PREFIX}-`);
    dir = await tempDir('ilrt-');
    hp = await freePort();
    web.name = uniqueServiceName(PREFIX);
    web.host = `${web.name}.test`;
    stats = { path: path.join(dir, 'stats.sock'), prefix: '' };
    // No published port: the engine picks one per task, so several tasks fit on this node.
    await createService({
      name: web.name,
      labels: { 'interlock.hostname': web.name, 'interlock.domain': 'test', 'interlock.port': '80' },
      publish: { target: 80 },
      // A task that stops keeps serving for a while (its process, PID 1, ignores SIGTERM), as an
      // application with a graceful shutdown does: long enough for the daemon to take it out.
      stopGracePeriod: '10s',
    });
    await dockerCli(['service', 'scale', '--detach', `${web.name}=3`]);
    await waitForReplicas(web.name, 3, 90_000);
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
    daemon = await startWatch({
      config,
      listenPort: await freePort(),
      env: { DOCKER_HOST: 'unix:///var/run/docker.sock' },
    });
    await waitFor('the first render with 3 servers', async () => (await fileServers()).length === 3, {
      timeoutMs: 30_000,
    });
    await startHaproxy(cfgFile(), { port: hp, cwd: dir });
    // The daemon's first reload failed (no proxy yet): its retry makes the running proxy its own.
    await waitFor('the retried reload', async () => (await counters()).reloads >= 1, { timeoutMs: 30_000 });
    await waitForHttp(`http://127.0.0.1:${hp}/`, { host: web.host, accept: (r) => r.status === 200 });
    await settled(3, 'start');
  }, 180_000);

  afterAll(async () => {
    if (daemon) expect(await daemon.stop()).toBe(0);
  });

  it('scales 3 → 6 → 3 and rolls the service under load: no reload, no failed request', async () => {
    const before = await counters();
    const load = runLoad({
      targets: [{ url: `http://127.0.0.1:${hp}/`, host: web.host }],
      concurrency: 4,
      maxMs: 240_000,
    });
    let failure: unknown;
    try {
      await dockerCli(['service', 'scale', '--detach', `${web.name}=6`]);
      await settled(6, 'scaled to 6');
      await dockerCli(['service', 'scale', '--detach', `${web.name}=3`]);
      await settled(3, 'scaled to 3');
      const old = await taskIds();
      await dockerCli(['service', 'update', '--force', '--detach', web.name]);
      await waitFor(
        'the rolling update to replace every task',
        async () => {
          const now = await taskIds();
          return now.length === 3 && now.every((id) => !old.includes(id));
        },
        { timeoutMs: 120_000, intervalMs: 500 },
      );
      await waitForReplicas(web.name, 3, 90_000);
      await settled(3, 'rolled');
    } catch (e) {
      failure = e;
    }
    {
      const result = await load.stop();
      const after = await counters();
      console.info(
        `load: ${result.ok} served, ${result.failed} failed; reloads ${after.reloads - before.reloads}, runtime updates ${after.runtime - before.runtime} (failed ${after.runtimeFailed - before.runtimeFailed})`,
      );
      const why = daemon.lines().filter((l) => /reload/.test(l));
      // A step that failed says why first (the load and the counters are for a complete run).
      if (failure) throw failure;
      expect(result.failed, `failed requests:\n${result.samples.join('\n')}\n${why.join('\n')}`).toBe(0);
      expect(result.ok).toBeGreaterThan(100);
      expect(after.reloads - before.reloads, why.join('\n')).toBe(0);
      expect(after.reloadsFailed - before.reloadsFailed, why.join('\n')).toBe(0);
      expect(after.runtimeFailed - before.runtimeFailed).toBe(0);
      expect(after.runtime - before.runtime).toBeGreaterThanOrEqual(3);
    }
    const health = await daemon.health();
    const output = (health.body.outputs as Record<string, { lastApplied?: { how: string; time: string } }>).haproxy;
    expect(output?.lastApplied?.how).toBe('runtime');
  }, 420_000);

  it('falls back to a reload, with one log line, when the socket is gone or the proxy answers an error', async () => {
    const before = await counters();
    const from = daemon.lines().length;
    const load = runLoad({
      targets: [{ url: `http://127.0.0.1:${hp}/`, host: web.host }],
      concurrency: 4,
      maxMs: 180_000,
    });
    let failure: unknown;
    try {
      // The socket is gone (a new worker inherits the listening socket, so a reload does not bring
      // the file back: it is put back once the fallback happened).
      await rename(stats.path, `${stats.path}.away`);
      await dockerCli(['service', 'scale', '--detach', `${web.name}=4`]);
      await waitFor('a reload instead of the runtime update', async () => (await counters()).reloads > before.reloads, {
        timeoutMs: 90_000,
        intervalMs: 200,
      });
      await rename(`${stats.path}.away`, stats.path);
      await settled(4, 'scaled to 4 with the socket gone');

      // The proxy answers an error: the server the daemon will drain is already gone.
      const mid = await counters();
      const servers = await fileServers();
      const backend = [...parseHaproxyConfig(await readFile(cfgFile(), 'utf8')).backends.values()].find((b) =>
        b.name.startsWith(`${web.name}__`),
      );
      const victim = servers.find((s) => s.name === `${web.name}-4`) ?? servers[servers.length - 1];
      expect(victim && backend).toBeTruthy();
      const id = `${backend?.name}/${victim?.name}`;
      expect((await cliCommand(stats, `set server ${id} state maint`)).trim()).toBe('');
      // Its idle keep-alive connections are released shortly after.
      await waitFor(
        `del server ${id}`,
        async () => (await cliCommand(stats, `del server ${id}`)).trim() === 'Server deleted.',
        { timeoutMs: 15_000, intervalMs: 200 },
      );
      await dockerCli(['service', 'scale', '--detach', `${web.name}=3`]);
      await waitFor(
        'a second reload instead of the runtime update',
        async () => (await counters()).reloads > mid.reloads,
        {
          timeoutMs: 90_000,
          intervalMs: 200,
        },
      );
      await settled(3, 'scaled to 3 with the server gone');
    } catch (e) {
      failure = e;
    }
    {
      const result = await load.stop();
      const after = await counters();
      const lines = daemon.lines().slice(from);
      const said = lines.filter((l) => l.includes('runtime update failed; reloaded instead'));
      console.info(
        `load: ${result.ok} served, ${result.failed} failed; daemon lines:\n${lines.filter((l) => /applied|runtime|reload/.test(l)).join('\n')}`,
      );
      if (failure) throw failure;
      expect(result.failed, `failed requests:\n${result.samples.join('\n')}`).toBe(0);
      expect(after.runtimeFailed - before.runtimeFailed).toBe(2);
      expect(said).toHaveLength(2);
      expect(said[0]).toMatch(/stats\.sock/);
      // The task the engine removes may be another one: then the read-back finds the victim missing.
      expect(said[1]).toMatch(/No such server|is not running/);
      expect(after.reloads - before.reloads).toBe(2);
      expect(after.reloadsFailed - before.reloadsFailed).toBe(0);
    }
    const health = await daemon.health();
    const output = (health.body.outputs as Record<string, { lastApplied?: { how: string } }>).haproxy;
    expect(output?.lastApplied?.how).toBe('reload');
  }, 300_000);
});
