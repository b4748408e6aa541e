import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixture, interlock, ROOT } from '../helpers/exec.ts';

const config = (name: string) => fixture('config', name);

describe('interlock validate', () => {
  it('accepts the example config in the repo root', async () => {
    const r = await interlock(['validate']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(
      /^interlock\.config\.ts: valid \(1 cluster\(s\), 2 rule\(s\), 4 output\(s\); 0 errors, 0 warnings\)\n$/,
    );
    expect(r.code).toBe(0);
  });

  it.each([
    ['valid-ts', 'interlock.config.ts'],
    ['function-form', 'interlock.config.ts'],
    ['valid-yaml', 'interlock.config.yaml'],
    ['valid-json', 'interlock.config.json'],
  ])('finds and accepts %s', async (dir, file) => {
    const r = await interlock(['validate'], { cwd: config(dir) });
    expect(r.stdout).toContain(`${file}: valid`);
    expect(r.code).toBe(0);
  });

  it('reports three YAML mistakes with file:line:col and config path, exit 1', async () => {
    const r = await interlock(['validate'], { cwd: config('yaml-three-mistakes') });
    expect(r.code).toBe(1);
    const errors = r.stdout.split('\n').filter((l) => / error: /.test(l));
    expect(errors).toEqual([
      'interlock.config.yaml:3:5: error: clusters.local.nodeAdress: unknown key "nodeAdress"',
      'interlock.config.yaml:8:13: error: outputs[0].http.port: a port is between 1 and 65535 (got number 70000)',
      'interlock.config.yaml:9:11: error: outputs[1].kind: unknown kind "ngnix"',
    ]);
    expect(r.stdout).toContain('fix: did you mean "nodeAddress"?');
    expect(r.stdout).toContain('fix: did you mean "nginx"?');
  });

  it('prints GitHub annotations, one per problem', async () => {
    const r = await interlock(['validate', '--format', 'github'], { cwd: config('yaml-three-mistakes') });
    expect(r.code).toBe(1);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toBe(
      '::error file=interlock.config.yaml,line=3,col=5,title=interlock schema::clusters.local.nodeAdress: unknown key "nodeAdress". Fix: did you mean "nodeAddress"?',
    );
    for (const line of lines)
      expect(line).toMatch(/^::error file=interlock\.config\.yaml,line=\d+,col=\d+,title=[^:]+::/);
  });

  it('prints one JSON document', async () => {
    const r = await interlock([
      'validate',
      '--format',
      'json',
      '--config',
      fixture('config', 'json-mistakes', 'interlock.config.json'),
    ]);
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout) as { ok: boolean; errors: number; diagnostics: Array<Record<string, unknown>> };
    expect(doc.ok).toBe(false);
    expect(doc.errors).toBe(2);
    expect(doc.diagnostics.map((d) => [d.path, d.line, d.column])).toEqual([
      ['clusters.local.timeout', 2, 39],
      ['outputs[0].protocol', 4, 66],
    ]);
  });

  it('reports every semantic mistake in one run', async () => {
    const r = await interlock(['validate', '--format', 'json'], { cwd: config('semantic-mistakes') });
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout) as { diagnostics: Array<{ code: string; severity: string; path: string }> };
    const codes = doc.diagnostics.map((d) => `${d.severity} ${d.code} ${d.path}`);
    expect(codes).toEqual(
      expect.arrayContaining([
        'error duplicate-endpoint clusters.b.endpoint',
        'error missing-file clusters.c.endpoint.tls.ca',
        'warning tls-no-verify clusters.c.endpoint.tls.verify',
        'error missing-template outputs[0].template',
        'error unknown-cluster outputs[0].clusters[1]',
        'error duplicate-file outputs[1].file',
        'error interval-too-short outputs[2].interval',
        'error debounce-order watch.debounce',
      ]),
    );
  });

  it('rejects a misspelt key in a .ts config', async () => {
    const r = await interlock(['validate'], { cwd: config('ts-misspelt-key') });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('interlock.config.ts: error: outputs[0].relaod: unknown key "relaod"');
    expect(r.stdout).toContain('did you mean "reload"?');
  });

  it('tsc rejects the same misspelt key', () => {
    const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const r = spawnSync(
      process.execPath,
      [
        tsc,
        '--noEmit',
        '--strict',
        '--skipLibCheck',
        '--module',
        'nodenext',
        '--moduleResolution',
        'nodenext',
        'interlock.config.ts',
      ],
      { cwd: config('ts-misspelt-key'), encoding: 'utf8' },
    );
    expect(r.status).not.toBe(0);
    expect(r.stdout).toContain("'relaod' does not exist");
  });

  it('exits 2 with file:line:col on a TypeScript syntax error', async () => {
    const r = await interlock(['validate'], { cwd: config('ts-syntax-error') });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('interlock: interlock.config.ts:6:1: syntax error: Unexpected token, expected ","\n');
  });

  it('exits 2 on a YAML syntax error', async () => {
    const r = await interlock(['validate'], { cwd: config('yaml-syntax-error') });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^interlock: interlock\.config\.yaml:4:11: YAML syntax error: /);
  });

  it('annotates a syntax error for GitHub too', async () => {
    const r = await interlock(['validate', '--format', 'github'], { cwd: config('ts-syntax-error') });
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(
      /^::error file=interlock\.config\.ts,line=6,col=1,title=interlock ConfigLoadError::interlock\.config\.ts:6:1: syntax error/,
    );
  });

  it('exits 2 when there is no config, naming what it looked for', async () => {
    const r = await interlock(['validate'], { cwd: config('no-config') });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no config file found');
    expect(r.stderr).toContain('interlock.config.ts, interlock.config.mts');
  });

  it('exits 2 when --config names a missing file', async () => {
    const r = await interlock(['validate', '--config', 'nope.yaml']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^interlock: config .*nope\.yaml cannot be read: ENOENT/);
  });
});

describe('the command line', () => {
  it('prints help for every command', async () => {
    for (const cmd of ['validate', 'render', 'snapshot', 'watch']) {
      const r = await interlock([cmd, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`interlock ${cmd}`);
    }
    // Four process starts: under a loaded CI machine each can take several seconds.
  }, 90_000);

  it('prints its version', async () => {
    const r = await interlock(['--version']);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    expect(r.code).toBe(0);
  });

  it('exits 2 on an unknown command', async () => {
    const r = await interlock(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Unknown argument: frobnicate');
  });
});
