/**
 * `interlock agent`: runs beside one proxy and keeps it on the controller's bundle of one output.
 *
 * - Pull: asks at once on start (with the hash it runs), then long-polls: the controller answers
 *   when the hash changes. Any failure (controller away, wrong token, unknown output) → capped
 *   backoff and ask again; the proxy keeps its files meanwhile.
 * - A bundle is checked by the local proxy binary in a scratch folder (rebased there), then
 *   written under `dir` (TLS files, then maps, main file last, each atomically) and the proxy
 *   reloaded. A bundle the check rejects leaves the files as they are; the proxy's words go to the
 *   controller.
 * - The applied hash is kept in `dir/.interlock-agent.json`, so a restarted agent reports what its
 *   proxy runs and does not apply it again.
 * - Reports: every poll carries the applied hash, and the agent polls again as soon as it applied
 *   a bundle, so that poll is the report of a success. A refusal or a failure (and the first
 *   success after one) is also POSTed to /v1/reports with its error.
 * - Each problem is logged once when it starts (and once when it is over), not on every retry.
 */
import { readdirSync, rmSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, open, rm } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { agentSkipsCheck, CHECK_SKIPPED } from '../apply/apply.ts';
import { findBinary, proxyWords, run as runArgv } from '../apply/check-proxy.ts';
import { reloadProxy } from '../apply/reload.ts';
import { readIfExists, writeIfChanged, writeOutputFiles } from '../apply/write.ts';
import type { FileOutput } from '../config/schema.ts';
import { ACME_BUNDLE_DIR, ACME_FILE_NAME, type Bundle, parseBundle, rebase } from '../fleet/bundle.ts';
import { driverFor } from '../outputs/drivers.ts';
import { Backoff } from '../runtime/backoff.ts';
import type { Logger } from '../runtime/log.ts';

export const STATE_FILE = '.interlock-agent.json';

export type AgentCheck = { kind: 'binary'; path?: string } | { kind: 'command'; command: string[] } | { kind: 'none' };

export interface AgentOptions {
  /** http(s)://host:port of the controller's agents listener. */
  controller: string;
  token: string;
  output: string;
  /** Absolute folder the files go to. */
  dir: string;
  instance: string;
  node: string;
  check: AgentCheck;
  reload: NonNullable<FileOutput['reload']>;
  log: Logger;
  env: Readonly<Record<string, string | undefined>>;
  /** CA certificate(s) (PEM) to trust for an https controller. */
  ca?: string;
  /** Backoff tuning (tests). */
  backoff?: { initialMs?: number; maxMs?: number };
  /** How long one long-poll may take before the agent gives up on it (the controller's wait + margin). */
  pollTimeoutMs?: number;
}

interface Answer {
  status: number;
  body: Buffer;
}

export interface AgentStatus {
  applied: string | undefined;
  /** The last hash received, applied or not. */
  seen: string | undefined;
  error: string | undefined;
  connected: boolean;
}

export class Agent {
  readonly #o: AgentOptions;
  readonly #log: Logger;
  readonly #backoff: Backoff;
  readonly #client: typeof http | typeof https;
  readonly #httpAgent: http.Agent;
  #applied: string | undefined;
  #seen: string | undefined;
  #error: string | undefined;
  #proxy: string | undefined;
  /** The problem last logged, so each is said once. */
  #trouble: string | undefined;
  #stopping = false;
  #current: http.ClientRequest | undefined;
  #sleep: { timer: ReturnType<typeof setTimeout>; resolve: () => void } | undefined;
  #loop: Promise<void> | undefined;
  /** Bundles applied (tests, bench). */
  applies = 0;

