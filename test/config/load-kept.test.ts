/**
 * A `.ts` config that imports only `interlock` and Node's modules is kept transpiled and, on the
 * next load, evaluated without jiti (src/config/load.ts, start-up). Both ways must give the same
 * config, the same errors and the same deadline; anything with other imports always goes through
 * jiti, so an edit of an imported file is never missed.
 */
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type LoadedConfig, loadConfig, MAX_CONFIG_ENTRIES, selfContained } from '../../src/config/load.ts';
import { ROOT } from '../helpers/exec.ts';

let dir = '';
let cache = '';
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'il-kept-'));
  cache = path.join(dir, 'cache');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function load(file: string, env: Record<string, string> = {}): Promise<LoadedConfig> {
  return loadConfig(file, { cwd: dir, command: 'render', env: { INTERLOCK_CONFIG_CACHE: cache, ...env } });
}

/** A config as the fixtures write it, copied into the test's folder. */
function fixture(name: string): string {
  const to = path.join(dir, name);
  cpSync(path.join(ROOT, 'test', 'fixtures', 'config', name), to, { recursive: true });
  return path.join(to, 'interlock.config.ts');
}

/** Runs `f` with `process.env[name]` set (what the config code itself reads). */
async function withEnv<T>(name: string, f: () => Promise<T>): Promise<T> {
  process.env[name] = '1';
  try {
    return await f();
  } finally {
    delete process.env[name];
  }
}

const kept = () => readdirSync(cache).filter((n) => n.startsWith('compiled-'));

/** What a load gave, without what differs by design (the loader). */
function outcome(l: LoadedConfig) {
  return { raw: JSON.stringify(l.raw), config: JSON.stringify(l.config), diagnostics: l.diagnostics };
}

