/**
 * Start-up (issue 12): a command loads only what it uses, and a `.ts` config is not transpiled
 * twice for the same content. Checked by what the process loads (an ESM loader hook listing every
 * module) and by jiti's own debug lines, never by timing (the figures are `npm run bench` rows).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMMANDS } from '../../src/cli/commands.ts';
import type { Io } from '../../src/cli/io.ts';
import { BIN, type ExecResult, ROOT } from '../helpers/exec.ts';

let dir = '';
let register = '';

function run(
  nodeArgs: readonly string[],
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, BIN, ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
    });
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * The modules a loaded file holds: a chunk of the command line's bundle (dist/cli-bundle/, see
 * rolldown.config.mjs) holds the modules its source map lists (dist/NAME/*.js, node_modules/...),
 * any other file itself. A chunk is loaded whole, so each of them was loaded.
 */
function modulesOf(url: string): string[] {
  if (!url.startsWith('file://') || !/\/dist\/cli-bundle\/[^/]+\.c?js$/.test(url)) return [url];
  const file = fileURLToPath(url);
  // A chunk without a map only re-exports another chunk's (which is listed when it loads).
  if (!existsSync(`${file}.map`)) return [];
  const map = JSON.parse(readFileSync(`${file}.map`, 'utf8')) as { sources: string[] };
  return map.sources.map((s) => pathToFileURL(path.resolve(path.dirname(file), s)).href);
}

/**
 * The packages (node_modules/NAME) and interlock folders (dist/NAME) an `interlock ARGS` run
 * loads, and interlock's own modules (`files`, as dist/NAME/FILE.js without `dist/`).
 */
async function loads(args: readonly string[]): Promise<{ result: ExecResult; loaded: Set<string>; files: string[] }> {
  const result = await run(['--import', register], args);
  const loaded = new Set<string>();
  const files: string[] = [];
  for (const m of result.stderr.matchAll(/^LOADED (\S+)$/gm)) {
    for (const url of modulesOf(m[1] as string)) {
      const pkg = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1];
      if (pkg) loaded.add(pkg);
      const own = /\/dist\/(([^/]+)\/\S+)$/.exec(url);
      if (own && !pkg && own[2] !== 'cli-bundle') {
        loaded.add(`dist/${own[2]}`);
        files.push(own[1] as string);
      }
    }
  }
  return { result, loaded, files };
}

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'il-loads-'));
  // ESM modules through a loader hook, CommonJS ones (dockerode, ssh2, jiti) through Module._load.
  writeFileSync(
    path.join(dir, 'hooks.mjs'),
    "export async function load(url, context, next) { process.stderr.write('LOADED ' + url + '\\n'); return next(url, context); }\n",
  );
  writeFileSync(
    path.join(dir, 'register.mjs'),
    [
      "import { register, createRequire } from 'node:module';",
      `register(${JSON.stringify(pathToFileURL(path.join(dir, 'hooks.mjs')).href)});`,
      "const Module = createRequire(import.meta.url)('node:module');",
      'const load = Module._load;',
      'Module._load = function (request, parent, isMain) {',
      '  const loaded = load.apply(this, arguments);',
      "  try { const file = Module._resolveFilename(request, parent, isMain); if (file.startsWith('/')) process.stderr.write('LOADED file://' + file + '\\n'); } catch {}",
      '  return loaded;',
      '};',
    ].join('\n'),
  );
  register = pathToFileURL(path.join(dir, 'register.mjs')).href;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a command loads only what it uses', () => {
  it('--version loads no command, no argument parser, no schema, no Docker client, no config loader', async () => {
    const { result, loaded } = await loads(['--version']);
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    for (const heavy of [
      'zod',
      'dockerode',
      'ssh2',
      'jiti',
      'yaml',
      'mustache',
      'prom-client',
      'dist/cluster',
      'dist/watch',
      'dist/config',
      'dist/render',
    ]) {
      expect(loaded, heavy).not.toContain(heavy);
    }
  });

  it('--help still lists every command', async () => {
    const { result, loaded } = await loads(['--help']);
    expect(result.code).toBe(0);
    for (const name of Object.keys(COMMANDS)) expect(result.stdout).toContain(`interlock ${name}`);
    expect(loaded).not.toContain('zod');
  });

  it('validate and render --snapshot load neither the Docker client nor the watch daemon', async () => {
    for (const args of [
      ['validate', '-c', 'interlock.config.ts'],
      ['render', '-c', 'interlock.config.ts', '--snapshot', 'examples/swarm-demo.snapshot.json', '--dry-run'],
    ]) {
      const { result, loaded, files } = await loads(args);
      expect(result.code, result.stderr.replace(/^LOADED .*\n/gm, '')).toBe(0);
      for (const heavy of ['dockerode', 'ssh2', 'prom-client', 'dist/watch']) {
        expect(loaded, `${args[0]}: ${heavy}`).not.toContain(heavy);
      }
      // --snapshot: no Docker connection code either (nor the http, https and tls modules it imports).
      for (const file of ['cluster/connect.js', 'cluster/read.js'])
        expect(files, `${args[0]}: ${file}`).not.toContain(file);
    }
  });

  it('validate without --snapshot loads no render, apply, snapshot-reading or Docker-connection code', async () => {
    const { result, loaded, files } = await loads(['validate', '-c', 'interlock.config.ts']);
    expect(result.code, result.stderr.replace(/^LOADED .*\n/gm, '')).toBe(0);
    expect(files, 'what validate needs').toContain('config/schema.js');
    // tldts (the Public Suffix List) only for a wildcard host, which this config has none of.
    for (const heavy of ['dist/apply', 'dockerode', 'ssh2', 'tldts']) expect(loaded, heavy).not.toContain(heavy);
    for (const file of [
      'cli/render.js',
      'cluster/live.js',
      'cluster/connect.js',
      'cluster/sources.js',
      'pipeline.js',
    ]) {
      expect(files, file).not.toContain(file);
    }
  });

  it('a command given after an option value that names another command still runs', async () => {
    const { result } = await loads(['-c', 'interlock.config.ts', 'validate']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('valid');
  });

  it('yargs, inlined in the bundle, still speaks the user’s language (its locales/ folder)', async () => {
    const german = await run([], ['--bogus-option'], { LANG: 'de_DE.UTF-8' });
    expect(german.stderr).toContain('Unbekannte Argumente: bogus-option');
    const english = await run([], ['--bogus-option'], { LANG: 'C' });
    expect(english.stderr).toContain('Unknown arguments: bogus-option');
  });

  it('the description --help lists is the command’s own', async () => {
    const io = {} as Io;
    for (const [name, entry] of Object.entries(COMMANDS)) {
      expect((await entry.load(io)).describe, name).toBe(entry.describe);
    }
  });
});

