/**
 * Applying one planned output, the one path `render`, `validate --snapshot` and `watch` share:
 *
 * 1. leave out the services whose own material is broken (a TLS file missing or not matching),
 *    and those the proxy rejected before with the same routes;
 * 2. compare with the files on disk → nothing when equal;
 * 3. check with the real proxy (on a scratch copy). When it rejects the render, find the services
 *    responsible (the proxy's `file:line` or section name mapped back to the route that produced
 *    it, else bisection over the services) and leave them out, each with the proxy's own words;
 *    check again. A render the proxy still rejects once no single service is to blame (a
 *    template, the config) is rejected whole: the last good files stay;
 * 4. write (extra files first, main file last, each atomically) → reload.
 *
 * One service can therefore never freeze the others: its part is left out and the rest applied.
 * The real file is only ever replaced by a render the proxy accepted, so the last good config
 * survives a restart of the daemon without any state of its own.
 */
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { FileOutput } from '../config/schema.ts';
import type { Diagnostic } from '../diagnostics.ts';
import { driverFor } from '../outputs/drivers.ts';
import { type PlannedOutput, serviceKey } from '../pipeline.ts';
import { updateText } from '../render/text-hash.ts';
import { type BlameLine, blame } from './blame.ts';
import { checkRendered, type ProxyCheck } from './check-proxy.ts';
import { applyRuntime, runtimeSocketOf } from './haproxy-runtime.ts';
import { mapUses, planHaproxyRuntime, type RuntimePlan } from './haproxy-runtime-diff.ts';
import { type ReloadResult, reloadProxy, type SignalTarget } from './reload.ts';
import { readIfExists, type WriteResult, writeOutputFiles } from './write.ts';

/** A service left out of one output, and why. */
export interface LeftOut {
  /** `cluster/service`. */
  service: string;
  /** `proxy`: the proxy rejected its part; `material`: its own files are missing or broken. */
  source: 'proxy' | 'material';
  /** The proxy's own words, or the material problem. */
  reason: string;
  /** The line of the rendered file the proxy pointed at. */
  line?: BlameLine;
  /** How it is reported (log, /healthz, `render`'s diagnostics). */
  diagnostic: Diagnostic;
}

function proxyLeftOut(
  planned: PlannedOutput,
  service: string,
  command: string,
  reason: string,
  line?: BlameLine,
): LeftOut {
  const slash = service.indexOf('/');
  const at = line ? ` (${line.file}:${line.number}: ${line.text})` : '';
  return {
    service,
    source: 'proxy',
    reason,
    ...(line ? { line } : {}),
    diagnostic: {
      severity: 'error',
      code: 'proxy-rejected',
      cluster: service.slice(0, slash),
      service: service.slice(slash + 1),
      message: `left out of output ${planned.name}: \`${command}\` rejected its part${at}: ${reason}`,
      fix: "fix this service's labels (or the files they name); the other services are applied without it",
    },
  };
}