describe('a kept transpiled config', () => {
  it('loads the same config as jiti, and the second load needs no jiti', async () => {
    const file = path.join(ROOT, 'interlock.config.ts');
    const first = await load(file);
    expect(first.loader).toBe('jiti');
    expect(kept()).toHaveLength(1);
    const second = await load(file);
    expect(second.loader).toBe('kept');
    expect(outcome(second)).toEqual(outcome(first));
    expect(second.config?.outputs.length).toBe(4);
  });

  it('the function form gets the command and environment on both ways', async () => {
    const file = fixture('function-form');
    const first = await load(file, { NODE_ADDRESS: '10.0.0.9' });
    const second = await load(file, { NODE_ADDRESS: '10.0.0.7' });
    expect([first.loader, second.loader]).toEqual(['jiti', 'kept']);
    expect(second.config?.clusters.local?.nodeAddress).toBe('10.0.0.7');
    expect(JSON.stringify(second.config?.outputs)).toContain('out/render.cfg');
  });

  it('an edit is loaded through jiti again (the entry is named by the content)', async () => {
    const file = path.join(dir, 'interlock.config.ts');
    const body = (port: number) =>
      `import { defineConfig } from 'interlock';\nconst port: number = ${port};\nexport default defineConfig({ clusters: { local: {} }, outputs: [{ kind: 'haproxy', file: 'out/h.cfg', http: { address: '127.0.0.1', port } }] });\n`;
    writeFileSync(file, body(8080));
    await load(file);
    expect((await load(file)).loader).toBe('kept');
    writeFileSync(file, body(8090));
    const edited = await load(file);
    expect(edited.loader).toBe('jiti');
    expect(JSON.stringify(edited.config)).toContain('8090');
    expect((await load(file)).loader).toBe('kept');
  });

  it('errors read the same either way: a throwing getter, a throw that depends on the environment', async () => {
    const getter = fixture('ts-throwing-getter');
    const a = await load(getter).catch((e: Error) => e.message);
    const b = await load(getter).catch((e: Error) => e.message);
    expect(a).toBe(b);
    expect(String(a)).toContain('reading the exported config threw: outputs are not ready');
    const file = path.join(dir, 'interlock.config.ts');
    writeFileSync(
      file,
      "import process from 'node:process';\nif (process.env.BOOM) throw new Error('boom');\nexport default { clusters: { local: {} }, outputs: [{ kind: 'log' }] };\n",
    );
    expect((await load(file)).loader).toBe('jiti');
    const { viaKept, viaJiti } = await withEnv('BOOM', async () => {
      const viaKept = await load(file).catch((e: Error) => e.message);
      rmSync(cache, { recursive: true });
      const viaJiti = await load(file).catch((e: Error) => e.message);
      return { viaKept, viaJiti };
    });
    expect(viaKept).toBe(viaJiti);
    expect(String(viaKept)).toContain('the config failed to load: boom');
  });

  it('an endless loop in kept code is stopped by the same deadline', async () => {
    const file = path.join(dir, 'interlock.config.ts');
    writeFileSync(
      file,
      "import process from 'node:process';\nlet n = 0;\nwhile (process.env.SPIN && n >= 0) n = (n + 1) % 1000;\nexport default { clusters: { local: {} }, outputs: [{ kind: 'log' }] };\n",
    );
    expect((await load(file)).loader).toBe('jiti');
    const message = await withEnv('SPIN', () =>
      load(file, { INTERLOCK_CONFIG_TIMEOUT: '300ms' }).catch((e: Error) => e.message),
    );
    expect(String(message)).toContain('did not finish loading within 300ms (still running: an endless loop?)');
  });

  it('a config that imports its own files, or uses top-level await, always loads through jiti', async () => {
    const file = path.join(dir, 'interlock.config.ts');
    const part = path.join(dir, 'port.ts');
    writeFileSync(part, 'export const port = 8080;\n');
    writeFileSync(
      file,
      "import { port } from './port.ts';\nexport default { clusters: { local: {} }, outputs: [{ kind: 'haproxy', file: 'out/h.cfg', http: { address: '127.0.0.1', port } }] };\n",
    );
    await load(file);
    writeFileSync(part, 'export const port = 8091;\n');
    const second = await load(file);
    expect(second.loader).toBe('jiti');
    expect(JSON.stringify(second.config)).toContain('8091');
    const awaiting = path.join(dir, 'awaiting.config.ts');
    writeFileSync(
      awaiting,
      "const port = await Promise.resolve(8080);\nexport default { clusters: { local: {} }, outputs: [{ kind: 'haproxy', file: 'out/h.cfg', http: { address: '127.0.0.1', port } }] };\n",
    );
    expect((await load(awaiting)).config).toBeDefined();
    expect((await load(awaiting)).loader).toBe('jiti');
    expect(kept()).toHaveLength(0);
  });

  it('the folder keeps the newest entries, not every content ever loaded', async () => {
    mkdirSync(cache, { recursive: true });
    const old = Date.now() / 1000 - 3600;
    for (let i = 0; i < MAX_CONFIG_ENTRIES + 10; i++) {
      const f = path.join(cache, `seen-${String(i).padStart(32, '0')}`);
      writeFileSync(f, '');
      utimesSync(f, old + i, old + i);
    }
    const file = path.join(ROOT, 'interlock.config.ts');
    expect((await load(file)).loader).toBe('jiti');
    const names = readdirSync(cache);
    expect(names.length).toBeLessThanOrEqual(MAX_CONFIG_ENTRIES);
    expect(names).not.toContain(`seen-${'0'.repeat(32)}`);
    expect(kept()).toHaveLength(1);
    expect((await load(file)).loader).toBe('kept');
  });

  it('INTERLOCK_CONFIG_CACHE=off keeps nothing and always uses jiti', async () => {
    const file = path.join(ROOT, 'interlock.config.ts');
    const env = { INTERLOCK_CONFIG_CACHE: 'off' };
    const l = (await loadConfig(file, { cwd: dir, command: 'render', env })).loader;
    expect([l, (await loadConfig(file, { cwd: dir, command: 'render', env })).loader]).toEqual(['jiti', 'jiti']);
  });

  it('tells self-contained transpiled code from code that needs jiti', () => {
    const head = '"use strict";var _interlock = require("interlock");';
    expect(selfContained(`${head}var _os = require("node:os");var _fs = require('fs');`)).toBe(true);
    expect(selfContained(`${head}var _p = require("./port.ts");`)).toBe(false);
    expect(selfContained(`${head}var _y = require("yaml");`)).toBe(false);
    expect(selfContained(`${head}var r = require;r("node:os");`)).toBe(false);
    expect(selfContained(`${head}var m = require(name);`)).toBe(false);
    expect(selfContained(`${head}jitiImport("node:os");`)).toBe(false);
  });
});
