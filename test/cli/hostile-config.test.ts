/**
 * Configs that used to crash interlock ("a bug; please report it" with a stack), hang it, or let
 * it overwrite what it must not. Each must give a clear error, exit 1 or 2, and write nothing.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type ExecResult, fixture, interlock, ROOT } from '../helpers/exec.ts';

const DEMO = path.join(ROOT, 'examples', 'swarm-demo.snapshot.json');
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'interlock-cli-hostile-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** No stack, no "please report": a message written for the user. */
function expectClean(r: ExecResult): void {
  expect(r.stderr).not.toContain('please report');
  expect(r.stderr).not.toMatch(/^\s+at /m);
  expect(r.stdout).not.toMatch(/^\s+at /m);
}

const config = (name: string, file = 'interlock.config.ts') => fixture('config', name, file);

/** Renders the demo snapshot with a config into an empty --out-dir. */
function renderInto(configFile: string, env: Record<string, string> = {}) {
  return interlock(['render', '--config', configFile, '--snapshot', DEMO, '--out-dir', dir], { env });
}

describe('configs that cannot be loaded', () => {
  it('a YAML alias bomb is a config error, not a crash', async () => {
    const file = config('yaml-alias-bomb', 'interlock.config.yaml');
    const r = await interlock(['validate', '--config', file]);
    expectClean(r);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^interlock: test\/fixtures\/config\/yaml-alias-bomb\/interlock\.config\.yaml: /);
    expect(r.stderr).toContain('too many YAML aliases');
    const render = await renderInto(file);
    expectClean(render);
    expect(render.code).toBe(2);
    expect(await readdir(dir)).toEqual([]);
  });

  it('a .ts config function that throws null', async () => {
    const r = await renderInto(config('ts-throws-null'));
    expectClean(r);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'interlock: test/fixtures/config/ts-throws-null/interlock.config.ts: the config function threw null\n',
    );
    expect(await readdir(dir)).toEqual([]);
  });

  it('a .ts config whose exported object has a getter that throws', async () => {
    const r = await renderInto(config('ts-throwing-getter'));
    expectClean(r);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'interlock: test/fixtures/config/ts-throwing-getter/interlock.config.ts: reading the exported config threw: outputs are not ready\n',
    );
    expect(await readdir(dir)).toEqual([]);
  });

  it('a .ts config whose promise never settles times out with a message', async () => {
    const r = await renderInto(config('ts-never-settles'), { INTERLOCK_CONFIG_TIMEOUT: '2s' });
    expectClean(r);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'interlock: test/fixtures/config/ts-never-settles/interlock.config.ts: the config did not finish loading within 2s (waiting for a promise that never settles?); raise INTERLOCK_CONFIG_TIMEOUT if it is just slow\n',
    );
    expect(await readdir(dir)).toEqual([]);
  });

  it('a .ts config that never returns (a synchronous endless loop) times out with a message', async () => {
    const r = await interlock(['validate', '--config', config('ts-sync-loop')], {
      env: { INTERLOCK_CONFIG_TIMEOUT: '1500ms' },
    });
    expectClean(r);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'interlock: test/fixtures/config/ts-sync-loop/interlock.config.ts: the config did not finish loading within 1500ms (still running: an endless loop?); raise INTERLOCK_CONFIG_TIMEOUT if it is just slow\n',
    );
    const render = await renderInto(config('ts-sync-loop'), { INTERLOCK_CONFIG_TIMEOUT: '1s' });
    expect(render.code).toBe(2);
    expect(await readdir(dir)).toEqual([]);
  });

  it('refuses a bad INTERLOCK_CONFIG_TIMEOUT', async () => {
    const r = await interlock(['validate', '--config', config('valid-ts')], {
      env: { INTERLOCK_CONFIG_TIMEOUT: 'soon' },
    });
    expectClean(r);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'interlock: INTERLOCK_CONFIG_TIMEOUT="soon" is not a duration: write e.g. 10s, 30s or 500ms\n',
    );
  });
});

describe('a custom rule whose route spec has a throwing getter', () => {
  it('gets a diagnostic for that service; the others render', async () => {
    const r = await renderInto(config('custom-rule-throwing-getter'));
    expectClean(r);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(
      'error: cluster local, service metrics-agent: rule getter returned a route spec that cannot be read: no hosts for agents; the service is left out',
    );
    const haproxy = await readFile(path.join(dir, 'haproxy.cfg'), 'utf8');
    expect(haproxy).toContain('shop-web');
    expect(haproxy).not.toContain('metrics-agent');
  });
});

