/**
 * `interlock watch` as a user runs it (the built binary), where no engine is needed: exit codes,
 * start-up with an unreachable cluster, config reloads. The Swarm scenarios are in
 * test/integration/watch.test.ts.
 */

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { interlock } from '../helpers/exec.ts';
import { freePort } from '../helpers/infra.ts';
import { startWatch, type WatchProcess, waitFor } from './it-helpers.ts';

let dir: string;
let daemon: WatchProcess | undefined;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'interlock-watch-cli-'));
});
afterEach(async () => {
  await daemon?.stop();
  daemon = undefined;
  await rm(dir, { recursive: true, force: true });
});

function config(extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    clusters: { local: { endpoint: { kind: 'socket', path: 'no-engine-here.sock' }, timeout: '1s' } },
    outputs: [{ kind: 'haproxy', file: 'out/haproxy.cfg', http: { address: '127.0.0.1', port: 18080 } }],
    ...extra,
  });
}

describe('interlock watch (no engine needed)', () => {
  it('exits 2 without starting when the config is invalid, naming the problem', async () => {
    const file = path.join(dir, 'interlock.config.json');
    await writeFile(file, JSON.stringify({ clusters: {}, outputs: [{ kind: 'haproxy' }] }));
    const r = await interlock(['watch', '--config', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/level=error msg=.*outputs\[0\]/);
    expect(r.stderr).toContain('not starting');
    expect(r.stdout).toBe('');
  });

  it('exits 2 on a malformed --listen', async () => {
    const file = path.join(dir, 'interlock.config.json');
    await writeFile(file, config());
    const r = await interlock(['watch', '--config', file, '--listen', 'localhost']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--listen localhost: write ADDRESS:PORT');
  });

  it('starts with its cluster unreachable: keeps retrying, writes nothing, reports down; SIGTERM exits 0', async () => {
    const file = path.join(dir, 'interlock.config.json');
    await writeFile(file, config());
    daemon = await startWatch({ config: file, listenPort: await freePort(), args: ['--log-format', 'json'] });
    const line = await daemon.waitForLog(/cannot read cluster/);
    expect(JSON.parse(line)).toMatchObject({ level: 'warn', cluster: 'local', msg: 'cannot read cluster' });
    const health = await daemon.health();
    expect(health.status).toBe(503);
    expect(health.body).toMatchObject({
      ok: false,
      clusters: { local: { state: 'down', lastRead: null } },
      outputs: { haproxy: { state: 'pending' } },
    });
    expect(existsSync(path.join(dir, 'out', 'haproxy.cfg'))).toBe(false);
    expect(await daemon.stop()).toBe(0);
    expect(daemon.lines().at(-1)).toContain('"msg":"stopped"');
    daemon = undefined;
  });

  it("removes a killed run's temp files at start, and not a live process's", async () => {
    const file = path.join(dir, 'interlock.config.json');
    await writeFile(file, config());
    const dead = spawnSync('true').pid;
    const gone = path.join(dir, 'out', `.haproxy.cfg.${dead}.0123456789ab.tmp`);
    const live = path.join(dir, 'out', `.haproxy.cfg.${process.pid}.0123456789ab.tmp`);
    await mkdir(path.join(dir, 'out'));
    for (const f of [gone, live]) await writeFile(f, 'half a config');
    daemon = await startWatch({ config: file, listenPort: await freePort() });
    await daemon.waitForLog(/cannot read cluster/);
    expect(existsSync(gone)).toBe(false);
    expect(existsSync(live)).toBe(true);
  });

  it('reloads its config on change (--watch-config) and on SIGHUP; keeps the running one when the new one is invalid', async () => {
    const file = path.join(dir, 'interlock.config.json');
    await writeFile(file, config());
    daemon = await startWatch({ config: file, listenPort: await freePort(), args: ['--watch-config'] });
    await daemon.waitForLog(/msg=watching/);

    let from = daemon.lines().length;
    await writeFile(file, '{ "clusters": ');
    await daemon.waitForLog(/msg="new config rejected; the running one stays in force"/, { from });
    expect(daemon.lines().slice(from).join('\n')).toMatch(/level=error/);
    expect((await daemon.health()).status).toBe(503); // still running, cluster still down

    from = daemon.lines().length;
    await writeFile(file, config({ watch: { reconcile: '3s' } }));
    await daemon.waitForLog(/msg="config reloaded"/, { from });

    from = daemon.lines().length;
    daemon.child.kill('SIGHUP');
    await daemon.waitForLog(/msg="reloading config" why=SIGHUP/, { from });
    await daemon.waitForLog(/msg="config reloaded"/, { from });
    await waitFor('still answering', async () => (await daemon?.health())?.status === 503);
  });
});
