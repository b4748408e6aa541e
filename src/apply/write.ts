/**
 * Writing rendered files: only when bytes changed, atomically (temp file + rename in the same
 * directory), and in place where rename cannot work: a single-file bind mount keeps the old inode
 * in the container (docker-gen #629), and rename onto a mount point fails with EBUSY.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';

export type WriteResult = 'unchanged' | 'created' | 'replaced' | 'replaced-in-place';

export async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** True when `file` is itself a mount point (a single-file bind mount): its device differs from its directory's. */
async function isMountPoint(file: string): Promise<boolean> {
  try {
    const [f, d] = await Promise.all([stat(file), stat(path.dirname(file))]);
    return f.dev !== d.dev;
  } catch {
    return false;
  }
}

async function writeDurably(file: string, content: string, flags: string): Promise<void> {
  const handle = await open(file, flags, 0o644);
  try {
    await handle.writeFile(content, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export async function writeIfChanged(file: string, content: string): Promise<WriteResult> {
  const current = await readIfExists(file);
  if (current === content) return 'unchanged';
  await mkdir(path.dirname(file), { recursive: true });
  if (current !== undefined && (await isMountPoint(file))) {
    await writeDurably(file, content, 'w');
    return 'replaced-in-place';
  }
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeDurably(temp, content, 'wx');
    await rename(temp, file);
  } catch (error) {
    await rm(temp, { force: true });
    const code = (error as NodeJS.ErrnoException).code;
    if (current !== undefined && (code === 'EBUSY' || code === 'EXDEV' || code === 'EPERM')) {
      await writeDurably(file, content, 'w');
      return 'replaced-in-place';
    }
    throw error;
  }
  return current === undefined ? 'created' : 'replaced';
}
