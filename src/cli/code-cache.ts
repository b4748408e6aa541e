/**
 * A compiled-code cache for the command line (start-up, issue 12).
 *
 * Node 20 compiles every module from source on every run (its own compile cache came with Node
 * 22), and compiling the command line's code (interlock's own, zod, yargs) was ~40 ms of each
 * `render` and `validate`. The command line is therefore bundled as CommonJS (rolldown.config.mjs)
 * and loaded through this hook, which compiles each CommonJS file with V8's code cache: the first
 * run compiles and, at exit, keeps what V8 compiled (including the functions that ran); later
 * runs start from it.
 *
 * - An entry is named by the file's path, size and modification time (as Python names its
 *   compiled files), so an edited or upgraded file never meets a stale entry; V8 itself also
 *   checks the source's length, and refuses data from another V8 version or other flags. The
 *   file is then compiled from source and the entry rewritten. (Not a hash of the content:
 *   loading node:crypto alone was 5 ms of each run.)
 * - The folder is interlock's private cache (`$INTERLOCK_CODE_CACHE`, a folder or `off`, else
 *   `~/.cache/interlock/code`; see cache-dir.ts): compiled code runs as the user, so a folder
 *   another user may write to is not used.
 * - What is not cached, and compiles as Node would: a file that imports dynamically (`import()`
 *   from a script needs Node's experimental loader hook, which prints a warning), and anything
 *   Node hands over as an ES module.
 * - Entries are written whole or not at all (`writeEntry` in cache-dir.ts).
 * - Any failure to read or write the cache only means compiling from source, as before.
 */
import { readFileSync, statSync } from 'node:fs';
import Module from 'node:module';
import path from 'node:path';
import { Script } from 'node:vm';
import { entryName, privateCacheDir, prune, writeEntry } from '../runtime/cache-dir.ts';

export const CODE_CACHE_ENV = 'INTERLOCK_CODE_CACHE';

/**
 * What may be a dynamic import(): `import(` not after `.` or a name (`jiti.import(`), not an async
 * method named import (`async import(a, b) {`), not `import()` with nothing inside (a message).
 * Also in a string or a comment: such a file is just not cached. rolldown.config.mjs fails the
 * build when a chunk of the command line's bundle has one.
 */
export const DYNAMIC_IMPORT = /(?<![.\w$])(?<!async[ \t]+)import\s*\((?!\s*\))/;

/** Entries kept: beyond this many, the least recently written go (each upgrade adds a set). */
export const MAX_ENTRIES = 400;

/** The folder's entries: compiled code, and parsed templates (template-cache.ts). */
export const isEntry = (name: string) => name.endsWith('.v8') || (name.startsWith('tpl-') && name.endsWith('.json'));

interface Compiled {
  script: Script;
  entry: string;
}

export interface CodeCache {
  dir: string;
  /** Files compiled from the cache / from source in this process. */
  readonly hits: number;
  readonly misses: number;
  /** Writes the entries this process compiled from source; returns how many were written. */
  save(): number;
  /** Puts Node's own compile back (tests). */
  uninstall(): void;
}

type CompileFn = (this: Module, content: string, filename: string, format?: string) => unknown;
interface ModuleInternals {
  prototype: { _compile: CompileFn; require(id: string): unknown };
  wrap(script: string): string;
  _resolveFilename(request: string, parent: Module, isMain: boolean, options?: unknown): string;
  _extensions: unknown;
  _cache: unknown;
}

/**
 * Installs the hook for every CommonJS file loaded from now on; undefined when there is no usable
 * cache folder. Entries are written when the process exits (then V8 has compiled what ran).
 */
export function installCodeCache(env: Readonly<Record<string, string | undefined>>): CodeCache | undefined {
  const dir = privateCacheDir(env, CODE_CACHE_ENV, 'code');
  if (dir === undefined) return undefined;
  const M = Module as unknown as ModuleInternals;
  const original = M.prototype._compile;
  const fresh: Compiled[] = [];
  let hits = 0;
  let misses = 0;

  M.prototype._compile = function compileCached(this: Module, content: string, filename: string, format?: string) {
    if ((format !== undefined && format !== 'commonjs') || DYNAMIC_IMPORT.test(content)) {
      return original.call(this, content, filename, format);
    }
    let entry: string;
    let cachedData: Buffer | undefined;
    try {
      const s = statSync(filename, { bigint: true });
      entry = path.join(dir, `${entryName(`${filename}\0${s.size}\0${s.mtimeNs}\0${s.ino}`)}.v8`);
    } catch {
      return original.call(this, content, filename, format);
    }
    try {
      cachedData = readFileSync(entry);
    } catch {
      // not cached yet
    }
    // The wrapper Node puts around a CommonJS file; a `#!` line is kept as a comment, so lines stay.
    const source = M.wrap(content.startsWith('#!') ? `//${content}` : content);
    const script = new Script(source, { filename, ...(cachedData ? { cachedData } : {}) });
    if (cachedData && !script.cachedDataRejected) hits++;
    else {
      misses++;
      fresh.push({ script, entry });
    }
    const wrapper = script.runInThisContext({ displayErrors: true }) as (...args: unknown[]) => unknown;
    return wrapper.call(this.exports, this.exports, requireFor(M, this), this, filename, path.dirname(filename));
  };

  const cache: CodeCache = {
    dir,
    get hits() {
      return hits;
    },
    get misses() {
      return misses;
    },
    save() {
      let written = 0;
      // An entry not written means the next run compiles that file from source again.
      for (const { script, entry } of fresh.splice(0)) if (writeEntry(entry, script.createCachedData())) written++;
      if (written > 0) prune(dir, MAX_ENTRIES, isEntry);
      return written;
    },
    uninstall() {
      M.prototype._compile = original;
      process.removeListener('exit', onExit);
    },
  };
  const onExit = () => cache.save();
  process.once('exit', onExit);
  return cache;
}

/** The `require` a CommonJS file sees, as Node builds it. */
function requireFor(M: ModuleInternals, mod: Module): NodeJS.Require {
  const req = ((id: string) => (mod as unknown as ModuleInternals['prototype']).require(id)) as NodeJS.Require;
  const resolve = ((request: string, options?: unknown) =>
    M._resolveFilename(request, mod, false, options)) as NodeJS.RequireResolve;
  resolve.paths = (request: string) =>
    (M as unknown as { _resolveLookupPaths(r: string, m: Module): string[] | null })._resolveLookupPaths(request, mod);
  req.resolve = resolve;
  req.main = process.mainModule;
  req.extensions = M._extensions as NodeJS.Require['extensions'];
  req.cache = M._cache as NodeJS.Require['cache'];
  return req;
}