describe('the command line’s compiled code is kept (src/cli/code-cache.ts)', () => {
  it('the first run keeps what it compiled; the next run of the same code writes nothing new', async () => {
    const folder = path.join(dir, 'code-cache');
    const env = { INTERLOCK_CODE_CACHE: folder };
    const args = [
      'render',
      '-c',
      'interlock.config.ts',
      '--snapshot',
      'examples/swarm-demo.snapshot.json',
      '--dry-run',
    ];
    const first = await run([], args, env);
    expect(first.code, first.stderr).toBe(0);
    const kept = readdirSync(folder).filter((n) => n.endsWith('.v8'));
    // main, yargs, the schema, the render code, ... and jiti (CommonJS, no dynamic import).
    expect(kept.length).toBeGreaterThanOrEqual(10);
    const written = new Map(kept.map((n) => [n, statSync(path.join(folder, n)).mtimeMs]));
    const second = await run([], args, env);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toBe(first.stdout);
    const after = readdirSync(folder).filter((n) => n.endsWith('.v8'));
    expect(after.sort()).toEqual([...written.keys()].sort());
    for (const n of after) expect(statSync(path.join(folder, n)).mtimeMs, n).toBe(written.get(n));
  });

  it('INTERLOCK_CODE_CACHE=off keeps nothing', async () => {
    const home = mkdtempSync(path.join(dir, 'home-'));
    const result = await run([], ['--help'], { INTERLOCK_CODE_CACHE: 'off', HOME: home });
    expect(result.code).toBe(0);
    expect(existsSync(path.join(home, '.cache', 'interlock', 'code'))).toBe(false);
  });
});

const transpiled = (r: ExecResult) => /\[cache\] \S*\[miss\]\S* \S*interlock\.config\.ts/.test(r.stdout + r.stderr);
const hit = (r: ExecResult) => /\[cache\] \S*\[hit\]\S* \S*interlock\.config\.ts/.test(r.stdout + r.stderr);

/** Validates `config` twice: the first run transpiles it; returns the second run. */
async function validateTwice(config: string, env: Record<string, string>): Promise<ExecResult> {
  const first = await run([], ['validate', '-c', config], env);
  expect(first.code, first.stderr).toBe(0);
  expect(transpiled(first)).toBe(true);
  const second = await run([], ['validate', '-c', config], env);
  expect(second.code, second.stderr).toBe(0);
  return second;
}

describe('a .ts config is transpiled once per content', () => {
  it('the second run runs the kept code without jiti; an edit transpiles again', async () => {
    const config = path.join(dir, 'interlock.config.ts');
    const body = (port: number) =>
      `const port: number = ${port};\nexport default { clusters: { local: {} }, outputs: [{ kind: 'haproxy', file: 'out/haproxy.cfg', http: { address: '127.0.0.1', port } }] };\n`;
    writeFileSync(config, body(8080));
    const env = { JITI_DEBUG: '1', XDG_CACHE_HOME: path.join(dir, 'cache') };
    const second = await validateTwice(config, env);
    expect(second.stdout + second.stderr).not.toContain('[jiti]');
    writeFileSync(config, body(8081));
    const edited = await run([], ['validate', '-c', config], env);
    expect(edited.code, edited.stderr).toBe(0);
    expect(transpiled(edited)).toBe(true);
  });

  it('a config that imports its own files reads them back from jiti’s cache', async () => {
    const sub = mkdtempSync(path.join(dir, 'parts-'));
    const config = path.join(sub, 'interlock.config.ts');
    writeFileSync(path.join(sub, 'port.ts'), 'export const port: number = 8080;\n');
    writeFileSync(
      config,
      "import { port } from './port.ts';\nexport default { clusters: { local: {} }, outputs: [{ kind: 'haproxy', file: 'out/haproxy.cfg', http: { address: '127.0.0.1', port } }] };\n",
    );
    const second = await validateTwice(config, { JITI_DEBUG: '1', XDG_CACHE_HOME: path.join(dir, 'cache') });
    expect(transpiled(second)).toBe(false);
    expect(hit(second)).toBe(true);
  });

  it('INTERLOCK_CONFIG_CACHE=off transpiles every time', async () => {
    const config = path.join(dir, 'interlock.config.ts');
    const env = { JITI_DEBUG: '1', XDG_CACHE_HOME: path.join(dir, 'cache'), INTERLOCK_CONFIG_CACHE: 'off' };
    const r = await run([], ['validate', '-c', config], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toMatch(/fs-cache: \S*false/);
  });
});
