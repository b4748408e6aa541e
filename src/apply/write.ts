/**
 * Writing rendered files: only when bytes changed, atomically (temp file + rename in the same
 * directory), and in place where rename cannot work: a single-file bind mount keeps the old inode
 * in the container (docker-gen #629), and rename onto a mount point fails with EBUSY.
 *
 * A replaced file keeps its mode and owner (the temp file gets them before the rename; writing in
 * place keeps the inode, so both stay anyway). A new file is 0644 whatever the umask: proxy
 * configs hold no secrets (certificates are named, not copied) and the proxy may read them as
 * another user. To restrict a file, chmod / chown it once; every later write keeps that. Only
 * root can give a file to another user: run as another user, interlock keeps the mode and the
 * group it can, and the replaced file becomes its own.
 *
 * The calls are synchronous, except fsync: each asynchronous call is a round trip through libuv's
 * thread pool (~60 µs of CPU against ~8 µs for a stat or a small read here, and an apply makes
 * dozens), while these local files are small and their reads and metadata calls do not wait on
 * the disk. fsync does, so it stays off the event loop.
 */
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  fchmodSync,
  fchownSync,
  fstatSync,
  fsync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { FileOutput } from '../config/schema.ts';
import { InterlockError } from '../errors.ts';
import { driverFor } from '../outputs/drivers.ts';

export type WriteResult = 'unchanged' | 'created' | 'replaced' | 'replaced-in-place';

/** Mode of a file interlock creates. */
export const NEW_FILE_MODE = 0o644;
/**
 * Mode of a file holding secrets (password hashes of basic auth): never more open than this.
 * Nginx workers read the htpasswd file on every request: give the output folder the workers'
 * group with the setgid bit (`chgrp www-data DIR && chmod g+s DIR`), and new files get that group.
 */
export const PRIVATE_FILE_MODE = 0o640;

/**
 * A map no config on disk names is removed only once it is this old: a proxy reload that is
 * still starting may have read the config before the switch and not yet the map it names, and a
 * second interlock writing the same output may be between its map and its config.
 */
export const MAP_GRACE_MS = 60_000;

const fsyncFd = promisify(fsync);

export async function readIfExists(file: string): Promise<string | undefined> {
  return readIfExistsSync(file);
}

function readIfExistsSync(file: string): string | undefined {
  // A FIFO (or device) put where an output goes after the checks would block a read forever.
  const kind = statSync(file, { throwIfNoEntry: false });
  if (kind === undefined) return undefined;
  if (!kind.isFile()) throw new InterlockError(`${file} is not a regular file; interlock only replaces files`);
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** True when `file` is itself a mount point (a single-file bind mount): its device differs from its directory's. */
function isMountPoint(file: string): boolean {
  try {
    const f = statSync(file, { throwIfNoEntry: false });
    const d = statSync(path.dirname(file), { throwIfNoEntry: false });
    return f !== undefined && d !== undefined && f.dev !== d.dev;
  } catch {
    return false;
  }
}

interface Ownership {
  mode: number;
  uid: number;
  gid: number;
}

function ownership(file: string): Ownership | undefined {
  try {
    const s = statSync(file, { throwIfNoEntry: false });
    return s && { mode: s.mode & 0o7777, uid: s.uid, gid: s.gid };
  } catch {
    return undefined;
  }
}

async function writeDurably(
  file: string,
  content: string,
  flags: string,
  keep?: Ownership,
  secret = false,
): Promise<void> {
  const fd = openSync(file, flags, secret ? PRIVATE_FILE_MODE : NEW_FILE_MODE);
  try {
    if (secret && !flags.includes('x')) fchmodSync(fd, (keep?.mode ?? PRIVATE_FILE_MODE) & PRIVATE_FILE_MODE);
    if (flags.includes('x')) {
      // A fresh temp file: give it the mode (and owner) of the file it replaces, else 0644 (not
      // the umask's choice); a secret one never more than 0640.
      const mode = keep?.mode ?? (secret ? PRIVATE_FILE_MODE : NEW_FILE_MODE);
      fchmodSync(fd, secret ? mode & PRIVATE_FILE_MODE : mode);
      if (keep) {
        const own = fstatSync(fd);
        if (own.uid !== keep.uid || own.gid !== keep.gid) {
          try {
            fchownSync(fd, keep.uid, keep.gid);
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code !== 'EPERM') throw error;
            // Not root: keep at least the group, when this user is in it.
            try {
              fchownSync(fd, own.uid, keep.gid);
            } catch {
              // not in that group either
            }
          }
        }
      }
    }
    writeFileSync(fd, content, 'utf8');
    await fsyncFd(fd);
  } finally {
    closeSync(fd);
  }
}

