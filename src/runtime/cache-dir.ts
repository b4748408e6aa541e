/**
 * interlock's private cache folders (the transpiled `.ts` config, the command line's compiled
 * code). Only node: modules: the command line's code cache uses this before anything else loads.
 */
import { accessSync, constants as fsConstants, mkdirSync, statSync } from 'node:fs';
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
