/**
 * Checking rendered files with the real proxy binaries before anything uses them:
 * `haproxy -c -f FILE` and `nginx -t -p DIR -c FILE`, or the user's own command.
 */
import { execFile } from 'node:child_process';
import { access, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FileOutput } from '../config/schema.ts';
import { driverFor } from '../outputs/drivers.ts';
import type { RenderedFile } from '../render/types.ts';

/** Scratch folders are `interlock-check-<pid>-<kind>-XXXXXX` in the temp dir. */
export const SCRATCH_PREFIX = 'interlock-check-';

export interface ProxyCheck {
  ok: boolean;
  /** The proxy's own words (stdout + stderr), trimmed. */
  output: string;
  /** The command that ran, for messages. */
  command: string;
  /** True when no check ran (validate kind `none`, or the binary is missing and that was allowed). */
  skipped?: boolean;
  /** No check ran because the render only changed servers and map entries the proxy accepted (src/apply/apply.ts). */
  byConstruction?: boolean;
}

export function run(
  argv: readonly string[],
  cwd: string,
  timeoutMs = 30_000,
): Promise<{ code: number; output: string }> {
  const [cmd, ...args] = argv;
  return new Promise((resolve) => {
    execFile(cmd as string, args, { cwd, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const output = `${stdout}${stderr}`.trim();
      if (error && (error as NodeJS.ErrnoException).code === 'ENOENT') {
        resolve({ code: 127, output: `${cmd}: not found` });
        return;
      }
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, output });
    });
  });
}

/**
 * Finds a binary on PATH (and the usual sbin folders, which a non-root PATH lacks): the first
 * folder in that order that has it. The folders are looked at all at once (start-up, issue 12:
 * one after the other, a long PATH cost a round trip through the thread pool each).
 */
export async function findBinary(
  name: string,
  env: Readonly<Record<string, string | undefined>>,
): Promise<string | undefined> {
  const dirs = [...(env.PATH ?? '').split(':'), '/usr/local/sbin', '/usr/sbin', '/sbin'].filter(Boolean);
  const candidates = dirs.map((dir) => path.join(dir, name));
  const found = await Promise.all(
    candidates.map((candidate) =>
      access(candidate, 1).then(
        () => true,
        () => false,
      ),
    ),
  );
  return candidates[found.indexOf(true)];
}

/** The proxy's words without what it says on every run (its version, its path, the pid). */
export function proxyWords(output: string): string {
  return output
    .split('\n')
    .filter((l) => !/^\[NOTICE\]\s+\(\d+\) : (haproxy version is|path to executable is)/.test(l))
    .map((l) => l.replace(/^\[(ALERT|WARNING|NOTICE)\]\s+\(\d+\) : /, '[$1] '))
    .join('\n')
    .trim();
}

/**
 * Checks of a driver whose check starts first (`checkFirst`) that have not started their process
 * yet. Checks of other outputs that run at the same time wait for them: the slowest check decides
 * when all are done, and starting a process from this one blocks it for ~10 ms, so the slowest
 * starts first (start-up, issue 12: `render` was 10 ms slower whenever `nginx -t` won the race).
 */
const leading = new Set<Promise<void>>();

/**
 * Checks files as they would be installed: they are written into a scratch copy of their folder
 * (so the HAProxy map, resolved with `default-path config`, sits next to the config).
 */
export async function checkRendered(
  output: FileOutput,
  files: readonly RenderedFile[],
  options: { env: Readonly<Record<string, string | undefined>>; missingBinary: 'fail' | 'skip' },
): Promise<ProxyCheck> {
  const validate = output.validate ?? { kind: 'binary' as const };
  if (validate.kind === 'none') return { ok: true, output: '', command: 'none', skipped: true };
  const main = files[0];
  if (!main) return { ok: false, output: 'nothing was rendered', command: '' };
  const first = driverFor(output).checkFirst;
  let started = () => {};
  if (first) {
    const starting = new Promise<void>((resolve) => {
      started = resolve;
    });
    leading.add(starting);
    void starting.then(() => leading.delete(starting));
  }
  // Looked up while the files are written (start-up, issue 12: the proxies' checks start sooner).
  const binary = validate.kind === 'binary' ? (validate.path ?? findBinary(output.kind, options.env)) : undefined;
  let dir: string;
  try {
    // The pid in the name lets a start-up clean-up tell a folder whose process is gone (see cleanup.ts).
    dir = await mkdtemp(path.join(tmpdir(), `${SCRATCH_PREFIX}${process.pid}-${output.kind}-`));
  } catch (error) {
    started();
    throw error;
  }
  try {
    const subdirs = new Set(files.map((f) => path.dirname(path.join(dir, f.name))).filter((d) => d !== dir));
    await Promise.all([...subdirs].map((d) => mkdir(d, { recursive: true })));
    await Promise.all(files.map((f) => writeFile(path.join(dir, f.name), f.content)));
    const file = path.join(dir, main.name);
    let argv: string[];
    if (validate.kind === 'command') {
      argv = validate.command.map((a) => a.replaceAll('{file}', file));
    } else {
      const found = await binary;
      if (!found) {
        const message = `${output.kind} is not installed, so the rendered file was not checked`;
        return options.missingBinary === 'skip'
          ? { ok: true, output: message, command: output.kind, skipped: true }
          : { ok: false, output: message, command: output.kind };
      }
      argv = driverFor(output).checkArgv(found, file, dir);
    }
    if (!first && leading.size > 0) await Promise.all(leading);
    const running = run(argv, dir);
    started();
    const result = await running;
    // Name the file as the user knows it, not the scratch copy.
    const words = proxyWords(result.output.replaceAll(`${dir}/`, ''));
    return { ok: result.code === 0, output: words, command: argv.join(' ').replaceAll(`${dir}/`, '') };
  } finally {
    started();
    await rm(dir, { recursive: true, force: true });
  }
}
