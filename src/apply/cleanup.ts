/**
 * Start-up clean-up of what a killed interlock leaves behind (`render` and `watch` call it once,
 * before they write anything):
 * - temp files next to each output file (`.<file>.<pid>.<12 hex>.tmp`, see write.ts);
 * - scratch check folders in the temp dir (`interlock-check-<pid>-<kind>-XXXXXX`, see check-proxy.ts);
 * - HAProxy maps the config on disk does not name (see removeUnusedMaps).
 *
 * Only interlock's own names are touched, and only when their process is gone (or is this very
 * process: a container restarts as pid 1, so the pid of a dead run can be ours), so two interlocks
 * running at once never remove each other's work. Names without a pid (written by versions before
 * this one) go once they are STALE_MS old. Interlocks in different pid namespaces (containers)
 * must not share an output folder: they cannot see each other's pids.
 */
import { readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Config } from '../config/schema.ts';
import { driverFor } from '../outputs/drivers.ts';
import { isFileOutput, outputFile } from '../pipeline.ts';
import { SCRATCH_PREFIX } from './check-proxy.ts';
import { removeUnusedMaps } from './write.ts';

/** Age after which a temp file or scratch folder without a pid in its name is surely abandoned. */
export const STALE_MS = 10 * 60_000;

/**
 * True when the process that named a leftover is gone: no process has that pid (EPERM means one
 * does, as another user), or it is this very process, which has written nothing yet at start-up.
 */
export function ownerGone(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'EPERM';
  }
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Whether a leftover with this pid (undefined: none in its name) and modification time may go. */
async function abandoned(file: string, pid: string | undefined, now: number): Promise<boolean> {
  if (pid !== undefined) return ownerGone(Number(pid));
  try {
    return now - (await stat(file)).mtimeMs > STALE_MS;
  } catch {
    return false;
  }
}

async function list(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}

/**
 * Removes the leftovers of the config's file outputs (where `render` / `watch` would write them)
 * and of scratch folders in `tmpDir`. Never throws: a leftover that cannot be removed is tried
 * again at the next start. Returns the removed paths.
 */
export async function removeLeftovers(
  config: Config,
  options: { configDir: string; cwd?: string; outDir?: string | undefined; tmpDir?: string; now?: number },
): Promise<string[]> {
  const now = options.now ?? Date.now();
  const outDir = options.outDir === undefined ? undefined : path.resolve(options.cwd ?? '.', options.outDir);
  const removed: string[] = [];
  const remove = async (file: string) => {
    try {
      await rm(file, { recursive: true, force: true });
      removed.push(file);
    } catch {
      // tried again next start
    }
  };
  for (const output of config.outputs) {
    if (!isFileOutput(output)) continue;
    const main = outputFile(output, options.configDir, outDir);
    const dir = path.dirname(main);
    // Temp files of the main file and, for HAProxy, of its maps.
    const names = [escapeRegex(path.basename(main))];
    for (const f of driverFor(output).families(main)) names.push(f.pattern.source.slice(1, -1));
    const temp = new RegExp(`^\\.(?:${names.join('|')})\\.(?:(\\d+)\\.)?[0-9a-f]{12}\\.tmp$`);
    for (const name of await list(dir)) {
      const m = temp.exec(name);
      if (m && (await abandoned(path.join(dir, name), m[1], now))) await remove(path.join(dir, name));
    }
    removed.push(...(await removeUnusedMaps(output, main, { now }).catch(() => [])));
  }
  const scratchDir = options.tmpDir ?? tmpdir();
  const scratch = new RegExp(`^${escapeRegex(SCRATCH_PREFIX)}(?:(\\d+)-)?(?:haproxy|nginx)-[A-Za-z0-9]{6}$`);
  for (const name of await list(scratchDir)) {
    const m = scratch.exec(name);
    if (m && (await abandoned(path.join(scratchDir, name), m[1], now))) await remove(path.join(scratchDir, name));
  }
  return removed;
}