describe('outputs that would overwrite what they must not', () => {
  it('validate refuses the config itself, /etc/passwd and a template, with config paths', async () => {
    const r = await interlock(['validate'], { cwd: fixture('config', 'output-targets') });
    expectClean(r);
    expect(r.code).toBe(1);
    const errors = r.stdout.split('\n').filter((l) => / error: /.test(l));
    expect(errors).toEqual([
      'interlock.config.yaml:7:11: error: outputs[0].file: interlock.config.yaml would overwrite the config file',
      'interlock.config.yaml:10:11: error: outputs[1].file: /etc/passwd lies in /etc, a system location interlock never writes to',
      'interlock.config.yaml:13:11: error: outputs[2].file: templates/custom.mustache would overwrite its own template',
    ]);
  });

  it('render refuses them too, and writes nothing', async () => {
    // A copy without /etc/passwd: this test must be harmless even when the check is missing.
    const text = (await readFile(fixture('config', 'output-targets', 'interlock.config.yaml'), 'utf8')).replace(
      '/etc/passwd',
      'out/nginx.conf',
    );
    await writeFile(path.join(dir, 'interlock.config.yaml'), text);
    await mkdir(path.join(dir, 'templates'));
    await copyFile(
      fixture('config', 'output-targets', 'templates', 'custom.mustache'),
      path.join(dir, 'templates', 'custom.mustache'),
    );
    const r = await interlock(['render', '--snapshot', DEMO], { cwd: dir });
    expectClean(r);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('error: outputs[0].file: interlock.config.yaml would overwrite the config file');
    expect(r.stderr).toContain('interlock: interlock.config.yaml is invalid; nothing rendered');
    expect(await readFile(path.join(dir, 'interlock.config.yaml'), 'utf8')).toBe(text);
    expect(existsSync(path.join(dir, 'out'))).toBe(false);
  });

  it('render refuses a system location', async () => {
    await writeFile(
      path.join(dir, 'interlock.config.yaml'),
      'clusters: { local: {} }\noutputs:\n  - kind: nginx\n    file: /proc/interlock-test/nginx.conf\n',
    );
    const r = await interlock(['render', '--snapshot', DEMO], { cwd: dir });
    expectClean(r);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      'error: outputs[0].file: /proc/interlock-test/nginx.conf lies in /proc, a system location interlock never writes to',
    );
  });

  describe('what is already at the output path', () => {
    beforeEach(async () => {
      await copyFile(
        fixture('config', 'output-in-tmp', 'interlock.config.yaml'),
        path.join(dir, 'interlock.config.yaml'),
      );
    });

    it('a directory (EISDIR): refused before anything is written', async () => {
      await mkdir(path.join(dir, 'out', 'haproxy.cfg'), { recursive: true });
      const r = await interlock(['render', '--snapshot', DEMO], { cwd: dir });
      expectClean(r);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('error: outputs[0].file: out/haproxy.cfg is a directory, not a regular file');
      expect((await readdir(path.join(dir, 'out'))).sort()).toEqual(['haproxy.cfg']);
    });

    it('a file where a folder should be (ENOTDIR)', async () => {
      await writeFile(path.join(dir, 'out'), 'not a folder');
      const r = await interlock(['render', '--snapshot', DEMO], { cwd: dir });
      expectClean(r);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(
        'error: outputs[0].file: out/haproxy.cfg cannot be created: out is a file, not a folder',
      );
      expect(await readFile(path.join(dir, 'out'), 'utf8')).toBe('not a folder');
    });

    it('a FIFO: refused at once instead of hanging forever', async () => {
      await mkdir(path.join(dir, 'out'));
      execFileSync('mkfifo', [path.join(dir, 'out', 'nginx.conf')]);
      const r = await interlock(['render', '--snapshot', DEMO], { cwd: dir });
      expectClean(r);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('error: outputs[1].file: out/nginx.conf is a FIFO, not a regular file');
      expect((await stat(path.join(dir, 'out', 'nginx.conf'))).isFIFO()).toBe(true);
      expect(await readdir(path.join(dir, 'out'))).toEqual(['nginx.conf']);
      const v = await interlock(['validate'], { cwd: dir });
      expect(v.code).toBe(1);
    });
  });

  describe('--out-dir', () => {
    const collision = fixture('config', 'out-dir-collision', 'interlock.config.yaml');
    const message = (out: string) =>
      `error: outputs[1].file: with --out-dir ${out}, outputs[0] and outputs[1] both write ${out}/proxy.cfg`;

    it('validate accepts the config as written, and refuses it for an --out-dir', async () => {
      expect((await interlock(['validate', '--config', collision])).code).toBe(0);
      const r = await interlock(['validate', '--config', collision, '--out-dir', dir]);
      expectClean(r);
      expect(r.code).toBe(1);
      expect(r.stdout).toContain(message(dir));
    });

    it('render refuses two outputs with one file name and writes nothing', async () => {
      const r = await renderInto(collision);
      expectClean(r);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(message(dir));
      expect(await readdir(dir)).toEqual([]);
    });

    it('watch refuses to start', async () => {
      const r = await interlock(['watch', '--config', collision, '--out-dir', dir]);
      expectClean(r);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`with --out-dir ${dir}, outputs[0] and outputs[1] both write ${dir}/proxy.cfg`);
      expect(await readdir(dir)).toEqual([]);
    });
  });
});