export type ApplyResult =
  | { kind: 'unchanged'; leftOut?: LeftOut[]; planned?: PlannedOutput }
  | {
      kind: 'applied';
      files: { path: string; result: WriteResult }[];
      /** Undefined when reloads are off (`--out-dir`) or not configured. */
      reload: ReloadResult | undefined;
      /** The proxy was reloaded because an earlier reload failed, not because files changed. */
      retriedReload?: boolean;
      /** Services left out of what was written (absent when none). */
      leftOut?: LeftOut[];
      /** What was written, when services were left out (else the planned output as given). */
      planned?: PlannedOutput;
      /**
       * The change went through the proxy's runtime API (`ok`, `reload` undefined), or was tried
       * there and failed (`reason`; then `reload` is the fallback reload).
       */
      runtime?: { ok: true; commands: number } | { ok: false; reason: string };
      /** Why the runtime API could not take this change (a reload did), when it was considered. */
      reloadReason?: string;
      /**
       * The proxy's check did not run: only servers and map entries of shapes the running render
       * already had changed (checkedByConstruction).
       */
      checkSkipped?: true;
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

/** Per-service material checks (TLS files): diagnostics name the services to leave out. */
export type MaterialCheck = (planned: PlannedOutput) => Promise<Diagnostic[]>;

export interface ApplyOptions {
  env: Readonly<Record<string, string | undefined>>;
  /** False with `--out-dir` and for `render`: files are written, proxies are left alone. */
  reload: boolean;
  docker?: SignalTarget;
  /** Missing proxy binary: `fail` in the daemon (never apply unchecked), `skip` elsewhere. */
  missingBinary: 'fail' | 'skip';
  /** Checks each service's own files before the proxy sees them. */
  material?: MaterialCheck;
  /**
   * Apply changes to servers and host-map entries through HAProxy's runtime API instead of a
   * reload, when the output names a socket (`masterSocket`, or a `haproxy-master` reload).
   */
  runtime?: boolean;
  /** Test seams. */
  check?: typeof checkRendered;
  reloader?: typeof reloadProxy;
  runtimeApply?: typeof applyRuntime;
}

/** The result of checking a planned output, before anything is written. */
export type Prepared =
  | { ok: true; planned: PlannedOutput; check: ProxyCheck; leftOut: LeftOut[] }
  | { ok: false; planned: PlannedOutput; check: ProxyCheck; services: string[]; leftOut: LeftOut[] };

/** The files as the checker wants them: main first, names relative to the main file's folder. */
export function checkFiles(planned: PlannedOutput): { name: string; content: string }[] {
  const main = planned.files[planned.files.length - 1];
  if (!main) return [];
  const dir = path.dirname(main.path);
  return [main, ...planned.files.slice(0, -1)].map((f) => ({ name: path.relative(dir, f.path), content: f.content }));
}

function renderHash(planned: PlannedOutput): string {
  const h = createHash('sha256');
  for (const f of planned.files) updateText(h.update(f.path).update('\0'), f.content).update('\0');
  return h.digest('hex');
}

/**
 * Writes a checked output: extra files first, main file last, so a proxy that reloads on its own
 * never sees a main file naming a map that is not there yet.
 */
export async function writePlanned(
  planned: PlannedOutput,
  /** The files' contents on disk as just read (by path), when the caller has them. */
  onDisk?: ReadonlyMap<string, string | undefined>,
): Promise<{ files: { path: string; result: WriteResult }[]; failed?: ApplyResult & { kind: 'failed' } }> {
  const written: { path: string; result: WriteResult }[] = [];
  try {
    // The maps the switch left unused are removed after it.
    await writeOutputFiles(planned.output, planned.files, written, onDisk);
  } catch (error) {
    const failed = {
      kind: 'failed' as const,
      stage: 'write' as const,
      error: `cannot write ${planned.files[written.length]?.path ?? ''}: ${(error as Error).message}`,
      files: written,
    };
    return { files: written, failed };
  }
  return { files: written };
}

/** What a service's routes were when the proxy rejected its part: changed routes are tried again. */
function fingerprint(planned: PlannedOutput, key: string): string {
  return JSON.stringify(planned.routeList.filter((r) => serviceKey(r) === key));
}

/** The first lines of a proxy's complaint: enough to read in a log line or on /healthz. */
function gist(text: string, max = 600): string {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !/^\[NOTICE\]|Configuration file is valid|test is successful/.test(l));
  const picked = (lines.filter((l) => /ALERT|emerg|error|\[crit\]/i.test(l)).join('\n') || lines.join('\n')).trim();
  return picked.length > max ? `${picked.slice(0, max - 3)}...` : picked;
}

/** What the `applied` log lines (daemon and agent) say when the check was skipped. */
export const CHECK_SKIPPED = 'skipped: only servers and map entries changed';

type TextFile = { path: string; content: string };

const mapOf = (config: string) => mapUses(config)[0]?.name;

/** The host map the main file (last of `files`) names, when it is among `files`. */
function mapFileOf(files: readonly TextFile[]): TextFile | undefined {
  const main = files[files.length - 1];
  const name = main ? mapOf(main.content) : undefined;
  if (!main || !name) return undefined;
  const wanted = path.resolve(path.dirname(main.path), name);
  return files.find((f) => path.resolve(f.path) === wanted);
}

/**
 * The files on disk the proxy runs: the main file at `mainPath` (`onDisk`, when the caller has
 * just read it) and the host map it names; undefined when nothing is there yet. Map first.
 */
