/**
 * One cycle of the watch daemon (src/watch/daemon.ts): re-list the poked clusters, plan every
 * output from the last good state of every cluster, apply each output that is ready, and record
 * the results (output records for health, left-out services, diagnostics and route changes).
 *
 * Holds what cycles carry from one to the next: the last good state of each cluster, read
 * errors, output records, the last render checked for `write: false` outputs.
 */

import type { CertificateStatus } from '../acme/issuer.ts';
import { type Applier, type ApplyResult, CHECK_SKIPPED } from '../apply/apply.ts';
import type { ServiceLists } from '../cluster/read.ts';
import { type HeldState, patchServices, shareUnchanged } from '../cluster/snapshot-patch.ts';
import { mapSnapshots } from '../cluster/sources.ts';
import { readPolicyFiles } from '../config/policy-files.ts';
import type { Config } from '../config/schema.ts';
import { isFileOutput, outputName, type PlannedOutput, planRender, type TemplateTexts } from '../pipeline.ts';
import { policyFilesKey, RouteCache } from '../routes/build.ts';
import type { LogFields, Logger } from '../runtime/log.ts';
import type { Metrics } from '../runtime/metrics.ts';
import type { CarbonRunner } from '../stats/runner.ts';
import { listField } from './changes.ts';
import type { ClusterWatcher, PokeReason } from './cluster-watcher.ts';
import type { OutputRecord } from './health.ts';
import { DiagnosticsLog, RouteChangeLog } from './route-log.ts';

export interface DaemonConfig {
  config: Config;
  /** Relative config paths resolve against it. */
  configDir: string;
  /** Template texts (built-in and overrides), already read. */
  templates: TemplateTexts;
}

/** What the daemon needs of the ACME issuer (src/acme/issuer.ts). */
export interface AcmeHook {
  certificates(): ReadonlyMap<string, string>;
  want(hosts: readonly string[]): void;
  status(): CertificateStatus[];
}

/** A cluster's last good state (with the last full read's networks and nodes, for one-service updates). */
export type KnownState = HeldState;

/**
 * Why a service is to be read again: an event hints it may have changed; `known` when it did (the
 * task follower saw its tasks move, or a reconcile look found its entries changed).
 */
export type ServiceWhy = 'event' | 'known';

/** Services read at once after events; more than this share of a cluster's services is one full re-list. */
const SERVICE_READS_IN_FLIGHT = 8;
function fullReadIsCheaper(wanted: number, held: number): boolean {
  return wanted > Math.max(64, held / 2);
}
/**
 * More services hinted at once than this (an event storm) and a reconcile look comes first: it
 * fetches the lists without parsing them and names the services that did change, often a few of
 * the many an update storm names.
 */
function lookFirst(hinted: number, held: number): boolean {
  return hinted > Math.max(64, held / 50);
}

/** What a cycle uses of the daemon around it. */
export interface CycleContext {
  now: () => number;
  log: Logger;
  metrics: Metrics;
  applier: {
    apply: (planned: PlannedOutput) => Promise<ApplyResult>;
    prepare?: Applier['prepare'];
  };
  /** See DaemonOptions. */
  outDir?: string;
  checkpoint?: () => void;
  serve?: (planned: PlannedOutput, configDir: string) => Promise<void>;
  acme?: AcmeHook;
  /** The watcher of a watched cluster. */
  watcher: (cluster: string) => ClusterWatcher | undefined;
  carbon: () => CarbonRunner | undefined;
  stopping: () => boolean;
  /** Aborted when the daemon stops: reads still running are abandoned. */
  signal: () => AbortSignal;
}

