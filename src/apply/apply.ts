/**
 * Applying one planned output: compare with the files on disk → nothing when equal; else check
 * with the real proxy (on a scratch copy) → on rejection keep the last good files and do not
 * reload; else write (map first, main file last, each atomically) → reload.
 *
 * The real file is only ever replaced by a render the proxy accepted, so the last good config
 * survives a restart of the daemon without any state of its own: a restarted daemon whose render
 * is now rejected leaves the file as it was.
 */
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { PlannedOutput } from '../pipeline.ts';
import { checkRendered, type ProxyCheck } from './check-proxy.ts';
import { type ReloadResult, reloadProxy, type SignalTarget } from './reload.ts';
import { readIfExists, type WriteResult, writeOutputFiles } from './write.ts';

export type ApplyResult =
  | { kind: 'unchanged' }
  | {
      kind: 'applied';
      files: { path: string; result: WriteResult }[];
      /** Undefined when reloads are off (`--out-dir`) or not configured. */
      reload: ReloadResult | undefined;
      /** The proxy was reloaded because an earlier reload failed, not because files changed. */
      retriedReload?: boolean;
    }
  | {
      kind: 'rejected';
      command: string;
      /** The proxy's own words. */
      error: string;
      /** `cluster/service` names the rejection is about, when they can be told. */
      services: string[];
      /** The same render was already rejected: nothing was run again. */
      repeated: boolean;
    }
  | { kind: 'failed'; stage: 'write' | 'reload'; error: string; files?: { path: string; result: WriteResult }[] };

export interface ApplyOptions {
  env: Readonly<Record<string, string | undefined>>;
  /** False with `--out-dir`: files are written, proxies are left alone. */
  reload: boolean;
  docker?: SignalTarget;
  /** Missing proxy binary: `fail` in the daemon (never apply unchecked), `skip` elsewhere. */
  missingBinary: 'fail' | 'skip';
  /**
   * Names who a rejection is about, from the proxy's words and the rendered files (the daemon
   * passes one that knows the services). When it names none: the services the render refused.
   */
  involved?: (check: ProxyCheck, files: readonly { name: string; content: string }[]) => string[];
  /** Test seams. */
  check?: typeof checkRendered;
  reloader?: typeof reloadProxy;
}

/** The files as the checker wants them: main first, names relative to the main file's folder. */
export function checkFiles(planned: PlannedOutput): { name: string; content: string }[] {
  const main = planned.files[planned.files.length - 1];
  if (!main) return [];
  const dir = path.dirname(main.path);
  return [main, ...planned.files.slice(0, -1)].map((f) => ({ name: path.relative(dir, f.path), content: f.content }));
}

function renderHash(planned: PlannedOutput): string {
  const h = createHash('sha256');
  for (const f of planned.files) h.update(f.path).update('\0').update(f.content).update('\0');
  return h.digest('hex');
}

/**
 * Applies planned outputs and remembers, per output, what must not be repeated: a render already
 * rejected (not checked again until it changes) and a reload that failed (retried next time even
 * when the files are unchanged).
 */
export class Applier {
  readonly #options: ApplyOptions;
  readonly #rejected = new Map<string, { hash: string; result: ApplyResult & { kind: 'rejected' } }>();
  readonly #reloadPending = new Set<string>();

  constructor(options: ApplyOptions) {
    this.#options = options;
  }

  async apply(planned: PlannedOutput): Promise<ApplyResult> {
    const key = planned.files[planned.files.length - 1]?.path ?? planned.name;
    const o = this.#options;
    const current = await Promise.all(planned.files.map((f) => readIfExists(f.path)));
    const changed = planned.files.some((f, i) => current[i] !== f.content);
    if (!changed) {
      this.#rejected.delete(key);
      if (o.reload && this.#reloadPending.has(key)) return this.#reload(planned, key, [], true);
      return { kind: 'unchanged' };
    }

    const hash = renderHash(planned);
    const known = this.#rejected.get(key);
    if (known && known.hash === hash) return { ...known.result, repeated: true };

    const files = checkFiles(planned);
    // Nginx's check opens the pid file and temp paths of the run folder (by default the file's
    // folder), so the folder must exist before the first file is ever written there.
    const main = planned.files[planned.files.length - 1];
    if (main) await mkdir(path.dirname(main.path), { recursive: true });
    const check = await (o.check ?? checkRendered)(planned.output, files, {
      env: o.env,
      missingBinary: o.missingBinary,
    });
    if (!check.ok) {
      const named = o.involved ? o.involved(check, files) : [];
      const services = named.length > 0 ? named : planned.refused;
      const result = {
        kind: 'rejected' as const,
        command: check.command,
        error: check.output || `${check.command} failed`,
        services,
        repeated: false,
      };
      this.#rejected.set(key, { hash, result });
      return result;
    }
    this.#rejected.delete(key);

    const written: { path: string; result: WriteResult }[] = [];
    try {
      // Map first, main file last: a proxy that reloads on its own never sees a main file naming
      // a map that is not there yet. The maps the switch left unused are removed after it.
      await writeOutputFiles(planned.output, planned.files, written);
    } catch (error) {
      return {
        kind: 'failed',
        stage: 'write',
        error: `cannot write ${planned.files[written.length]?.path ?? ''}: ${(error as Error).message}`,
        files: written,
      };
    }
    if (!o.reload) return { kind: 'applied', files: written, reload: undefined };
    return this.#reload(planned, key, written, false);
  }

  async #reload(
    planned: PlannedOutput,
    key: string,
    files: { path: string; result: WriteResult }[],
    retried: boolean,
  ): Promise<ApplyResult> {
    const o = this.#options;
    const reload = planned.output.reload;
    if (!reload || reload.kind === 'none') {
      this.#reloadPending.delete(key);
      return { kind: 'applied', files, reload: undefined, ...(retried ? { retriedReload: true } : {}) };
    }
    const result = await (o.reloader ?? reloadProxy)(planned.output, o.docker ? { docker: o.docker } : {});
    if (!result.ok) {
      this.#reloadPending.add(key);
      return { kind: 'failed', stage: 'reload', error: result.detail, files };
    }
    this.#reloadPending.delete(key);
    return { kind: 'applied', files, reload: result, ...(retried ? { retriedReload: true } : {}) };
  }
}