async function readRunning(mainPath: string, onDisk?: string): Promise<TextFile[] | undefined> {
  const config = onDisk ?? (await readIfExists(mainPath));
  if (config === undefined) return undefined;
  const mapName = mapOf(config);
  const mapPath = mapName ? path.resolve(path.dirname(mainPath), mapName) : undefined;
  const map = mapPath ? await readIfExists(mapPath) : undefined;
  return [
    ...(mapPath && map !== undefined ? [{ path: mapPath, content: map }] : []),
    { path: mainPath, content: config },
  ];
}

/** The runtime plan from accepted files (main file last) to new ones. */
function planFiles(accepted: readonly TextFile[], files: readonly TextFile[]): RuntimePlan {
  const config = (accepted[accepted.length - 1] as TextFile).content;
  const main = files[files.length - 1] as TextFile;
  return planHaproxyRuntime(
    { config, map: mapFileOf(accepted)?.content },
    { config: main.content, map: mapFileOf(files)?.content },
  );
}

/**
 * The runtime plan from the files on disk (what the running proxy was loaded with, or was brought
 * to by earlier runtime changes) to `planned`, for an output whose files take it; undefined for
 * other kinds and when nothing is on disk yet. Used with or without a runtime socket: it also
 * says whether the new files need the proxy's check at all (RuntimePlan's `recheck`). `old` is
 * what to put back if a runtime update fails and the proxy then rejects files it did not check.
 */
async function diskPlan(
  planned: PlannedOutput,
  /** The main file's content on disk, when the caller has just read it. */
  onDisk?: string,
): Promise<{ plan: RuntimePlan; configFile: string; old: TextFile[] } | undefined> {
  if (!driverFor(planned.output).runtimeApi) return undefined;
  const main = planned.files[planned.files.length - 1];
  const old = main ? await readRunning(main.path, onDisk) : undefined;
  if (!main || !old) return undefined;
  return { plan: planFiles(old, planned.files), configFile: main.path, old };
}

/**
 * True when `planned` may skip the proxy's check: the output uses the proxy's own check (not a
 * command of the user's), and the plan from an accepted render says nothing new needs it.
 */
function checkedByConstruction(
  planned: PlannedOutput,
  plan: RuntimePlan | undefined,
  accepted: (file: string) => string | undefined,
): boolean {
  const validate = planned.output.validate?.kind ?? 'binary';
  return validate === 'binary' && plan !== undefined && skipsCheck(plan, planned.files, accepted);
}

/**
 * Whether HAProxy files (main file last) need no check, given the plan from the files the proxy
 * accepted and those files' contents (`accepted`, by path): the plan needs no recheck, and every
 * file but the main file and its host map (an error page, a users file, a certificate an agent
 * received) is the one the proxy accepted. Shared by the controller and `interlock agent`.
 */
function skipsCheck(
  plan: RuntimePlan,
  files: readonly TextFile[],
  accepted: (file: string) => string | undefined,
): boolean {
  if (plan.kind !== 'runtime' || plan.recheck !== undefined) return false;
  const main = files[files.length - 1];
  const map = mapFileOf(files);
  return files.every((f) => f === main || f === map || accepted(f.path) === f.content);
}

/**
 * For `interlock agent`: whether HAProxy files about to replace the ones on disk (which its proxy
 * checked and runs) may skip the check. Reads the files on disk (the others only when the plan
 * allows it).
 */
export async function agentSkipsCheck(files: readonly TextFile[]): Promise<boolean> {
  const main = files[files.length - 1];
  const running = main ? await readRunning(main.path) : undefined;
  if (!main || !running) return false;
  const plan = planFiles(running, files);
  if (plan.kind !== 'runtime' || plan.recheck !== undefined) return false;
  const onDisk = new Map<string, string | undefined>();
  for (const f of files) if (f !== main) onDisk.set(f.path, await readIfExists(f.path));
  return skipsCheck(plan, files, (f) => onDisk.get(f));
}

/** What stands for the check a render skipped (checkedByConstruction). */
function constructionCheck(planned: PlannedOutput): ProxyCheck {
  return {
    ok: true,
    output: '',
    command: `${planned.output.kind} check skipped: only servers and map entries of shapes the proxy accepted changed`,
    skipped: true,
    byConstruction: true,
  };
}

