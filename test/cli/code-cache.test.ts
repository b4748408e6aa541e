/**
 * The command line's compiled-code cache (src/cli/code-cache.ts): what it keeps, when it refuses
 * an entry, what it never caches, and where it never keeps anything. The CLI-level check (a second
 * run reads the entries the first wrote) is in startup-loads.test.ts.
 */

import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type CodeCache, DYNAMIC_IMPORT, installCodeCache, isEntry } from '../../src/cli/code-cache.ts';
import { entryName, prune } from '../../src/runtime/cache-dir.ts';
import { ROOT } from '../helpers/exec.ts';

const run = promisify(execFile);

let dir = '';
let cache: CodeCache | undefined;

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'il-code-cache-'));
});
afterEach(() => {
  cache?.uninstall();
  cache = undefined;
  rmSync(dir, { recursive: true, force: true });
});

/** Loads `file` through the cache in a new process (the built dist/cli/code-cache.js). */
async function child(folder: string, file: string): Promise<{ value: unknown; hits: number; misses: number }> {
  const script = [
    `import { installCodeCache } from ${JSON.stringify(pathToFileURL(path.join(ROOT, 'dist', 'cli', 'code-cache.js')).href)};`,
    "import { createRequire } from 'node:module';",
    `const cache = installCodeCache({ INTERLOCK_CODE_CACHE: ${JSON.stringify(folder)} });`,
    `const value = createRequire(import.meta.url)(${JSON.stringify(file)});`,
    'console.log(JSON.stringify({ value, hits: cache.hits, misses: cache.misses }));',
  ].join('\n');
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script]);
  return JSON.parse(stdout) as { value: unknown; hits: number; misses: number };
}

/** Requires `file` afresh (not from require's own module cache). */
function load(file: string): unknown {
  const require = createRequire(path.join(dir, 'x.cjs'));
  delete require.cache[file];
  return require(file);
}

function entries(folder: string): string[] {
  return readdirSync(folder).filter((n) => n.endsWith('.v8'));
}

describe('code cache', () => {
  it('compiles from source and keeps the entry; the next load starts from it', () => {
    const folder = path.join(dir, 'cache');
    cache = installCodeCache({ INTERLOCK_CODE_CACHE: folder });
    expect(cache?.dir).toBe(folder);
    const file = path.join(dir, 'm.cjs');
    writeFileSync(file, '#!/usr/bin/env node\nmodule.exports = { twice: (n) => n * 2, file: __filename };\n');
    expect((load(file) as { twice(n: number): number }).twice(21)).toBe(42);
    expect([cache?.hits, cache?.misses]).toEqual([0, 1]);
    expect(cache?.save()).toBe(1);
    expect(entries(folder)).toHaveLength(1);
    const again = load(file) as { twice(n: number): number; file: string };
    expect(again.twice(4)).toBe(8);
    expect(again.file).toBe(file);
    expect([cache?.hits, cache?.misses]).toEqual([1, 1]);
    expect(cache?.save()).toBe(0);
  });

  it('an edited file is compiled again, never run from the old entry', () => {
    const folder = path.join(dir, 'cache');
    cache = installCodeCache({ INTERLOCK_CODE_CACHE: folder });
    const file = path.join(dir, 'm.cjs');
    writeFileSync(file, 'module.exports = 1;\n');
    expect(load(file)).toBe(1);
    cache?.save();
    // Same length, other content, another modification time.
    writeFileSync(file, 'module.exports = 2;\n');
    utimesSync(file, new Date(), new Date(Date.now() + 5_000));
    expect(load(file)).toBe(2);
    expect([cache?.hits, cache?.misses]).toEqual([0, 2]);
  });

  it('an entry V8 refuses (damaged, or from another V8) means compiling from source', async () => {
    // In a fresh process each time: within one, V8 reuses what it compiled and never reads the entry.
    const folder = path.join(dir, 'cache');
    const file = path.join(dir, 'm.cjs');
    writeFileSync(file, 'module.exports = "fine";\n');
    const first = await child(folder, file);
    expect(first).toEqual({ value: 'fine', hits: 0, misses: 1 });
    expect(await child(folder, file)).toEqual({ value: 'fine', hits: 1, misses: 0 });
    const [entry] = entries(folder);
    writeFileSync(path.join(folder, entry as string), Buffer.from('not V8 code'));
    expect(await child(folder, file)).toEqual({ value: 'fine', hits: 0, misses: 1 });
    // ...and the entry was written anew.
    expect(await child(folder, file)).toEqual({ value: 'fine', hits: 1, misses: 0 });
  });

  it('a file that imports dynamically is compiled as Node does, and its import() works', async () => {
    const folder = path.join(dir, 'cache');
    cache = installCodeCache({ INTERLOCK_CODE_CACHE: folder });
    const file = path.join(dir, 'dyn.cjs');
    writeFileSync(file, "module.exports = () => import('node:os');\n");
    const os2 = await (load(file) as () => Promise<typeof os>)();
    expect(typeof os2.cpus).toBe('function');
    expect([cache?.hits, cache?.misses]).toEqual([0, 0]);
    expect(cache?.save()).toBe(0);
  });

  it('tells a dynamic import from a method or a message that only look like one', () => {
    expect(DYNAMIC_IMPORT.test("x = await import('yaml')")).toBe(true);
    expect(DYNAMIC_IMPORT.test('f(import (name))')).toBe(true);
    expect(DYNAMIC_IMPORT.test('async\nimport(x)')).toBe(true);
    expect(DYNAMIC_IMPORT.test('jiti.import(file, { default: true })')).toBe(false);
    expect(DYNAMIC_IMPORT.test('const o = { async import(id, opts) { return id } }')).toBe(false);
    expect(DYNAMIC_IMPORT.test('"a trailing comma is not allowed in import()"')).toBe(false);
    expect(DYNAMIC_IMPORT.test('reimport(x); $import(y)')).toBe(false);
  });

  it('no cache when turned off, or in a folder another user could write to', () => {
    expect(installCodeCache({ INTERLOCK_CODE_CACHE: 'off' })).toBeUndefined();
    const open = path.join(dir, 'open');
    mkdirSync(open, { mode: 0o777 });
    chmodSync(open, 0o777);
    expect(installCodeCache({ INTERLOCK_CODE_CACHE: open })).toBeUndefined();
    // The default: under the user's cache folder.
    cache = installCodeCache({ HOME: dir });
    expect(cache?.dir).toBe(path.join(dir, '.cache', 'interlock', 'code'));
    expect(statSync(cache?.dir as string).mode & 0o777).toBe(0o700);
  });

  it('keeps the most recently written entries', () => {
    const folder = path.join(dir, 'many');
    mkdirSync(folder);
    for (let i = 0; i < 6; i++) {
      const f = path.join(folder, `${entryName(String(i))}.v8`);
      writeFileSync(f, '');
      utimesSync(f, new Date(), new Date(Date.now() - (10 - i) * 60_000));
    }
    writeFileSync(path.join(folder, 'not-ours.txt'), '');
    prune(folder, 4, isEntry);
    expect(readdirSync(folder)).toContain('not-ours.txt');
    const kept = entries(folder).sort();
    expect(kept).toEqual(['2', '3', '4', '5'].map((i) => `${entryName(i)}.v8`).sort());
  });

  it('names entries with 32 hex digits, differently for different keys', () => {
    const names = new Set(['a', 'b', '/x/y.cjs\u00001\u00002', '/x/y.cjs\u00001\u00003'].map(entryName));
    expect(names.size).toBe(4);
    for (const n of names) expect(n).toMatch(/^[0-9a-f]{32}$/);
  });
});