function tighten(file: string): void {
  const own = ownership(file);
  if (own && (own.mode & ~PRIVATE_FILE_MODE) !== 0) chmodSync(file, own.mode & PRIVATE_FILE_MODE);
}

/** `.<name>.<pid>.<12 hex>.tmp`: the pid tells a start-up clean-up whether its writer is gone. */
export function tempName(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

/**
 * Writes `content` to `file` atomically unless the file already holds it. `known`: the file's
 * content as the caller has just read it (`undefined`: absent), so a 2.4 MB config is not read
 * again; without it the file is read here.
 */
export async function writeIfChanged(
  file: string,
  content: string,
  secret = false,
  known?: { current: string | undefined },
): Promise<WriteResult> {
  const current = known ? known.current : readIfExistsSync(file);
  if (current === content) {
    // A file that now holds secrets is closed up even when its bytes did not change.
    if (secret) tighten(file);
    return 'unchanged';
  }
  if (current === undefined) mkdirSync(path.dirname(file), { recursive: true });
  else if (isMountPoint(file)) {
    await writeDurably(file, content, 'w', ownership(file), secret);
    return 'replaced-in-place';
  }
  const keep = current === undefined ? undefined : ownership(file);
  const temp = tempName(file);
  try {
    await writeDurably(temp, content, 'wx', keep, secret);
    renameSync(temp, file);
  } catch (error) {
    rmSync(temp, { force: true });
    const code = (error as NodeJS.ErrnoException).code;
    if (current !== undefined && (code === 'EBUSY' || code === 'EXDEV' || code === 'EPERM')) {
      await writeDurably(file, content, 'w', keep, secret);
      return 'replaced-in-place';
    }
    throw error;
  }
  return current === undefined ? 'created' : 'replaced';
}

/**
 * Removes the output's extra files with changing names (HAProxy's hashed maps) that no config
 * needs any more: matched by the output's own name patterns (its driver's `families`), never one named by `keep` or by the text of the config now on disk or the one it
 * replaced (`previousMain`), and only once older than MAP_GRACE_MS. Returns the removed paths.
 */
export async function removeUnusedMaps(
  output: FileOutput,
  main: string,
  options: {
    keep?: readonly string[];
    previousMain?: string | undefined;
    now?: number;
    /** The main file's content, when the caller has just written it. */
    current?: string;
  } = {},
): Promise<string[]> {
  const families = driverFor(output).families(main);
  if (families.length === 0) return [];
  const dir = path.dirname(main);
  const matches = (name: string) => families.some((f) => f.pattern.test(name));
  const current = options.current ?? readIfExistsSync(main);
  if (current === undefined) return [];
  const keep = new Set((options.keep ?? []).map((f) => path.basename(f)));
  const now = options.now ?? Date.now();
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!matches(name) || keep.has(name) || current.includes(name) || options.previousMain?.includes(name)) continue;
    const file = path.join(dir, name);
    try {
      const s = statSync(file, { throwIfNoEntry: false });
      if (!s?.isFile() || now - s.mtimeMs < MAP_GRACE_MS) continue;
      rmSync(file, { force: true });
      removed.push(file);
    } catch {
      // gone already, or not ours to remove: the next write tries again
    }
  }
  return removed;
}

/**
 * Writes an output's files in order (the maps first, the main file last, each atomically), so a
 * main file on disk always names maps that are there. Then removes the maps the switch left
 * unused. `written` fills as files are written, so a caller can tell which write failed.
 * `onDisk`: the files' contents as the caller has just read them (by path; `undefined`: absent),
 * so they are not read again (at 10,000 services the main file was read three times a cycle).
 */
export async function writeOutputFiles(
  output: FileOutput,
  files: readonly { path: string; content: string; private?: true }[],
  written: { path: string; result: WriteResult }[] = [],
  onDisk?: ReadonlyMap<string, string | undefined>,
): Promise<{ path: string; result: WriteResult }[]> {
  const main = files[files.length - 1];
  if (!main) return written;
  const known = (file: string) => (onDisk?.has(file) ? { current: onDisk.get(file) } : undefined);
  const previousMain = known(main.path)?.current ?? readIfExistsSync(main.path);
  const switching = previousMain !== main.content;
  for (const f of files) {
    const result = await writeIfChanged(f.path, f.content, f.private === true, known(f.path));
    // A map reused as it is counts as fresh: a second writer's clean-up must not take it away
    // between here and the main file's switch.
    if (switching && result === 'unchanged' && f !== main)
      try {
        utimesSync(f.path, new Date(), new Date());
      } catch {
        // gone: the main file's write fails on it, or the next write makes it again
      }
    written.push({ path: f.path, result });
  }
  await removeUnusedMaps(output, main.path, {
    keep: files.map((f) => f.path),
    previousMain,
    current: main.content,
  });
  return written;
}
