/**
 * What is on disk at a path an output would write: the I/O half of the output-target checks in
 * check.ts (which stay pure and get this function passed in).
 */
import { lstatSync, realpathSync, type Stats, statSync } from 'node:fs';
import path from 'node:path';
import type { PathProbe } from './check.ts';

function kindOf(s: Stats): PathProbe['kind'] {
  if (s.isFile()) return 'file';
  if (s.isDirectory()) return 'directory';
  if (s.isFIFO()) return 'fifo';
  if (s.isSocket()) return 'socket';
  if (s.isBlockDevice() || s.isCharacterDevice()) return 'device';
  return 'other';
}

function tryStat(p: string): Stats | NodeJS.ErrnoException {
  try {
    return statSync(p);
  } catch (error) {
    return error as NodeJS.ErrnoException;
  }
}

/** Follows the symlinks of `p`'s existing folders (and of `p` itself, as `target`). Never throws. */
export function probePath(p: string): PathProbe {
  const absolute = path.resolve(p);
  // The nearest existing ancestor (or the path itself), following symlinks.
  let at = absolute;
  let found = tryStat(at);
  while (found instanceof Error) {
    const code = found.code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') return { location: absolute, kind: 'missing' };
    const parent = path.dirname(at);
    if (parent === at) return { location: absolute, kind: 'missing' };
    at = parent;
    found = tryStat(at);
  }
  try {
    if (at === absolute) {
      const location = path.join(realpathSync(path.dirname(absolute)), path.basename(absolute));
      const link = lstatSync(absolute).isSymbolicLink();
      return { location, kind: kindOf(found), ...(link ? { target: realpathSync(absolute) } : {}) };
    }
    const location = path.join(realpathSync(at), path.relative(at, absolute));
    if (!found.isDirectory()) return { location, kind: 'missing', notDirectory: at };
    return { location, kind: 'missing' };
  } catch {
    // Changed while we looked, or unreadable: the write will say what is wrong.
    return { location: absolute, kind: 'missing' };
  }
}
