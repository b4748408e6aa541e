/**
 * Hitless reloads: continuous HTTP load (a fresh connection per request, bounded in time) through
 * HAProxy in master-worker mode (reload on the master socket, listeners handed over with
 * `expose-fd listeners`) and through Nginx (reload by SIGHUP), while `interlock watch` applies at
 * least 50 changes to both. Not one request may fail. Loopback only.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readHaproxyMap } from '../helpers/haproxy-map.ts';
import {
  createService,
  describeIntegration,
  freePort,
  removeAllTestServices,
  startHaproxy,
  startNginx,
  tempDir,
  uniqueServiceName,
  waitForHttp,
} from '../helpers/infra.ts';
import { metricValue, runLoad, startWatch, updateLabels, type WatchProcess, waitFor } from '../watch/it-helpers.ts';

const PREFIX = 'it-wload';
const CHANGES = 55;

describeIntegration('interlock watch: zero failed requests while reloading', ['docker', 'haproxy', 'nginx'], () => {
  let dir = '';
  let daemon: WatchProcess;
  let hp = 0;
  let ng = 0;
  const web = { name: '', host: '' };
  const churn = { name: '' };

  beforeAll(async () => {
    await removeAllTestServices(`${PREFIX}-`);
    dir = await tempDir('ilwl-');
    [hp, ng] = [await freePort(), await freePort()];
    web.name = uniqueServiceName(PREFIX);
    web.host = `${web.name}.test`;
    churn.name = uniqueServiceName(PREFIX);
    const labels = (name: string) => ({
      'interlock.hostname': name,
      'interlock.domain': 'test',
      'interlock.port': '80',
    });
    await Promise.all([
      createService({ name: web.name, labels: labels(web.name), publish: { target: 80, published: await freePort() } }),
      createService({
        name: churn.name,
        labels: labels(churn.name),
        publish: { target: 80, published: await freePort() },
      }),
    ]);
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
            masterSocket: path.join(dir, 'stats.sock'),
            reload: { kind: 'haproxy-master', socket: path.join(dir, 'master.sock') },
          },
          {
            kind: 'nginx',
            file: 'nginx.conf',
            http: { address: '127.0.0.1', port: ng },
            reload: { kind: 'signal', pidFile: path.join(dir, 'nginx.pid') },
          },
        ],
      }),
    );
    daemon = await startWatch({
      config,
      listenPort: await freePort(),
      env: { DOCKER_HOST: 'unix:///var/run/docker.sock' },
    });
    await waitFor('the first render', async () => (await readHaproxyMap(dir)).includes(web.host));
    await startHaproxy(path.join(dir, 'haproxy.cfg'), { port: hp, cwd: dir });
    await startNginx(path.join(dir, 'nginx.conf'), dir, { port: ng });
    for (const port of [hp, ng]) {
      await waitForHttp(`http://127.0.0.1:${port}/`, { host: web.host, accept: (r) => r.status === 200 });
    }
  });

  afterAll(async () => {
    if (daemon) expect(await daemon.stop()).toBe(0);
  });

  it(`serves every request through HAProxy and Nginx while ${CHANGES} changes are applied`, async () => {
    const before = await daemon.metrics();
    const reloadsBefore = (output: string) => metricValue(before, 'interlock_reloads_total', { output, result: 'ok' });
    const load = runLoad({
      targets: [
        { url: `http://127.0.0.1:${hp}/`, host: web.host },
        { url: `http://127.0.0.1:${ng}/`, host: web.host },
      ],
      concurrency: 4,
      maxMs: 60_000,
    });
    const started = Date.now();
    // Bounded in time: a loaded machine makes fewer changes, and every change made is checked.
    let made = 0;
    try {
      for (let i = 1; i <= CHANGES && Date.now() - started < 50_000; i++) {
        const alias = `${churn.name}-${i}.test`;
        await updateLabels(churn.name, { 'interlock.alias_domain': alias });
        // Both files carry the change before the next one: each change is its own apply.
        await waitFor(`change ${i} in both files`, async () => {
          const [m, n] = await Promise.all([readHaproxyMap(dir), readFile(path.join(dir, 'nginx.conf'), 'utf8')]);
          return m.includes(alias) && n.includes(alias);
        });
        made = i;
      }
    } finally {
      const result = await load.stop();
      // The files carry a change before its reload is done and counted: give the last reload
      // its moment before counting (bounded; a missing reload still fails below).
      await waitFor(
        'the last reloads to be counted',
        async () => {
          const m = await daemon.metrics();
          return ['haproxy', 'nginx'].every(
            (output) =>
              metricValue(m, 'interlock_reloads_total', { output, result: 'ok' }) +
                metricValue(m, 'interlock_runtime_updates_total', { output, result: 'ok' }) -
                reloadsBefore(output) -
                metricValue(before, 'interlock_runtime_updates_total', { output, result: 'ok' }) >=
              made,
          );
        },
        { timeoutMs: 10_000 },
      ).catch(() => {});
      const after = await daemon.metrics();
      const reloads = {
        haproxy:
          metricValue(after, 'interlock_reloads_total', { output: 'haproxy', result: 'ok' }) - reloadsBefore('haproxy'),
        nginx:
          metricValue(after, 'interlock_reloads_total', { output: 'nginx', result: 'ok' }) - reloadsBefore('nginx'),
      };
      console.info(`load: ${result.ok} requests served, ${result.failed} failed; reloads ${JSON.stringify(reloads)}`);
      expect(result.failed, `failed requests:\n${result.samples.join('\n')}`).toBe(0);
      expect(result.ok).toBeGreaterThan(500);
      console.info(`changes made and applied: ${made} of ${CHANGES}`);
      // Enough changes to mean something, and each one its own reload of both proxies.
      expect(made).toBeGreaterThanOrEqual(20);
      // Issue 12: an alias is a host-map entry, which HAProxy takes through its runtime API.
      const runtime =
        metricValue(after, 'interlock_runtime_updates_total', { output: 'haproxy', result: 'ok' }) -
        metricValue(before, 'interlock_runtime_updates_total', { output: 'haproxy', result: 'ok' });
      expect(reloads.haproxy + runtime).toBeGreaterThanOrEqual(made);
      expect(reloads.nginx).toBeGreaterThanOrEqual(made);
      // (Failures before the proxies were started do not count.)
      const failed = (t: string) => metricValue(t, 'interlock_reloads_total', { result: 'failed' });
      const why = daemon.lines().filter((l) => l.includes('reload failed'));
      expect(failed(after) - failed(before), why.join('\n')).toBe(0);
    }
    await waitForHttp(`http://127.0.0.1:${hp}/`, {
      host: `${churn.name}-${made}.test`,
      accept: (r) => r.status === 200,
    });
  }, 90_000);
});