  constructor(options: AgentOptions) {
    this.#o = options;
    this.#log = options.log;
    this.#backoff = new Backoff({
      initialMs: options.backoff?.initialMs ?? 250,
      maxMs: options.backoff?.maxMs ?? 10_000,
    });
    const url = new URL(options.controller);
    this.#client = url.protocol === 'https:' ? https : http;
    this.#httpAgent = new this.#client.Agent({
      keepAlive: true,
      maxSockets: 2,
      ...(options.ca ? { ca: options.ca } : {}),
    });
  }

  status(): AgentStatus {
    return { applied: this.#applied, seen: this.#seen, error: this.#error, connected: this.#trouble === undefined };
  }

  async start(): Promise<void> {
    const state = await readState(this.#o.dir, this.#o.output);
    this.#applied = state?.hash;
    this.#proxy = state?.kind;
    if (this.#applied)
      this.#log.info('proxy files in place; asking the controller for changes', {
        output: this.#o.output,
        dir: this.#o.dir,
        hash: this.#applied.slice(0, 12),
      });
    else
      this.#log.warn('no proxy files yet: the proxy has nothing to serve until the controller answers', {
        output: this.#o.output,
        dir: this.#o.dir,
      });
    this.#loop = this.#run();
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    this.#current?.destroy();
    if (this.#sleep) {
      clearTimeout(this.#sleep.timer);
      this.#sleep.resolve();
    }
    await this.#loop;
    this.#httpAgent.destroy();
  }

  #problem(key: string, message: string, fields: Record<string, string | undefined> = {}): void {
    if (this.#trouble === key) return;
    this.#trouble = key;
    this.#log.error(message, { output: this.#o.output, controller: this.#o.controller, ...fields });
  }

  #fine(): void {
    if (this.#trouble === undefined) return;
    this.#trouble = undefined;
    this.#log.info('controller answers again', { output: this.#o.output, controller: this.#o.controller });
  }

  async #run(): Promise<void> {
    while (!this.#stopping) {
      let answer: Answer;
      try {
        answer = await this.#poll();
      } catch (error) {
        if (this.#stopping) return;
        this.#problem(
          'unreachable',
          'controller unreachable; the proxy keeps its last good files, retrying with backoff',
          { error: (error as Error).message },
        );
        await this.#pause(this.#backoff.next());
        continue;
      }
      if (answer.status === 401) {
        this.#problem('token', 'the controller refused the token: check --token-file against agents.tokenFile');
        await this.#pause(this.#backoff.next());
        continue;
      }
      if (answer.status === 404) {
        this.#problem('output', 'the controller does not serve this output', {
          answer: answer.body.toString('utf8').trim().slice(0, 300),
        });
        await this.#pause(this.#backoff.next());
        continue;
      }
      if (answer.status === 304) {
        this.#fine();
        this.#backoff.reset();
        continue;
      }
      if (answer.status !== 200) {
        this.#problem(`http-${answer.status}`, `the controller answered HTTP ${answer.status}`);
        await this.#pause(this.#backoff.next());
        continue;
      }
      this.#fine();
      let bundle: Bundle;
      try {
        bundle = parseBundle(JSON.parse(answer.body.toString('utf8')));
      } catch (error) {
        this.#problem('bad-bundle', 'the controller sent a bundle this agent refuses', {
          error: (error as Error).message,
        });
        await this.#pause(this.#backoff.next());
        continue;
      }
      const ok = await this.#apply(bundle);
      if (ok === 'retry') {
        // A failed write or reload is retried: the next poll asks with the applied hash, so the
        // same bundle comes back at once, after a pause (not in a tight loop).
        this.#seen = this.#applied;
        await this.#pause(this.#backoff.next());
      } else this.#backoff.reset();
    }
  }

  #pause(ms: number): Promise<void> {
    if (this.#stopping) return Promise.resolve();
    return new Promise((resolve) => {
      this.#sleep = {
        timer: setTimeout(() => {
          this.#sleep = undefined;
          resolve();
        }, ms),
        resolve,
      };
    });
  }

  #poll(): Promise<Answer> {
    const url = new URL(`/v1/bundles/${encodeURIComponent(this.#o.output)}`, this.#o.controller);
    url.searchParams.set('after', this.#seen ?? this.#applied ?? '');
    url.searchParams.set('applied', this.#applied ?? '');
    url.searchParams.set('instance', this.#o.instance);
    url.searchParams.set('node', this.#o.node);
    if (this.#proxy) url.searchParams.set('proxy', this.#proxy);
    return this.#request('GET', url, undefined, this.#o.pollTimeoutMs ?? 90_000);
  }

  #request(method: string, url: URL, body: string | undefined, timeoutMs: number): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = this.#client.request(
        url,
        {
          method,
          agent: this.#httpAgent,
          headers: {
            authorization: `Bearer ${this.#o.token}`,
            'accept-encoding': 'gzip',
            ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          },
          timeout: timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (b: Buffer) => chunks.push(b));
          res.on('error', reject);
          res.on('end', () => {
            try {
              const raw = Buffer.concat(chunks);
              const gz = res.headers['content-encoding'] === 'gzip';
              resolve({ status: res.statusCode ?? 0, body: gz ? gunzipSync(raw) : raw });
            } catch (error) {
              reject(error);
            }
          });
        },
      );
      this.#current = req;
      req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  async #report(): Promise<void> {
    const url = new URL('/v1/reports', this.#o.controller);
    const body = JSON.stringify({
      instance: this.#o.instance,
      node: this.#o.node,
      output: this.#o.output,
      proxy: this.#proxy,
      applied: this.#applied ?? '',
      error: this.#error ?? '',
    });
    try {
      await this.#request('POST', url, body, 10_000);
    } catch (error) {
      // The next poll carries the applied hash anyway.
      this.#log.debug('report not delivered', { error: (error as Error).message });
    }
  }

  /** Checks, writes and reloads one bundle. 'retry' when the reload failed. */
  async #apply(bundle: Bundle): Promise<'done' | 'retry'> {
    const output = this.#o.output;
    this.#seen = bundle.hash;
    this.#proxy = bundle.kind;
    if (bundle.hash === this.#applied && this.#error === undefined) return 'done';
    const short = bundle.hash.slice(0, 12);
    const files = rebase(bundle, this.#o.dir);
    // As the controller does (src/apply/apply.ts): HAProxy files that differ from the ones this
    // proxy checked and runs only in servers and map entries of shapes it accepted need no check.
    const skip =
      driverFor({ kind: bundle.kind } as FileOutput).runtimeApi &&
      this.#o.check.kind === 'binary' &&
      this.#applied !== undefined &&
      (await agentSkipsCheck(files).catch(() => false));
    const check = skip ? { ok: true, output: '', command: 'none' } : await this.#check(bundle);
    if (!check.ok) {
      const changed = this.#error !== check.output;
      this.#error = check.output || `${check.command} failed`;
      if (changed)
        this.#log.error('the local proxy rejected the bundle; keeping the last good files', {
          output,
          hash: short,
          command: check.command,
          error: this.#error.slice(0, 2000),
        });
      await this.#report();
      return 'done';
    }
    const main = files[files.length - 1]?.path as string;
    const fileOutput = { kind: bundle.kind, file: main, reload: this.#o.reload } as unknown as FileOutput;
    try {
      for (const d of bundle.dirs ?? []) await mkdir(path.join(this.#o.dir, d), { recursive: true });
      for (const f of files.filter((x) => x.secret)) await writeSecret(f.path, f.content);
      await writeOutputFiles(
        fileOutput,
        files.filter((x) => !x.secret),
      );
    } catch (error) {
      const text = `cannot write ${this.#o.dir}: ${(error as Error).message}`;
      if (this.#error !== text) this.#log.error('cannot write the proxy files; will retry', { output, error: text });
      this.#error = text;
      await this.#report();
      return 'retry';
    }
    const reload = await reloadProxy(fileOutput, {});
    if (!reload.ok) {
      const error = `reload failed: ${reload.detail}`;
      if (this.#error !== error)
        this.#log.error('reload failed; will retry', { output, hash: short, error: reload.detail });
      this.#error = error;
      await this.#report();
      return 'retry';
    }
    this.#applied = bundle.hash;
    const recovered = this.#error !== undefined;
    this.#error = undefined;
    this.applies++;
    await writeState(this.#o.dir, { output, hash: bundle.hash, kind: bundle.kind });
    removeReplacedAcme(this.#o.dir, files);
    this.#log.info('applied', {
      output,
      hash: short,
      files: bundle.files.length,
      reload: reload.detail,
      ...(skip ? { check: CHECK_SKIPPED } : {}),
    });
    // The next poll, sent at once, carries the applied hash: a report is only needed to clear an
    // error the controller shows (one request per change instead of two, on both sides).
    if (recovered) await this.#report();
    return 'done';
  }

  /** The bundle rebased into a scratch folder and checked there by the local proxy (or command). */
  async #check(bundle: Bundle): Promise<{ ok: boolean; output: string; command: string }> {
    const check = this.#o.check;
    if (check.kind === 'none') return { ok: true, output: '', command: 'none' };
    const scratch = await mkdtemp(path.join(tmpdir(), `interlock-agent-${process.pid}-`));
    try {
      const files = rebase(bundle, scratch);
      for (const f of files) await writeIfChanged(f.path, f.content);
      // `nginx -t` opens the pid file and temp paths of its run folder
      for (const d of bundle.dirs ?? []) await mkdir(path.join(scratch, d), { recursive: true });
      const main = files[files.length - 1]?.path as string;
      let argv: string[];
      if (check.kind === 'command') argv = check.command.map((a) => a.replaceAll('{file}', main));
      else {
        const binary = check.path ?? (await findBinary(bundle.kind, this.#o.env));
        if (!binary)
          return {
            ok: false,
            output: `${bundle.kind} is not installed here, so the bundle cannot be checked (give --proxy-binary)`,
            command: bundle.kind,
          };
        argv = driverFor({ kind: bundle.kind } as FileOutput).checkArgv(binary, main, scratch);
      }
      const r = await runArgv(argv, scratch);
      const words = proxyWords(r.output.replaceAll(`${scratch}/`, '').replaceAll(scratch, this.#o.dir));
      return { ok: r.code === 0, output: words, command: argv.join(' ').replaceAll(scratch, this.#o.dir) };
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }
}

/** A key file is created 0600 before its content goes in (a replaced file keeps its mode). */
async function writeSecret(file: string, content: string): Promise<void> {
  if ((await readIfExists(file)) === undefined) {
    await mkdir(path.dirname(file), { recursive: true });
    const h = await open(file, 'wx', 0o600).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'EEXIST') return undefined;
      throw e;
    });
    await h?.chmod(0o600);
    await h?.close();
  }
  await writeIfChanged(file, content);
}

/** The proxy kinds an agent's saved state may name (read back from its own file). */
const PROXY_KINDS = ['haproxy', 'nginx'] as const;

interface SavedState {
  output: string;
  hash: string;
  kind: 'haproxy' | 'nginx';
}

export async function readState(dir: string, output: string): Promise<SavedState | undefined> {
  try {
    const text = await readIfExists(path.join(dir, STATE_FILE));
    if (text === undefined) return undefined;
    const s = JSON.parse(text) as Partial<SavedState>;
    if (s.output !== output || typeof s.hash !== 'string' || !/^[0-9a-f]{64}$/.test(s.hash)) return undefined;
    return { output, hash: s.hash, kind: PROXY_KINDS.find((k) => k === s.kind) ?? 'haproxy' };
  } catch {
    return undefined;
  }
}

async function writeState(dir: string, state: SavedState): Promise<void> {
  await writeIfChanged(path.join(dir, STATE_FILE), `${JSON.stringify(state)}\n`);
}

/**
 * After a reload, the ACME certificate copies the bundle no longer carries (a renewal named a new
 * file) are removed: no old keys pile up on proxy nodes. Only the issuer's file names are touched.
 */
function removeReplacedAcme(dir: string, files: readonly { path: string }[]): void {
  const acmeDir = path.join(dir, ACME_BUNDLE_DIR);
  let names: string[];
  try {
    // Most proxies have no ACME certificates: no folder, no exception to pay for.
    if (!statSync(acmeDir, { throwIfNoEntry: false })?.isDirectory()) return;
    names = readdirSync(acmeDir);
  } catch {
    return;
  }
  const kept = new Set(files.map((f) => path.resolve(f.path)));
  for (const name of names)
    if (ACME_FILE_NAME.test(name) && !kept.has(path.join(acmeDir, name)))
      rmSync(path.join(acmeDir, name), { force: true });
}