export function clustersOf(config: Config, wanted: readonly string[] | undefined): string[] {
  return wanted ? [...wanted] : Object.keys(config.clusters);
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A multi-line proxy complaint, kept readable in one log field. */
function clip(text: string, max = 2000): string {
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}

export class ApplyCycle {
  readonly #c: CycleContext;
  readonly #now: () => number;
  readonly #log: Logger;
  readonly #m: Metrics;
  /** The last good state of each cluster read. */
  readonly states = new Map<string, KnownState>();
  readonly readErrors = new Map<string, string>();
  /** `write: false` outputs: the last render checked, so an unchanged one is not checked again. */
  readonly #checked = new Map<string, { key: string; result: ApplyResult }>();
  readonly records = new Map<string, OutputRecord>();
  lastError: { timeMs: number; message: string } | undefined;
  /** Something other than a cluster changed since the last render (config, a failed apply to retry). */
  dirty = true;
  readonly #waitingFor = new Map<string, string>();
  readonly #diagnosticsLog: DiagnosticsLog;
  readonly #routeLog: RouteChangeLog;
  /** Routes per service, kept between renders: unchanged services are not resolved again. */
  #routeCache = new RouteCache();
  /** The policyFiles folder's contents at the last render ('' without one). */
  #policyKey = '';

  constructor(context: CycleContext, config: Config) {
    this.#c = context;
    this.#now = context.now;
    this.#log = context.log;
    this.#m = context.metrics;
    this.#diagnosticsLog = new DiagnosticsLog(context.log, context.metrics);
    this.#routeLog = new RouteChangeLog(context.log);
    this.resetRecords(config);
  }

  /** A cluster's settings changed: its state was read from another engine or mapped with other settings. */
  forget(cluster: string): void {
    this.states.delete(cluster);
    this.readErrors.delete(cluster);
  }

  /** After a config reload: records follow the new outputs, and the next cycle renders again. */
  reconfigured(config: Config): void {
    this.resetRecords(config);
    this.#routeLog.reset();
    this.#checked.clear();
    this.#routeCache = new RouteCache();
    this.dirty = true;
  }

  resetRecords(config: Config): void {
    const { outputs } = config;
    const next = new Map<string, OutputRecord>();
    outputs.forEach((o, i) => {
      if (!isFileOutput(o)) return;
      const name = outputName(outputs, i);
      next.set(name, this.records.get(name) ?? { name, state: 'pending' });
    });
    this.records.clear();
    for (const [k, v] of next) this.records.set(k, v);
  }

  fail(message: string, fields: LogFields = {}): void {
    this.lastError = { timeMs: this.#now(), message };
    this.#log.error(message, fields);
  }

  /**
   * `pending`: clusters to re-list whole, with why. `services`: per cluster, the services to read
   * again on their own (events about them); a cluster in both is re-listed whole.
   */
  async run(
    current: DaemonConfig,
    pending: ReadonlyMap<string, PokeReason>,
    startedMs: number,
    services: ReadonlyMap<string, ReadonlyMap<string, ServiceWhy>> = new Map(),
  ): Promise<void> {
    const { config } = current;
    const t0 = this.#now();
    const signal = this.#c.signal();
    let fresh = 0;
    const poked = new Set([...pending.keys(), ...services.keys()]);
    await Promise.all(
      [...poked].map(async (name) => {
        const watcher = this.#c.watcher(name);
        if (!watcher) return;
        let reason = pending.get(name);
        const work = services.get(name);
        let ids = work ? new Set(work.keys()) : undefined;
        const held = this.states.get(name);
        try {
          const ok = () => {
            this.#m.clusterUp.set({ cluster: name }, 1);
            if (this.readErrors.delete(name)) this.#log.info('cluster readable again', { cluster: name });
          };
          if (reason === undefined && work && held && lookFirst(work.size, held.state.services.length)) {
            const found = await watcher.detect(signal).catch((): { kind: 'full' } => ({ kind: 'full' }));
            if (found.kind === 'full') reason = 'event';
            else {
              ids = new Set(found.kind === 'services' ? found.ids : []);
              for (const [id, why] of work) if (why === 'known') ids.add(id);
              this.#m.relists.inc({ cluster: name, reason: 'reconcile' });
            }
          }
          if (reason === undefined && ids && held && !fullReadIsCheaper(ids.size, held.state.services.length)) {
            const patched = await this.#readServices(watcher, held, ids, config, signal);
            if (patched) {
              this.#m.serviceReads.inc({ cluster: name }, ids.size);
              // The state moved on from the last full read.
              watcher.forgetDigest();
              this.states.set(name, patched.held);
              if (patched.changed) {
                fresh++;
                this.#c.carbon()?.setClusterState(patched.held.state);
              }
              ok();
              return;
            }
          }
          const why = reason ?? 'event';
          // Unchanged raw lists (an idle reconcile): the state held is current, nothing to parse.
          const doc = why === 'reconcile' && held ? await watcher.readIfChanged(signal) : await watcher.read(signal);
          if (doc === undefined) {
            this.#m.relists.inc({ cluster: name, reason: why });
            ok();
            return;
          }
          const mapped = mapSnapshots([{ cluster: name, doc }], config);
          const state = mapped.states[0];
          if (state) {
            const shared = shareUnchanged(this.states.get(name), {
              state,
              diagnostics: mapped.diagnostics,
              raw: { ...(doc.networks ? { networks: doc.networks } : {}), ...(doc.nodes ? { nodes: doc.nodes } : {}) },
            });
            this.states.set(name, shared.held);
            if (shared.changed) {
              fresh++;
              this.#c.carbon()?.setClusterState(shared.held.state);
            }
          } else fresh++;
          this.#m.relists.inc({ cluster: name, reason: why });
          ok();
        } catch (error) {
          if (signal.aborted) return;
          this.#m.clusterUp.set({ cluster: name }, 0);
          const message = errorText(error);
          if (this.readErrors.get(name) !== message) {
            this.readErrors.set(name, message);
            const known = this.states.has(name);
            this.#log.warn(known ? 'cannot read cluster; keeping its last known state' : 'cannot read cluster', {
              cluster: name,
              error: message,
            });
          }
          this.lastError = { timeMs: this.#now(), message };
        }
      }),
    );
    if (this.#c.stopping()) return;
    this.#c.checkpoint?.();
    const tRead = this.#now();

    const names = Object.keys(config.clusters).filter((n) => this.states.has(n));
    const known = names.map((n) => this.states.get(n) as KnownState);
    const states = known.map((k) => k.state).sort((a, b) => a.cluster.localeCompare(b.cluster));
    // The policyFiles folder (users files, pages) is read at every cycle, reconciles included, so
    // a rotated users file or an edited page is served within one reconcile even when the cluster
    // did not change. It is small (at most 256 KiB a file).
    let policyFiles: Awaited<ReturnType<typeof readPolicyFiles>>;
    try {
      policyFiles = await readPolicyFiles(config, current.configDir);
    } catch (error) {
      this.fail(`cannot read the policyFiles folder: ${errorText(error)}`);
      return;
    }
    const policyKey = policyFilesKey(policyFiles);
    const policyChanged = policyKey !== this.#policyKey;
    // Nothing read and nothing else changed: the render would be the last one again.
    if (states.length === 0 || (fresh === 0 && !this.dirty && !policyChanged)) return;
    this.dirty = false;
    this.#policyKey = policyKey;

    let plan: ReturnType<typeof planRender>;
    try {
      plan = planRender(config, states, {
        ...(policyFiles ? { policyFiles } : {}),
        configDir: current.configDir,
        ...(this.#c.outDir ? { outDir: this.#c.outDir } : {}),
        templates: current.templates,
        ...(this.#c.acme ? { acmeCertificates: this.#c.acme.certificates() } : {}),
        routeCache: this.#routeCache,
      });
      if (plan.acmeHosts) this.#c.acme?.want(plan.acmeHosts);
    } catch (error) {
      this.fail(`render failed: ${errorText(error)}`);
      return;
    }
    this.#m.renders.inc();
    const tRender = this.#now();

    const ready: PlannedOutput[] = [];
    for (const o of plan.outputs) {
      const missing = clustersOf(config, o.output.clusters).filter((c) => !this.states.has(c));
      if (missing.length > 0) {
        const why = missing.join(',');
        if (this.#waitingFor.get(o.name) !== why) {
          this.#waitingFor.set(o.name, why);
          this.#log.warn('not writing output until its clusters have been read', { output: o.name, clusters: why });
        }
        continue;
      }
      this.#waitingFor.delete(o.name);
      ready.push(o);
    }
    const results = await Promise.all(
      ready.map(async (o) => {
        try {
          const result = o.output.write === false ? await this.#checkOnly(o) : await this.#c.applier.apply(o);
          if (o.output.serve && this.#c.serve && (result.kind === 'applied' || result.kind === 'unchanged'))
            await this.#c.serve(result.planned ?? o, current.configDir);
          return result;
        } catch (error) {
          return { kind: 'failed', stage: 'write', error: errorText(error) } as ApplyResult;
        }
      }),
    );
    const tApply = this.#now();
    for (const [i, o] of ready.entries()) this.#record(o, results[i] as ApplyResult, startedMs);
    // Services left out of an output (the proxy rejected their part, or their files are
    // broken) are reported like refused labels: once when it starts, once when it is over.
    const leftOut = results.flatMap((r) =>
      (r.kind === 'applied' || r.kind === 'unchanged') && r.leftOut ? r.leftOut.map((l) => l.diagnostic) : [],
    );
    this.#diagnosticsLog.report([...known.flatMap((k) => k.diagnostics), ...plan.diagnostics, ...leftOut]);
    this.#routeLog.report(config, states);
    this.#log.debug('cycle', {
      clusters: [...poked].join(','),
      read_ms: tRead - t0,
      render_ms: tRender - tRead,
      apply_ms: tApply - tRender,
      since_first_event_ms: tApply - startedMs,
    });
  }

  /**
   * Reads the given services again, a few at a time, and puts them in place in `held`.
   * Undefined when only a full re-list can say what a full re-list would (see patchServices).
   */
  async #readServices(
    watcher: ClusterWatcher,
    held: KnownState,
    ids: ReadonlySet<string>,
    config: Config,
    signal: AbortSignal,
  ): Promise<ReturnType<typeof patchServices>> {
    const queue = [...ids];
    const read = new Map<string, ServiceLists>();
    await Promise.all(
      Array.from({ length: Math.min(SERVICE_READS_IN_FLIGHT, queue.length) }, async () => {
        for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
          read.set(id, await watcher.readService(id, signal));
        }
      }),
    );
    // In the order asked: the result does not depend on which answer came first.
    const updates = new Map<string, ServiceLists>();
    for (const id of ids) updates.set(id, read.get(id) as ServiceLists);
    return patchServices(held, updates, config);
  }

  /**
   * A `write: false` output (served to agents only): checked by the proxy as if it were written,
   * with the same leaving-out of rejected services, but nothing is written or reloaded here.
   */
  async #checkOnly(o: PlannedOutput): Promise<ApplyResult> {
    const key = JSON.stringify(o.files);
    const last = this.#checked.get(o.name);
    if (last?.key === key) return last.result.kind === 'rejected' ? { ...last.result, repeated: true } : last.result;
    let result: ApplyResult;
    if (!this.#c.applier.prepare) result = { kind: 'unchanged', planned: o };
    else {
      const p = await this.#c.applier.prepare(o);
      result = p.ok
        ? { kind: 'unchanged', planned: p.planned, ...(p.leftOut.length > 0 ? { leftOut: p.leftOut } : {}) }
        : {
            kind: 'rejected',
            command: p.check.command,
            error: p.check.output || `${p.check.command} failed`,
            services: p.services,
            repeated: false,
          };
    }
    this.#checked.set(o.name, { key, result });
    return result;
  }

  #record(o: PlannedOutput, result: ApplyResult, startedMs: number): void {
    const now = this.#now();
    const previous = this.records.get(o.name) ?? { name: o.name, state: 'pending' as const };
    const label = { output: o.name };
    this.#m.routes.set(label, o.routes);
    const base = { ...previous, lastAttemptMs: now };
    switch (result.kind) {
      case 'unchanged': {
        this.records.set(o.name, {
          name: o.name,
          state: 'ok',
          lastAttemptMs: now,
          ...success(previous),
          ...leftOutOf(result),
          ...(previous.appliedBy ? { appliedBy: previous.appliedBy } : {}),
        });
        return;
      }
      case 'applied': {
        this.records.set(o.name, {
          name: o.name,
          state: 'ok',
          lastAttemptMs: now,
          lastSuccessMs: now,
          ...leftOutOf(result),
          ...appliedBy(result, now, previous),
        });
        const written = result.planned ?? o;
        if (result.files.some((f) => f.result !== 'unchanged')) this.#m.applies.inc(label);
        if (result.reload) this.#m.reloads.inc({ ...label, result: 'ok' });
        if (result.runtime) this.#m.runtimeUpdates.inc({ ...label, result: result.runtime.ok ? 'ok' : 'failed' });
        if (result.runtime && !result.runtime.ok)
          this.#log.warn('runtime update failed; reloaded instead', {
            output: o.name,
            reason: clip(result.runtime.reason),
          });
        this.#m.applyLatency.observe(label, (now - startedMs) / 1000);
        const main = o.files[o.files.length - 1];
        this.#log.info(result.retriedReload ? 'reloaded (retry)' : 'applied', {
          output: o.name,
          file: main?.path,
          routes: written.routes,
          backends: written.backends,
          refused: listField(written.refused),
          reload: result.runtime?.ok
            ? `none (runtime API, ${result.runtime.commands} command(s))`
            : (result.reload?.detail ?? (this.#c.outDir ? 'skipped (--out-dir)' : 'none configured')),
          ...(result.reloadReason ? { why_reload: result.reloadReason } : {}),
          ...(result.checkSkipped ? { check: CHECK_SKIPPED } : {}),
          ms: now - startedMs,
        });
        return;
      }
      case 'rejected': {
        this.records.set(o.name, { ...base, state: 'rejected', error: result.error, services: result.services });
        if (result.repeated) return;
        this.#m.validationFailures.inc(label);
        this.fail('proxy rejected the rendered config; keeping the last good one and not reloading', {
          output: o.name,
          command: result.command,
          services: listField(result.services) ?? 'unknown',
          error: clip(result.error),
        });
        return;
      }
      case 'failed': {
        this.records.set(o.name, { ...base, state: 'failed', error: result.error });
        // Retried on the next cycle even when no cluster can be read meanwhile.
        this.dirty = true;
        if (result.stage === 'reload') this.#m.reloads.inc({ ...label, result: 'failed' });
        const fields = { output: o.name, error: clip(result.error) };
        const message = result.stage === 'reload' ? 'reload failed; will retry' : 'write failed; will retry';
        // The same failure on every re-list (a proxy not started yet) is said once, then quietly.
        if (previous.state === 'failed' && previous.error === result.error) this.#log.debug(message, fields);
        else this.fail(message, fields);
        return;
      }
    }
  }
}

function leftOutOf(result: ApplyResult): Pick<OutputRecord, 'leftOut'> {
  if ((result.kind !== 'applied' && result.kind !== 'unchanged') || !result.leftOut) return {};
  return { leftOut: result.leftOut.map((l) => ({ service: l.service, reason: l.reason })) };
}

/** How the proxy took the change: through its runtime API, or by a reload. */
function appliedBy(
  result: ApplyResult & { kind: 'applied' },
  now: number,
  previous: OutputRecord,
): Pick<OutputRecord, 'appliedBy'> {
  if (result.runtime?.ok) return { appliedBy: { how: 'runtime', atMs: now } };
  if (result.reload) return { appliedBy: { how: 'reload', atMs: now } };
  return previous.appliedBy ? { appliedBy: previous.appliedBy } : {};
}

function success(previous: OutputRecord): { lastSuccessMs?: number } {
  return previous.lastSuccessMs === undefined ? {} : { lastSuccessMs: previous.lastSuccessMs };
}
