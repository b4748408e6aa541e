/**
 * `interlock watch` (the real binary, built) against the real Swarm, HAProxy and Nginx on loopback:
 * create, scale, relabel and remove a service → the files change and both proxies serve the
 * change; a bad label → a diagnostic, the others keep being served; a burst of updates → few
 * applies; the engine connection cut mid-watch → reconnect, resync, correct files.
 *
 * The daemon reaches the engine through a relay socket in front of /var/run/docker.sock, so the
 * test can cut the connection (stream dropped, engine unreachable) without stopping the dockerd
 * that other tests share. Restarting dockerd itself is the last test: it stops every container on
 * the machine for a few seconds, so it runs in CI (integration files run one at a time there) or
 * when INTERLOCK_IT_RESTART_DOCKERD=1, not on a machine where other work may be using dockerd.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { interlock } from '../helpers/exec.ts';
import { mapNameIn, readHaproxyMap } from '../helpers/haproxy-map.ts';
import {
  createService,
  describeIntegration,
  dockerCli,
  freePort,
  httpGet,
  type ProxyProcess,
  removeAllTestServices,
  removeService,
  startHaproxy,
  startNginx,
  tempDir,
  uniqueServiceName,
  waitForHttp,
  waitForReplicas,
} from '../helpers/infra.ts';
import {
  metricValue,
  type SocketRelay,
  sleep,
  socketRelay,
  startWatch,
  updateLabels,
  type WatchProcess,
  waitFor,
} from '../watch/it-helpers.ts';

const PREFIX = 'it-watch';
const ci = process.env.CI;
const RESTART_DOCKERD =
  process.env.INTERLOCK_IT_RESTART_DOCKERD === '1' ||
  (ci !== undefined && ci !== '' && ci !== '0' && ci.toLowerCase() !== 'false');

/** Alive and not a zombie (a container's init may never reap a daemon it inherited). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

describeIntegration('interlock watch on the real Swarm', ['docker', 'haproxy', 'nginx'], () => {
  let dir = '';
  let config = '';
  let relay: SocketRelay;
  let daemon: WatchProcess;
  let haproxy: ProxyProcess;
  let nginx: ProxyProcess;
  let hp = 0;
  let ng = 0;
  const web = { name: '', port: 0, host: '' };

  const through = (port: number) => `http://127.0.0.1:${port}/`;
  /** Both proxies answer `status` for `host`. */
  const servedBy = async (host: string, status: number, timeoutMs = 10_000) => {
    for (const port of [hp, ng]) {
      await waitForHttp(through(port), { host, timeoutMs, accept: (r) => r.status === status });
    }
  };
  const map = () => readHaproxyMap(dir);

  beforeAll(async () => {
    await removeAllTestServices(`${PREFIX}-`);
    dir = await tempDir('ilw-');
    [hp, ng] = [await freePort(), await freePort()];
    relay = await socketRelay(path.join(dir, 'docker.sock'));
    config = path.join(dir, 'interlock.config.json');
    await writeFile(
      config,
      JSON.stringify(
        {
          clusters: { local: { endpoint: { kind: 'socket', path: 'docker.sock' }, nodeAddress: '127.0.0.1' } },
          // Raw options let a label through that the parsers accept and HAProxy rejects.
          rules: [{ kind: 'interlock', allowRawDirectives: true }],
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
            { kind: 'log' },
          ],
          watch: { reconcile: '2s' },
        },
        null,
        2,
      ),
    );
    daemon = await startWatch({ config, listenPort: await freePort() });
    // The first render lands before any proxy runs (its reload fails and is retried); the
    // proxies then start from the files the daemon wrote.
    await waitFor(
      'the first render',
      () => existsSync(path.join(dir, 'nginx.conf')) && existsSync(path.join(dir, 'haproxy.cfg')),
    );
    haproxy = await startHaproxy(path.join(dir, 'haproxy.cfg'), { port: hp, cwd: dir });
    nginx = await startNginx(path.join(dir, 'nginx.conf'), dir, { port: ng });

    web.name = uniqueServiceName(PREFIX);
    web.port = await freePort();
    web.host = `${web.name}.test`;
  });

  afterAll(async () => {
    // describeIntegration's stopAll removes services, proxies and the temp dir.
    const code = daemon ? await daemon.stop() : 0;
    await relay?.close();
    expect(code).toBe(0);
  });

  it('a new labelled service gets a route: both proxies serve its host', async () => {
    const from = daemon.lines().length;
    await createService({
      name: web.name,
      labels: { 'interlock.hostname': web.name, 'interlock.domain': 'test', 'interlock.port': '80' },
      publish: { target: 80, published: web.port },
    });
    await servedBy(web.host, 200);
    expect((await httpGet(through(hp), { host: web.host })).body).toBe('ok\n');
    expect(await map()).toContain(web.host);
    // The log output: one line per event, one per change.
    await daemon.waitForLog(new RegExp(`msg=event cluster=local type=service action=create name=${web.name}`), {
      from,
    });
    await daemon.waitForLog(new RegExp(`msg=change output=log .*added=${web.host.replaceAll('.', '\\.')}`), { from });
    expect(
      daemon
        .lines()
        .slice(from)
        .some((l) => /msg=applied output=haproxy .*routes=1 backends=1/.test(l)),
    ).toBe(true);
  });

  it('scaled to zero the host answers 503; scaled back it is served again', async () => {
    await dockerCli(['service', 'scale', '--detach', `${web.name}=0`]);
    await servedBy(web.host, 503);
    await dockerCli(['service', 'scale', '--detach', `${web.name}=1`]);
    await waitForReplicas(web.name, 1);
    await servedBy(web.host, 200);
  });

  it('a relabel moves the route: the new host is served, the old one answers 503', async () => {
    const renamed = `${web.name}-b.test`;
    await dockerCli(['service', 'update', '--detach', '--label-add', `interlock.hostname=${web.name}-b`, web.name]);
    await servedBy(renamed, 200);
    await servedBy(web.host, 503);
    expect(await map()).not.toContain(`${web.host}/`);
    await updateLabels(web.name, { 'interlock.hostname': web.name });
    await servedBy(web.host, 200);
  });

  it('a bad label: a diagnostic is logged once, the others keep being served, and no bad file is applied', async () => {
    const from = daemon.lines().length;
    const bad = uniqueServiceName(PREFIX);
    await createService({
      name: bad,
      labels: { 'interlock.hostname': bad, 'interlock.domain': 'test', 'interlock.port': 'eighty' },
      publish: { target: 80, published: await freePort() },
    });
    const line = await daemon.waitForLog(new RegExp(`service refused: .*service=${bad}`), { from });
    expect(line).toMatch(/level=warn/);
    await servedBy(web.host, 200);
    await servedBy(`${bad}.test`, 503);
    // Several re-lists later it has not been said again.
    await sleep(4500);
    expect(daemon.lines().filter((l) => l.includes('service refused') && l.includes(`service=${bad}`))).toHaveLength(1);
    const health = await daemon.health();
    expect(health.status).toBe(200);
    await removeService(bad);
  });

  it("a label HAProxy rejects: that service alone is left out with HAProxy's reason; other changes keep being applied", async () => {
    const from = daemon.lines().length;
    const bad = uniqueServiceName(PREFIX);
    await createService({
      name: bad,
      labels: {
        'interlock.hostname': bad,
        'interlock.domain': 'test',
        'interlock.port': '80',
        'interlock.backend_option': 'nonsense',
      },
      publish: { target: 80, published: await freePort() },
    });
    const line = await daemon.waitForLog(new RegExp(`service refused: left out of output haproxy: .*service=${bad}`), {
      from,
    });
    expect(line).toContain('nonsense');
    // Nginx renders no raw HAProxy options: it serves the service; HAProxy serves everyone else.
    await waitForHttp(through(ng), { host: `${bad}.test`, timeoutMs: 10_000, accept: (r) => r.status === 200 });
    expect((await httpGet(through(hp), { host: `${bad}.test` })).status).toBe(503);
    await servedBy(web.host, 200);
    const health = await daemon.health();
    expect(health.status).toBe(200);
    const outputs = health.body.outputs as Record<string, { leftOut?: { service: string; reason: string }[] }>;
    expect(outputs.haproxy?.leftOut).toEqual([
      { service: `local/${bad}`, reason: expect.stringMatching(/unknown option 'nonsense'/) },
    ]);
    // Another service's change is applied while the bad one stays left out.
    const alias = `${web.name}-alias.test`;
    await updateLabels(web.name, { 'interlock.hostname': web.name, 'interlock.alias_domain': alias });
    await servedBy(alias, 200);
    expect(await readFile(path.join(dir, 'haproxy.cfg'), 'utf8')).not.toContain('nonsense');
    await updateLabels(web.name, { 'interlock.alias_domain': null });
    // Fixed: served by both, and the log says the problem is over.
    await updateLabels(bad, { 'interlock.backend_option': 'forwardfor' });
    await servedBy(`${bad}.test`, 200);
    await daemon.waitForLog(new RegExp(`diagnostic resolved.*code=proxy-rejected.*service=${bad}`), { from });
    await removeService(bad);
  });

  it('a burst of 20 updates is applied in a few passes, ending with the last one', async () => {
    await sleep(300);
    const before = metricValue(await daemon.metrics(), 'interlock_applies_total', { output: 'haproxy' });
    for (let i = 1; i <= 20; i++) await updateLabels(web.name, { 'interlock.alias_domain': `burst-${i}.test` });
    await servedBy('burst-20.test', 200);
    await sleep(1500);
    const applies = metricValue(await daemon.metrics(), 'interlock_applies_total', { output: 'haproxy' }) - before;
    expect(applies).toBeGreaterThanOrEqual(1);
    expect(applies).toBeLessThanOrEqual(5);
    expect(await map()).not.toContain('burst-19.test');
  });

  it('removing the service removes the route: 503 on both proxies', async () => {
    const other = uniqueServiceName(PREFIX);
    await createService({
      name: other,
      labels: { 'interlock.hostname': other, 'interlock.domain': 'test', 'interlock.port': '80' },
      publish: { target: 80, published: await freePort() },
    });
    await servedBy(`${other}.test`, 200);
    await removeService(other);
    await servedBy(`${other}.test`, 503);
    await servedBy(web.host, 200);
  });

  it('the engine connection cut mid-watch: stale while away, then reconnect, resync and correct files', async () => {
    const from = daemon.lines().length;
    await relay.cut();
    await daemon.waitForLog(/msg="event stream lost; reconnecting"/, { from });
    // While the daemon cannot see the engine, a service comes and a label changes: no event
    // will ever tell it, only the resync.
    const late = uniqueServiceName(PREFIX);
    await createService({
      name: late,
      labels: { 'interlock.hostname': late, 'interlock.domain': 'test', 'interlock.port': '80' },
      publish: { target: 80, published: await freePort() },
    });
    await updateLabels(web.name, { 'interlock.alias_domain': 'while-away.test' });
    await waitFor('healthz to say stale', async () => {
      const h = await daemon.health();
      const local = (h.body.clusters as Record<string, { state: string }>).local;
      return h.status === 503 && local?.state === 'stale';
    });
    // The proxies keep serving the last good config meanwhile.
    await servedBy(web.host, 200);

    await relay.restore();
    await daemon.waitForLog(/msg="event stream reconnected; resyncing"/, { from, timeoutMs: 15_000 });
    await servedBy(`${late}.test`, 200);
    await servedBy('while-away.test', 200);
    await waitFor('healthz 200', async () => (await daemon.health()).status === 200);
    // The files are exactly what a one-off render of the same cluster gives.
    const fresh = await tempDir('ilw-render-');
    const r = await interlock(['render', '--config', config, '--out-dir', fresh]);
    expect(r.code, r.stderr).toBe(0);
    for (const f of ['haproxy.cfg', mapNameIn(readFileSync(path.join(fresh, 'haproxy.cfg'), 'utf8')) ?? 'no map']) {
      expect(readFileSync(path.join(dir, f), 'utf8')).toBe(readFileSync(path.join(fresh, f), 'utf8'));
    }
    await removeService(late);
  });

  it('/metrics counts events, renders, applies and reloads; /healthz names every output', async () => {
    const text = await daemon.metrics();
    expect(metricValue(text, 'interlock_events_total')).toBeGreaterThan(10);
    expect(metricValue(text, 'interlock_renders_total')).toBeGreaterThan(5);
    expect(metricValue(text, 'interlock_reloads_total', { output: 'nginx', result: 'ok' })).toBeGreaterThan(3);
    expect(metricValue(text, 'interlock_apply_duration_seconds_count', { output: 'haproxy' })).toBeGreaterThan(3);
    const health = await daemon.health();
    expect(health.body).toMatchObject({
      ok: true,
      clusters: { local: { state: 'connected', error: null } },
      outputs: { haproxy: { state: 'ok' }, nginx: { state: 'ok' } },
    });
    // Every reload the daemon asked for was one the proxies accepted.
    expect(haproxy.output()).not.toMatch(/\[ALERT\]/);
    expect(nginx.output()).not.toMatch(/\[emerg\]/);
  });

  it.runIf(RESTART_DOCKERD)(
    'dockerd restarted mid-watch: reconnect and resync without restarting interlock',
    async () => {
      const from = daemon.lines().length;
      const pid = Number(readFileSync('/var/run/docker.pid', 'utf8').trim());
      process.kill(pid, 'SIGTERM');
      try {
        await waitFor('dockerd to exit', () => !running(pid), { timeoutMs: 30_000, intervalMs: 200 });
        await daemon.waitForLog(/msg="(event stream lost; reconnecting|cannot subscribe to events; retrying)"/, {
          from,
          timeoutMs: 30_000,
        });
      } finally {
        // Whatever happened above, the engine comes back: the rest of the tier needs it.
        const child = spawn('setsid', ['sh', '-c', 'nohup dockerd >>/var/log/dockerd.log 2>&1 &'], {
          stdio: 'ignore',
          detached: true,
        });
        child.unref();
        await waitFor('docker info', () => spawnSync('docker', ['info'], { timeout: 5000 }).status === 0, {
          timeoutMs: 60_000,
          intervalMs: 500,
        });
      }
      await daemon.waitForLog(/msg="event stream reconnected; resyncing"/, { from, timeoutMs: 30_000 });
      await waitForReplicas(web.name, 1, 60_000);
      await servedBy(web.host, 200, 30_000);
      await updateLabels(web.name, { 'interlock.alias_domain': 'after-restart.test' });
      await servedBy('after-restart.test', 200);
      await waitFor('healthz 200', async () => (await daemon.health()).status === 200);
    },
    150_000,
  );
});
