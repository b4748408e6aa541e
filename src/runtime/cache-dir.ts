/**
 * interlock's private cache folders (the transpiled `.ts` config, the command line's compiled
 * code). Only node: modules: the command line's code cache uses this before anything else loads.
 */
import {
  accessSync,
  constants as fsConstants,
  mkdirSync,
  readdirSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * The folder `name` under interlock's cache: `$<envName>` (a folder, or `off`), else
 * `$XDG_CACHE_HOME/interlock/<name>`, else `~/.cache/interlock/<name>`, else a per-user folder
 * under the temp dir. Undefined (no cache) when it is turned off, cannot be created or written,
 * or another user owns it or may write to it: what the caches hold is code that runs as ours, so
 * a planted entry must not be possible.
 */
export function privateCacheDir(
  env: Readonly<Record<string, string | undefined>>,
  envName: string,
  name: string,
): string | undefined {
  const set = (key: string) => {
    const v = env[key]?.trim();
    return v === undefined || v === '' ? undefined : v;
  };
  const explicit = set(envName);
  if (explicit !== undefined && /^(off|0|false|no)$/i.test(explicit)) return undefined;
  const uid = process.getuid?.() ?? 0;
  const dir =
    explicit ??
    (set('XDG_CACHE_HOME') ? path.join(set('XDG_CACHE_HOME') as string, 'interlock', name) : undefined) ??
    (set('HOME') ? path.join(set('HOME') as string, '.cache', 'interlock', name) : undefined) ??
    path.join(os.tmpdir(), `interlock-${uid}`, name);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    accessSync(dir, fsConstants.W_OK);
    const s = statSync(dir);
    if (process.getuid && (s.uid !== uid || (s.mode & 0o022) !== 0)) return undefined;
    return dir;
  } catch {
    return undefined;
  }
}

/**
 * 128 bits of FNV-1a (four 32-bit lanes with different seeds), as 32 hex digits: names cache
 * entries without node:crypto, whose loading alone was 5 ms of each run (start-up, issue 12).
 */
export function entryName(key: string): string {
  let out = '';
  for (const seed of [0x811c9dc5, 0x050c5d1f, 0x1b873593, 0x7feb352d]) {
    let h = seed;
    for (let i = 0; i < key.length; i++) {
      h ^= key.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
    out += (h >>> 0).toString(16).padStart(8, '0');
  }
  return out;
}

/**
 * Writes a cache entry whole or not at all (a temp file, then a rename), readable by the user
 * only: a run that stops while writing, or two that write at once, leave no half entry behind
 * (`prune` removes a stale temp file). False when it could not be written: the entry is then
 * made again by a later run.
 */
export function writeEntry(file: string, data: string | NodeJS.ArrayBufferView): boolean {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, data, { mode: 0o600 });
    renameSync(tmp, file);
    return true;
  } catch {
    return false;
  }
}

/**
 * Keeps the `keep` most recently written entries of a cache folder (`isEntry` names them), and
 * removes what interrupted writes left (`*.tmp` older than a minute). Each new config content or
 * upgrade adds entries; without this the folder would only grow.
 */
export function prune(dir: string, keep: number, isEntry: (name: string) => boolean): void {
  try {
    const names = readdirSync(dir);
    for (const n of names) if (n.endsWith('.tmp') && isStale(path.join(dir, n))) unlinkSync(path.join(dir, n));
    const entries = names.filter((n) => !n.endsWith('.tmp') && isEntry(n));
    if (entries.length <= keep) return;
    const dated = entries.map((n) => ({ n, t: statSync(path.join(dir, n)).mtimeMs })).sort((a, b) => b.t - a.t);
    for (const { n } of dated.slice(keep)) unlinkSync(path.join(dir, n));
  } catch {
    // A cache that cannot be tidied up now is tidied up by a later run.
  }
}

function isStale(file: string): boolean {
  try {
    return Date.now() - statSync(file).mtimeMs > 60_000;
  } catch {
    return false;
  }
}
