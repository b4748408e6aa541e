/**
 * A render that differs from the accepted files only in server addresses, servers added with the
 * parameters of servers the proxy already accepted, or host-map entries naming backends, is not
 * checked again (issue 12: the check costs 1 s at 10,000 services and task churn is most changes).
 * Anything else is checked, a user's own validate command always runs, and when a runtime update
 * fails after a skipped check the proxy checks the files before any reload.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Applier } from '../../src/apply/apply.ts';
import type { ProxyCheck } from '../../src/apply/check-proxy.ts';
import { mapUses, planHaproxyRuntime } from '../../src/apply/haproxy-runtime-diff.ts';
import { type Config, configSchema } from '../../src/config/schema.ts';
import type { PlannedOutput } from '../../src/pipeline.ts';
import { FakeSwarm, httpService } from '../watch/fake-swarm.ts';
import { planFromSwarm } from './plan-from-swarm.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'interlock-bycon-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function configFor(extra: Record<string, unknown> = {}): Config {
  return configSchema.parse({
    clusters: { local: { nodeAddress: '127.0.0.1' } },
    outputs: [{ kind: 'haproxy', file: 'haproxy.cfg', http: { address: '127.0.0.1', port: 18080 }, ...extra }],
  });
}

const plan = (config: Config, swarm: FakeSwarm) => planFromSwarm(config, swarm, dir);

const OK: ProxyCheck = { ok: true, output: 'Configuration file is valid', command: 'haproxy -c -f haproxy.cfg' };

function checker() {
  return vi.fn(async (): Promise<ProxyCheck> => OK);
}

const mainText = () => readFile(path.join(dir, 'haproxy.cfg'), 'utf8');

describe('Applier: the check a render does not need', () => {
  it('skips it for moved and added servers and for changed hosts; checks a new backend', async () => {
    const config = configFor();
    const swarm = new FakeSwarm();
    swarm.add(httpService('web', 18001));
    swarm.add(httpService('api', 18002));
    const check = checker();
    const applier = new Applier({ env: {}, reload: false, missingBinary: 'fail', check });

    expect((await applier.apply(await plan(config, swarm))).kind).toBe('applied');
    expect(check).toHaveBeenCalledTimes(1);

    // A task moved (another port) and one added: server lines only.
    const web = swarm.services.get('svc-web');
    if (!web) throw new Error('no web');
    web.ports = [18011, 18012];
    const moved = await applier.apply(await plan(config, swarm));
    expect(moved).toMatchObject({ kind: 'applied', checkSkipped: true });
    expect(check).toHaveBeenCalledTimes(1);
    expect(await mainText()).toContain('127.0.0.1:18012');

    // Another host for a service: map entries only.
    web.labels = { ...web.labels, 'interlock.hostname': 'www' };
    const rehosted = await applier.apply(await plan(config, swarm));
    expect(rehosted).toMatchObject({ kind: 'applied', checkSkipped: true });
    expect(check).toHaveBeenCalledTimes(1);
    const mapName = /map_beg\(([^)]+)\)/.exec(await mainText())?.[1] ?? '';
    expect(await readFile(path.join(dir, mapName), 'utf8')).toMatch(/^www\.test\/ /m);

    // A new service is a new backend: checked.
    swarm.add(httpService('shop', 18003));
    const added = await applier.apply(await plan(config, swarm));
    expect(added.kind).toBe('applied');
    expect(added).not.toHaveProperty('checkSkipped');
    expect(check).toHaveBeenCalledTimes(2);
  });

  it('checks when another file of the output changed (an error page, a users file)', async () => {
    const config = configFor();
    const swarm = new FakeSwarm();
    swarm.add(httpService('web', 18001));
    const check = checker();
    const applier = new Applier({ env: {}, reload: false, missingBinary: 'fail', check });
    const withPage = (p: PlannedOutput, page: string): PlannedOutput => ({
      ...p,
      files: [{ path: path.join(dir, 'page.http'), content: page }, ...p.files],
    });
    const web = swarm.services.get('svc-web') as { ports: number[] };
    await applier.apply(withPage(await plan(config, swarm), 'HTTP/1.0 503 one\r\n\r\n'));
    web.ports = [18061];
    expect(await applier.apply(withPage(await plan(config, swarm), 'HTTP/1.0 503 one\r\n\r\n'))).toMatchObject({
      checkSkipped: true,
    });
    expect(check).toHaveBeenCalledTimes(1);
    web.ports = [18062];
    const changed = await applier.apply(withPage(await plan(config, swarm), 'HTTP/1.0 503 two\r\n\r\n'));
    expect(changed.kind).toBe('applied');
    expect(changed).not.toHaveProperty('checkSkipped');
    expect(check).toHaveBeenCalledTimes(2);
  });

  it("always runs a user's own validate command", async () => {
    const config = configFor({ validate: { kind: 'command', command: ['true', '{file}'] } });
    const swarm = new FakeSwarm();
    swarm.add(httpService('web', 18001));
    const check = checker();
    const applier = new Applier({ env: {}, reload: false, missingBinary: 'fail', check });
    await applier.apply(await plan(config, swarm));
    (swarm.services.get('svc-web') as { ports: number[] }).ports = [18021];
    const moved = await applier.apply(await plan(config, swarm));
    expect(moved.kind).toBe('applied');
    expect(moved).not.toHaveProperty('checkSkipped');
    expect(check).toHaveBeenCalledTimes(2);
  });

  it('prepare (served-only outputs) compares with the last render it accepted', async () => {
    const config = configFor();
    const swarm = new FakeSwarm();
    swarm.add(httpService('web', 18001));
    const check = checker();
    const applier = new Applier({ env: {}, reload: false, missingBinary: 'fail', check });
    expect((await applier.prepare(await plan(config, swarm))).ok).toBe(true);
    (swarm.services.get('svc-web') as { ports: number[] }).ports = [18031, 18032];
    const p = await applier.prepare(await plan(config, swarm));
    expect(p.ok).toBe(true);
    expect(p.check.byConstruction).toBe(true);
    expect(check).toHaveBeenCalledTimes(1);
    // A fresh applier (a one-shot `render` or `validate`) always checks.
    const once = new Applier({ env: {}, reload: false, missingBinary: 'fail', check });
    await once.prepare(await plan(config, swarm));
    expect(check).toHaveBeenCalledTimes(2);
  });

  it('a runtime update that fails after a skipped check: the proxy checks first; rejected files are put back', async () => {
    const config = configFor({ reload: { kind: 'haproxy-master', socket: path.join(dir, 'master.sock') } });
    const swarm = new FakeSwarm();
    swarm.add(httpService('web', 18001));
    let verdict = OK;
    const check = vi.fn(async (): Promise<ProxyCheck> => verdict);
    const reloader = vi.fn(async () => ({ ok: true, detail: 'reloaded' }));
    const runtimeApply = vi.fn(async (): Promise<number> => {
      throw new Error('server state read back differs');
    });
    const applier = new Applier({
      env: {},
      reload: true,
      runtime: true,
      missingBinary: 'fail',
      check,
      reloader: reloader as never,
      runtimeApply,
    });
    expect((await applier.apply(await plan(config, swarm))).kind).toBe('applied');
    const accepted = await mainText();
    expect(check).toHaveBeenCalledTimes(1);

    // Runtime fails, the late check passes: reloaded with the new files.
    (swarm.services.get('svc-web') as { ports: number[] }).ports = [18041];
    const reloaded = await applier.apply(await plan(config, swarm));
    expect(runtimeApply).toHaveBeenCalledTimes(1);
    expect(check).toHaveBeenCalledTimes(2);
    expect(reloaded).toMatchObject({ kind: 'applied', runtime: { ok: false } });
    expect(reloaded).not.toHaveProperty('checkSkipped');
    expect(await mainText()).toContain('127.0.0.1:18041');

    // Runtime fails and the proxy rejects the files: the accepted ones are back, nothing else loaded.
    const before = await mainText();
    (swarm.services.get('svc-web') as { ports: number[] }).ports = [18051];
    verdict = { ok: false, output: '[ALERT] something', command: 'haproxy -c -f haproxy.cfg' };
    const rejected = await applier.apply(await plan(config, swarm));
    expect(rejected).toMatchObject({ kind: 'rejected', error: '[ALERT] something' });
    expect(await mainText()).toBe(before);
    expect(before).not.toBe(accepted);
  });
});

describe('mapUses', () => {
  it('finds map converters as a word boundary regex would, in order', () => {
    const text = 'map_beg(a.map) x,map(b.map,def) amap(c) map_str(d)\n# map_dom(e)';
    expect(mapUses(text)).toEqual([
      { name: 'a.map', index: 0 },
      { name: 'b.map', index: text.indexOf('map(b') },
      { name: 'd', index: text.indexOf('map_str') },
      { name: 'e', index: text.indexOf('map_dom') },
    ]);
  });
});

describe('planHaproxyRuntime: recheck', () => {
  const config = (servers: string[], extra = '') =>
    [
      'global',
      '    maxconn 100',
      'frontend http',
      '    bind 127.0.0.1:80',
      '    use_backend %[var(txn.backend)] if { var(txn.backend) -m found }',
      '    http-request set-var(txn.backend) var(txn.host),map_beg(hosts.map)',
      'backend web',
      ...servers.map((s) => `    ${s}`),
      extra,
    ].join('\n');
  const plan = (a: string[], b: string[], maps: [string, string] = ['a/ web\n', 'a/ web\n']) =>
    planHaproxyRuntime({ config: config(a), map: maps[0] }, { config: config(b), map: maps[1] });

  it('needs none for an address moved to another IP, a server added like the others, a host naming a backend', () => {
    const p = plan(
      ['server s1 10.0.0.1:80 check'],
      ['server s1 10.0.0.9:8080 check', 'server s2 10.0.0.2:80 check'],
      ['a/ web\n', 'a/ web\nb/ web\n'],
    );
    expect(p).toMatchObject({ kind: 'runtime' });
    expect(p).not.toHaveProperty('recheck');
  });

  it('names why for a server by name, new server parameters, a map value that is no backend', () => {
    expect(plan(['server s1 10.0.0.1:80 check'], ['server s1 app.internal:80 check'])).toMatchObject({
      recheck: 'server web/s1 has address app.internal, not an IP address',
    });
    expect(
      plan(['server s1 10.0.0.1:80 check'], ['server s1 10.0.0.1:80 check', 'server s2 10.0.0.2:80 check weight 7']),
    ).toMatchObject({
      recheck: 'server web/s2 has parameters no server of the running render has',
    });
    expect(plan(['server s1 10.0.0.1:80'], ['server s1 10.0.0.1:80'], ['a/ web\n', 'a/ nowhere\n'])).toMatchObject({
      recheck: 'map entry a/ names nowhere, which is neither a backend nor a redirect',
    });
    expect(
      plan(['server s1 10.0.0.1:80'], ['server s1 10.0.0.1:80'], ['a/ web\n', 'http://a/ 301:https://b.test\n']),
    ).not.toHaveProperty('recheck');
  });
});