/** Bounds the rounds of "leave one out and check again" per render (each round is ≥ 1 check). */
const MAX_BLAME_ROUNDS = 8;

/**
 * Applies planned outputs and remembers, per output, what must not be repeated: a render already
 * rejected (not checked again until it changes), a reload that failed (retried next time even
 * when the files are unchanged), and the services the proxy rejected (left out while their
 * routes stay the same, so the proxy is not asked again on every re-list).
 */
export class Applier {
  readonly #options: ApplyOptions;
  readonly #rejected = new Map<string, { hash: string; result: ApplyResult & { kind: 'rejected' } }>();
  readonly #reloadPending = new Set<string>();
  readonly #blamed = new Map<string, Map<string, { fingerprint: string; entry: LeftOut }>>();
  /** prepare(): the files of the last render accepted per output, for checkedByConstruction. */
  readonly #accepted = new Map<string, readonly TextFile[]>();

  constructor(options: ApplyOptions) {
    this.#options = options;
  }

  async #check(planned: PlannedOutput): Promise<ProxyCheck> {
    const o = this.#options;
    // Nginx's check opens the pid file and temp paths of the run folder (by default the file's
    // folder), so the folder must exist before the first file is ever written there.
    const main = planned.files[planned.files.length - 1];
    const dirs = [...(main ? [path.dirname(main.path)] : []), ...(planned.runDirs ?? [])];
    await Promise.all(dirs.map((d) => mkdir(d, { recursive: true })));
    return (o.check ?? checkRendered)(planned.output as FileOutput, checkFiles(planned), {
      env: o.env,
      missingBinary: o.missingBinary,
    });
  }

  /** Leaves out what is already known to be broken: broken material, parts rejected before. */
  async #known(planned: PlannedOutput, key: string): Promise<{ planned: PlannedOutput; leftOut: LeftOut[] }> {
    const leftOut: LeftOut[] = [];
    const material = this.#options.material ? await this.#options.material(planned) : [];
    for (const d of material) {
      if (!d.service) continue;
      const service = `${d.cluster ? `${d.cluster}/` : ''}${d.service}`;
      if (!leftOut.some((l) => l.service === service))
        leftOut.push({ service, source: 'material', reason: d.message, diagnostic: d });
    }
    const blamed = this.#blamed.get(key);
    if (blamed) {
      for (const [service, b] of [...blamed]) {
        if (fingerprint(planned, service) !== b.fingerprint) blamed.delete(service);
        else if (!leftOut.some((l) => l.service === service)) leftOut.push(b.entry);
      }
    }
    if (leftOut.length === 0 || !planned.rerender) return { planned, leftOut: [] };
    return { planned: planned.rerender(new Set(leftOut.map((l) => l.service))), leftOut };
  }

  /**
   * Checks `planned` with the proxy, leaving out the services it rejects. `original` is the
   * render with nobody left out, which `rerender` starts from.
   */
  async #settle(original: PlannedOutput, start: { planned: PlannedOutput; leftOut: LeftOut[] }): Promise<Prepared> {
    let planned = start.planned;
    const leftOut = [...start.leftOut];
    let check = await this.#check(planned);
    for (let round = 0; !check.ok && round < MAX_BLAME_ROUNDS && original.rerender; round++) {
      const candidates = new Set(planned.routeList.map(serviceKey));
      const named = blame(check.output, checkFiles(planned), candidates);
      const found =
        named.services.length > 0
          ? { services: named.services, reason: gist(check.output), ...(named.line ? { line: named.line } : {}) }
          : await this.#bisect(original, leftOut, [...candidates].sort());
      if (!found) break;
      for (const service of found.services)
        leftOut.push(proxyLeftOut(original, service, check.command, found.reason, found.line));
      planned = original.rerender(new Set(leftOut.map((l) => l.service)));
      check = await this.#check(planned);
    }
    if (check.ok) return { ok: true, planned, check, leftOut };
    const services = blame(check.output, checkFiles(planned), new Set(planned.routeList.map(serviceKey))).services;
    return { ok: false, planned, check, services, leftOut };
  }

  /**
   * Finds one service whose part the proxy rejects, when the complaint names none: the render
   * with every service left out must pass (else the fault is the template's or the config's),
   * then the shortest prefix of `services` that fails ends with a culprit. 1 + log2(n) checks.
   */
  async #bisect(
    original: PlannedOutput,
    leftOut: readonly LeftOut[],
    services: readonly string[],
  ): Promise<{ services: string[]; reason: string; line?: BlameLine } | undefined> {
    const rerender = original.rerender;
    if (!rerender || services.length === 0) return undefined;
    const already = leftOut.map((l) => l.service);
    const withPrefix = (n: number) => rerender(new Set([...already, ...services.slice(n)]));
    if (!(await this.#check(withPrefix(0))).ok) return undefined;
    let lo = 0;
    let hi = services.length;
    let failing: ProxyCheck | undefined;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      const check = await this.#check(withPrefix(mid));
      if (check.ok) lo = mid;
      else {
        hi = mid;
        failing = check;
      }
    }
    const culprit = services[hi - 1] as string;
    if (!failing) failing = await this.#check(withPrefix(hi));
    if (failing.ok) return undefined;
    const named = blame(failing.output, checkFiles(withPrefix(hi)), new Set([culprit]));
    return { services: [culprit], reason: gist(failing.output), ...(named.line ? { line: named.line } : {}) };
  }

  /** Checks a planned output with the proxy and leaves out what it rejects; writes nothing. */
  async prepare(planned: PlannedOutput): Promise<Prepared> {
    const key = planned.files[planned.files.length - 1]?.path ?? planned.name;
    const known = await this.#known(planned, key);
    // Nothing is on disk to compare with (a served-only output): the last render accepted here.
    const accepted = this.#accepted.get(key);
    const plan =
      accepted && driverFor(known.planned.output).runtimeApi ? planFiles(accepted, known.planned.files) : undefined;
    const byPath = new Map(accepted?.map((f) => [f.path, f.content]));
    const prepared: Prepared = checkedByConstruction(known.planned, plan, (f) => byPath.get(f))
      ? { ok: true, planned: known.planned, check: constructionCheck(known.planned), leftOut: known.leftOut }
      : await this.#settle(planned, known);
    this.#remember(key, planned, prepared);
    if (prepared.ok && driverFor(prepared.planned.output).runtimeApi) this.#accepted.set(key, prepared.planned.files);
    else if (prepared.ok) this.#accepted.delete(key);
    return prepared;
  }

  #remember(key: string, original: PlannedOutput, prepared: Prepared): void {
    if (!prepared.ok) return;
    const blamed = new Map<string, { fingerprint: string; entry: LeftOut }>();
    for (const l of prepared.leftOut)
      if (l.source === 'proxy') blamed.set(l.service, { fingerprint: fingerprint(original, l.service), entry: l });
    if (blamed.size > 0) this.#blamed.set(key, blamed);
    else this.#blamed.delete(key);
  }

  async apply(original: PlannedOutput): Promise<ApplyResult> {
    const key = original.files[original.files.length - 1]?.path ?? original.name;
    const o = this.#options;
    const known = await this.#known(original, key);
    const planned = known.planned;
    const extra = (leftOut: LeftOut[], p: PlannedOutput) => (leftOut.length > 0 ? { leftOut, planned: p } : {});
    const current = await Promise.all(planned.files.map((f) => readIfExists(f.path)));
    const changed = planned.files.some((f, i) => current[i] !== f.content);
    if (!changed) {
      this.#rejected.delete(key);
      if (o.reload && this.#reloadPending.has(key))
        return this.#reload(planned, key, [], true, extra(known.leftOut, planned));
      return { kind: 'unchanged', ...extra(known.leftOut, planned) };
    }

    // Hashed only when a rejection is on record (3 MB at 10,000 services), and for a new one.
    let hashed: string | undefined;
    const hash = () => {
      hashed ??= renderHash(planned);
      return hashed;
    };
    const rejected = this.#rejected.get(key);
    if (rejected && rejected.hash === hash()) return { ...rejected.result, repeated: true };

    // The files on disk are what the proxy accepted and runs: compared with them, a render that
    // only moves servers and map entries needs no check (checkedByConstruction).
    const fromDisk = await diskPlan(planned, current[current.length - 1]);
    const onDisk = new Map(planned.files.map((f, i) => [f.path, current[i]]));
    const prepared: Prepared = checkedByConstruction(planned, fromDisk?.plan, (f) => onDisk.get(f))
      ? { ok: true, planned, check: constructionCheck(planned), leftOut: known.leftOut }
      : await this.#settle(original, known);
    if (!prepared.ok) {
      const result = {
        kind: 'rejected' as const,
        command: prepared.check.command,
        error: prepared.check.output || `${prepared.check.command} failed`,
        services: prepared.services,
        repeated: false,
      };
      this.#rejected.set(key, { hash: hash(), result });
      return result;
    }
    this.#rejected.delete(key);
    this.#remember(key, original, prepared);
    const final = prepared.planned;
    const skipped = prepared.check.byConstruction ? { checkSkipped: true as const } : {};

    // Read before the write replaces the files the running proxy was loaded from.
    const runtime =
      o.reload && o.runtime && runtimeSocketOf(final.output) && !this.#reloadPending.has(key)
        ? final === planned
          ? fromDisk
          : await diskPlan(final)
        : undefined;
    // The files were read at the start of this apply; only this applier writes them.
    const { files: written, failed } = await writePlanned(final, onDisk);
    if (failed) return failed;
    if (!written.some((w) => w.result !== 'unchanged') && !(o.reload && this.#reloadPending.has(key)))
      return { kind: 'unchanged', ...extra(prepared.leftOut, final) };
    if (!o.reload)
      return { kind: 'applied', files: written, reload: undefined, ...skipped, ...extra(prepared.leftOut, final) };
    if (runtime?.plan.kind === 'runtime') {
      const socket = runtimeSocketOf(final.output);
      try {
        if (!socket) throw new Error('no runtime socket');
        const commands = await (o.runtimeApply ?? applyRuntime)(
          socket,
          runtime.configFile,
          runtime.plan.ops,
          runtime.plan.expected,
        );
        return {
          kind: 'applied',
          files: written,
          reload: undefined,
          runtime: { ok: true, commands },
          ...skipped,
          ...extra(prepared.leftOut, final),
        };
      } catch (error) {
        // The files are written: the reload loads exactly the state the runtime change meant,
        // once the proxy has checked them when that was skipped.
        let checkedNow = false;
        if (prepared.check.byConstruction) {
          checkedNow = true;
          const check = await this.#check(final);
          if (!check.ok) {
            // Back to the files the proxy accepted, and the proxy back to them.
            await writeOutputFiles(final.output, runtime.old);
            await this.#reload(final, key, [], false, {});
            const result = {
              kind: 'rejected' as const,
              command: check.command,
              error: check.output || `${check.command} failed`,
              services: [],
              repeated: false,
            };
            this.#rejected.set(key, { hash: hash(), result });
            return result;
          }
        }
        const result = await this.#reload(final, key, written, false, extra(prepared.leftOut, final));
        return {
          ...result,
          ...(result.kind === 'applied'
            ? { runtime: { ok: false, reason: (error as Error).message }, ...(checkedNow ? {} : skipped) }
            : {}),
        };
      }
    }
    const result = await this.#reload(final, key, written, false, extra(prepared.leftOut, final));
    if (result.kind !== 'applied') return result;
    return runtime?.plan.kind === 'reload'
      ? { ...result, reloadReason: runtime.plan.reason }
      : { ...result, ...skipped };
  }

  async #reload(
    planned: PlannedOutput,
    key: string,
    files: { path: string; result: WriteResult }[],
    retried: boolean,
    extra: { leftOut?: LeftOut[]; planned?: PlannedOutput },
  ): Promise<ApplyResult> {
    const o = this.#options;
    const reload = planned.output.reload;
    if (!reload || reload.kind === 'none') {
      this.#reloadPending.delete(key);
      return { kind: 'applied', files, reload: undefined, ...(retried ? { retriedReload: true } : {}), ...extra };
    }
    const result = await (o.reloader ?? reloadProxy)(planned.output, o.docker ? { docker: o.docker } : {});
    if (!result.ok) {
      this.#reloadPending.add(key);
      return { kind: 'failed', stage: 'reload', error: result.detail, files };
    }
    this.#reloadPending.delete(key);
    return { kind: 'applied', files, reload: result, ...(retried ? { retriedReload: true } : {}), ...extra };
  }
}
