/**
 * The ACME issuer: the one place that orders certificates, for every proxy this controller feeds
 * (on one host or, through the fleet's bundles, on many). Built on acme-client (RFC 8555).
 *
 * - One certificate per host, so a host the CA refuses affects no other.
 * - One order at a time, for all hosts: no two orders for a host, and the last ACME error
 *   response seen is the one of the order that failed (its Retry-After, its problem type).
 * - No duplicate across restarts: a stored certificate with more than a third of its lifetime
 *   left is used as it is; an order in flight is saved (its URL and its key) before its challenge
 *   is answered, and fetched again after a restart instead of ordering anew. When the resumed
 *   order turns invalid (the stopped process had answered the challenge and the CA's validation
 *   failed, the old responder gone), one new order follows at once: that failure is interlock's.
 * - Renewal when less than a third of the lifetime remains (day 60 of Let's Encrypt's 90).
 * - A failure keeps the old certificate (or the default one, before the first), says the host
 *   and the ACME error, and waits: capped exponential backoff from `acme.retry.min`, never less
 *   than the server's Retry-After, and at least an hour after a rate-limit error.
 * - Keys go to files (0600, atomic) and nowhere else: not to logs, /healthz or /metrics.
 */
import { Agent } from 'node:https';
import path from 'node:path';
import * as acme from 'acme-client';
import { Gauge, type Registry } from 'prom-client';
import { type Duration, parseDuration } from '../config/duration.ts';
import { ACME_DIRECTORIES, type AcmeConfig } from '../config/schema.ts';
import type { Logger } from '../runtime/log.ts';
import { ChallengeResponder } from './responder.ts';
import { type AcmeState, AcmeStore, type HostState } from './store.ts';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/** The longest the issuer sleeps without looking again (clock jumps, long waits). */
const MAX_SLEEP_MS = HOUR_MS;
const RATE_LIMITED = 'urn:ietf:params:acme:error:rateLimited';

export interface CertificateInfo {
  file: string;
  issuer: string;
  notBeforeMs: number;
  notAfterMs: number;
}

/** One certificate as /healthz shows it (and `interlock status` prints it). Never a key. */
export interface CertificateStatus {
  /** The names it covers (one host per certificate). */
  hosts: string[];
  /** `valid`, `renewing` (due, being ordered), `pending` (none yet), `failing` (last attempt failed), `expired`. */
  state: 'valid' | 'renewing' | 'pending' | 'failing' | 'expired';
  issuer: string | null;
  notAfter: string | null;
  /** When it will be renewed (two thirds into its lifetime). */
  nextRenewal: string | null;
  lastError: { time: string; message: string } | null;
  /** With a failure: not retried before this time. */
  nextAttempt: string | null;
}

export interface AcmeIssuerOptions {
  config: AcmeConfig;
  configDir: string;
  log: Logger;
  /** The issued certificates changed: render again. */
  onChange: () => void;
  now?: () => number;
  /** Where `interlock_acme_certificate_expiry_days` is registered. */
  registry?: Registry;
}

/** The ACME error seen last (one order at a time makes it the failing order's). */
interface Problem {
  status: number;
  type?: string;
  detail?: string;
  retryAfterMs?: number;
}

export function directoryUrl(directory: string): string {
  return (ACME_DIRECTORIES as Record<string, string>)[directory] ?? directory;
}

/** When a certificate is due: a third of its lifetime left. */
export function renewAtMs(info: { notBeforeMs: number; notAfterMs: number }): number {
  return info.notBeforeMs + ((info.notAfterMs - info.notBeforeMs) * 2) / 3;
}

/** Retry-After: seconds, or an HTTP date. */
export function parseRetryAfter(value: unknown, nowMs: number): number | undefined {
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

/** How long to wait after the n-th failure in a row. */
export function retryDelayMs(
  failures: number,
  retry: { minMs: number; maxMs: number },
  problem: { type?: string; retryAfterMs?: number } | undefined,
): number {
  const backoff = Math.min(retry.minMs * 2 ** Math.max(0, failures - 1), retry.maxMs);
  const floor =
    problem?.type === RATE_LIMITED ? Math.max(problem.retryAfterMs ?? 0, HOUR_MS) : (problem?.retryAfterMs ?? 0);
  return Math.max(backoff, floor);
}

let lastProblem: Problem | undefined;
let intercepting = false;

/** Keeps the status, problem type and Retry-After of ACME error responses, which acme-client's errors drop. */
function interceptProblems(now: () => number): void {
  if (intercepting) return;
  intercepting = true;
  const record = (response: { status?: number; headers?: Record<string, unknown>; data?: unknown } | undefined) => {
    if (!response || (response.status ?? 0) < 400) return;
    const data = (response.data ?? {}) as { type?: unknown; detail?: unknown };
    lastProblem = {
      status: response.status ?? 0,
      ...(typeof data.type === 'string' ? { type: data.type } : {}),
      ...(typeof data.detail === 'string' ? { detail: data.detail } : {}),
      ...(() => {
        const ms = parseRetryAfter(response.headers?.['retry-after'], now());
        return ms === undefined ? {} : { retryAfterMs: ms };
      })(),
    };
  };
  const fulfilled = <R extends { status?: number }>(response: R): R => {
    record(response as Parameters<typeof record>[0]);
    return response;
  };
  const rejected = (error: { response?: Parameters<typeof record>[0]; code?: string; message?: string }) => {
    if (error.response) record(error.response);
    // No answer at all (refused, timed out): say so; acme-client's own handler, which runs next,
    // turns this error into "Cannot read properties of undefined".
    else lastProblem = { status: 0, detail: `no answer from the ACME server: ${error.message ?? error.code}` };
    throw error;
  };
  // Ahead of acme-client's own interceptor (axios runs them in order): it loses the error.
  const handlers = (acme.axios.interceptors.response as unknown as { handlers?: unknown[] }).handlers;
  if (Array.isArray(handlers)) handlers.unshift({ fulfilled, rejected, synchronous: false, runWhen: null });
  else acme.axios.interceptors.response.use(fulfilled, rejected);
  // acme-client would sleep out a Retry-After itself (hours, when rate limited) inside the order:
  // the issuer's own backoff waits instead, between orders.
  (acme.axios.defaults as unknown as { acmeSettings: { retryMaxAttempts: number } }).acmeSettings.retryMaxAttempts = 0;
}

export class AcmeIssuer {
  readonly #o: AcmeIssuerOptions;
  readonly #now: () => number;
  readonly #store: AcmeStore;
  readonly #responder = new ChallengeResponder();
  readonly #log: Logger;
  readonly #certs = new Map<string, CertificateInfo>();
  #wanted: string[] = [];
  #state: AcmeState = { version: 1, accounts: {}, hosts: {} };
  #client: acme.Client | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;
  #current: string | undefined;

  constructor(options: AcmeIssuerOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#log = options.log.child({ component: 'acme' });
    this.#store = new AcmeStore(path.resolve(options.configDir, options.config.storage));
    if (options.registry) {
      const issuer = this;
      new Gauge({
        name: 'interlock_acme_certificate_expiry_days',
        help: 'Days until the ACME certificate of a host expires (negative: expired)',
        labelNames: ['certificate'],
        registers: [options.registry],
        collect() {
          this.reset();
          for (const [host, info] of issuer.#certs) {
            this.set({ certificate: host }, Math.round(((info.notAfterMs - issuer.#now()) / DAY_MS) * 100) / 100);
          }
        },
      });
    }
  }

  /** Reads the storage (certificates issued before a restart are served at once) and starts the responder. */
  async start(): Promise<void> {
    interceptProblems(this.#now);
    const caFile = this.#o.config.caFile;
    if (caFile) {
      const ca = await this.#store.read(path.resolve(this.#o.configDir, caFile));
      if (ca === undefined) throw new Error(`acme.caFile ${caFile} does not exist`);
      acme.axios.defaults.httpsAgent = new Agent({ ca });
    }
    await this.#store.init();
    this.#state = await this.#store.readState();
    // The newest certificate of each host is served; older ones (a crash before their removal) go.
    for (const [host, files] of await this.#store.certFiles()) {
      for (const file of files) await this.#load(host, file);
      const kept = this.#certs.get(host)?.file;
      for (const file of files) if (file !== kept) await this.#store.remove(file);
    }
    const c = this.#o.config.challenge;
    await this.#responder.listen(c.address, c.port);
    this.#log.info('ACME issuer started', {
      directory: directoryUrl(this.#o.config.directory),
      storage: this.#store.dir,
      certificates: this.#certs.size,
      responder: `${c.address}:${c.port}`,
    });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#running;
    await this.#responder.close();
  }

  /** The hosts the last render wants certificates for. */
  want(hosts: readonly string[]): void {
    const next = [...hosts].sort();
    if (next.join(',') === this.#wanted.join(',')) return;
    this.#wanted = next;
    this.#kick();
  }

  /** Host → certificate file, for every host with a certificate on disk. */
  certificates(): ReadonlyMap<string, string> {
    return new Map([...this.#certs].map(([host, info]) => [host, info.file]));
  }

  status(): CertificateStatus[] {
    const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());
    const now = this.#now();
    return this.#wanted.map((host) => {
      const info = this.#certs.get(host);
      const st = this.#state.hosts[host] ?? {};
      const failing = st.lastError !== undefined;
      const state: CertificateStatus['state'] = !info
        ? failing
          ? 'failing'
          : 'pending'
        : info.notAfterMs <= now
          ? 'expired'
          : failing
            ? 'failing'
            : now >= renewAtMs(info)
              ? 'renewing'
              : 'valid';
      return {
        hosts: [host],
        state,
        issuer: info?.issuer ?? null,
        notAfter: iso(info?.notAfterMs),
        nextRenewal: info ? iso(Math.max(renewAtMs(info), st.nextAttemptMs ?? 0)) : null,
        lastError: st.lastError
          ? { time: new Date(st.lastError.timeMs).toISOString(), message: st.lastError.message }
          : null,
        nextAttempt: failing ? iso(st.nextAttemptMs) : null,
      };
    });
  }

  // ---------- the work loop ----------

  #kick(): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#running = this.#loop().finally(() => {
      this.#running = undefined;
      this.#schedule();
    });
  }

  async #loop(): Promise<void> {
    do {
      this.#again = false;
      for (const host of this.#wanted) {
        if (this.#stopped) return;
        if (this.#dueAt(host) > this.#now()) continue;
        await this.#attempt(host);
      }
    } while (this.#again && !this.#stopped);
  }

  /** When a host's next order may start: now for a missing certificate, at renewal time, after the backoff. */
  #dueAt(host: string): number {
    const info = this.#certs.get(host);
    const notBefore = this.#state.hosts[host]?.nextAttemptMs ?? 0;
    return Math.max(info ? renewAtMs(info) : 0, notBefore);
  }

  #schedule(): void {
    if (this.#stopped || this.#wanted.length === 0) return;
    const next = Math.min(...this.#wanted.map((h) => this.#dueAt(h)));
    const wait = Math.min(Math.max(next - this.#now(), 1_000), MAX_SLEEP_MS);
    this.#timer = setTimeout(() => this.#kick(), wait);
    this.#timer.unref?.();
  }

  async #attempt(host: string): Promise<void> {
    const st: HostState = this.#state.hosts[host] ?? {};
    this.#state.hosts[host] = st;
    lastProblem = undefined;
    this.#current = host;
    const had = this.#certs.get(host);
    try {
      await this.#issue(host, st);
      st.failures = 0;
      delete st.lastError;
      delete st.nextAttemptMs;
      await this.#store.writeState(this.#state);
      const info = this.#certs.get(host);
      this.#log.info(had ? 'ACME certificate renewed' : 'ACME certificate issued', {
        host,
        issuer: info?.issuer,
        not_after: info ? new Date(info.notAfterMs).toISOString() : undefined,
      });
      this.#o.onChange();
    } catch (error) {
      const problem = lastProblem as Problem | undefined;
      const message = errorMessage(error, problem);
      st.failures = (st.failures ?? 0) + 1;
      const wait = retryDelayMs(
        st.failures,
        { minMs: durationMs(this.#o.config.retry.min), maxMs: durationMs(this.#o.config.retry.max) },
        problem,
      );
      st.lastError = { timeMs: this.#now(), message };
      st.nextAttemptMs = this.#now() + wait;
      // An order the server calls invalid is over: the next attempt starts a new one.
      if (/invalid|expired|not found|404/i.test(message) || problem?.status === 404) {
        delete st.order;
      }
      await this.#store.writeState(this.#state).catch(() => undefined);
      this.#log.warn(
        had
          ? 'ACME order failed; the host keeps its current certificate'
          : 'ACME order failed; the host is served with the default certificate meanwhile',
        { host, error: message, retry_at: new Date(st.nextAttemptMs).toISOString(), failures: st.failures },
      );
    } finally {
      this.#current = undefined;
    }
  }

  async #account(): Promise<acme.Client> {
    if (this.#client) return this.#client;
    const { config } = this.#o;
    const url = directoryUrl(config.directory);
    let key = await this.#store.read(this.#store.accountKeyFile);
    if (key === undefined) {
      key = (await acme.crypto.createPrivateEcdsaKey('P-256')).toString();
      await this.#store.write(this.#store.accountKeyFile, key);
    }
    const known = this.#state.accounts[url]?.url;
    const client = new acme.Client({
      directoryUrl: url,
      accountKey: key,
      ...(known ? { accountUrl: known } : {}),
      ...(config.externalAccountBinding ? { externalAccountBinding: config.externalAccountBinding } : {}),
      backoffAttempts: 10,
      backoffMin: 1_000,
      backoffMax: 10_000,
    });
    if (!known) {
      // Registering an existing key returns its account: this is safe to repeat.
      await client.createAccount({
        termsOfServiceAgreed: true,
        ...(config.email ? { contact: [`mailto:${config.email}`] } : {}),
      });
      this.#state.accounts[url] = { url: client.getAccountUrl() };
      await this.#store.writeState(this.#state);
    }
    this.#client = client;
    return client;
  }

  async #issue(host: string, st: HostState): Promise<void> {
    const client = await this.#account();
    const keyFile = this.#store.orderKeyFile(host);
    let order: acme.Order | undefined;
    if (st.order) {
      try {
        order = await client.getOrder({ url: st.order.url } as acme.Order);
        if (order.status === 'invalid') {
          // ACME never revives an invalid order. This happens when interlock stopped while the CA
          // was validating: the responder was gone, the challenge failed. One new order replaces it.
          this.#log.warn('ACME order in flight became invalid while interlock was down; ordering again', {
            host,
            error: await invalidReason(client, order),
          });
          order = undefined;
        } else {
          this.#log.info('ACME order resumed', { host, status: order.status });
        }
      } catch (error) {
        this.#log.info('ACME order in flight is gone; ordering again', {
          host,
          error: errorMessage(error, lastProblem),
        });
        order = undefined;
      }
    }
    let resumed = order !== undefined;
    let key = order ? await this.#store.read(keyFile) : undefined;
    for (;;) {
      if (!order || key === undefined) {
        key = (await acme.crypto.createPrivateEcdsaKey('P-256')).toString();
        await this.#store.write(keyFile, key);
      }
      if (!order) {
        order = await client.createOrder({ identifiers: [{ type: 'dns', value: host }] });
        st.order = { url: order.url, createdMs: this.#now() };
        await this.#store.writeState(this.#state);
        this.#log.info('ACME order created', { host });
      }
      try {
        order = await this.#complete(client, host, order, key);
        break;
      } catch (error) {
        // A resumed order that the CA makes invalid now: the stopped process had answered its
        // challenge and the CA was still validating (HAProxy retries a dead responder for a few
        // seconds) when this process took over, against a responder that was gone or did not yet
        // know the token; the CA can also report it only when the order is finalized. That
        // failure is interlock's own doing, not the host's: one new order, now, rather than
        // waiting out the retry delay (an hour, say). A new order that fails is an ordinary
        // failure, so a host the CA refuses costs at most one extra order per restart.
        if (!resumed) throw error;
        resumed = false;
        const current = await client.getOrder(order).catch(() => undefined);
        if (current?.status !== 'invalid') throw error;
        this.#log.warn('ACME order in flight became invalid while interlock was down; ordering again', {
          host,
          error: await invalidReason(client, current),
        });
        order = undefined;
      }
    }
    const chain = await client.getCertificate(order);
    // The proxies read one file: the chain (leaf first), then the key.
    const pem = `${chain.trimEnd()}\n${key.trimEnd()}\n`;
    const file = this.#store.certFile(host, pem);
    await this.#store.write(file, pem);
    delete st.order;
    await this.#store.writeState(this.#state);
    await this.#store.remove(keyFile);
    const old = this.#certs.get(host)?.file;
    this.#certs.delete(host);
    await this.#load(host, file);
    // The proxies read the old file until their reload: remove it a minute later.
    if (old && old !== file) setTimeout(() => void this.#store.remove(old).catch(() => undefined), 60_000).unref();
  }

  /** Takes an order to `valid`: its challenges answered and validated, then finalized with `key`. */
  async #complete(client: acme.Client, host: string, order: acme.Order, key: string): Promise<acme.Order> {
    let current = order;
    if (current.status === 'pending') {
      await this.#authorize(client, host, current);
      current = await client.getOrder(current);
    }
    if (current.status === 'ready') {
      const [, csr] = await acme.crypto.createCsr({ commonName: host, altNames: [host] }, key);
      current = await client.finalizeOrder(current, csr);
    }
    if (current.status !== 'valid') current = await client.waitForValidStatus(current);
    return current;
  }

  /** Answers the order's http-01 challenges and waits until the CA has validated each authorization. */
  async #authorize(client: acme.Client, host: string, order: acme.Order): Promise<void> {
    for (const authz of await client.getAuthorizations(order)) {
      if (authz.status === 'valid') continue;
      const challenge = authz.challenges.find((c) => c.type === 'http-01');
      if (!challenge) throw new Error(`the ACME server offers no http-01 challenge for ${host}`);
      const keyAuthorization = await client.getChallengeKeyAuthorization(challenge);
      this.#responder.set(challenge.token, keyAuthorization);
      try {
        if (challenge.status === 'pending') await client.completeChallenge(challenge);
        await client.waitForValidStatus(authz);
      } finally {
        this.#responder.delete(challenge.token);
      }
    }
  }

  /** Reads a certificate file; it becomes the host's when it expires later than the one known. */
  async #load(host: string, file: string): Promise<void> {
    const pem = await this.#store.read(file);
    if (pem === undefined) return;
    try {
      const info = acme.crypto.readCertificateInfo(pem);
      const known = this.#certs.get(host);
      if (known && known.notAfterMs >= info.notAfter.getTime()) return;
      this.#certs.set(host, {
        file,
        issuer: info.issuer.commonName,
        notBeforeMs: info.notBefore.getTime(),
        notAfterMs: info.notAfter.getTime(),
      });
    } catch (error) {
      this.#log.warn('unreadable certificate in the ACME storage; ordering a new one', {
        host,
        file,
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }

  /** The host being ordered right now, if any (for tests and logs). */
  get busy(): string | undefined {
    return this.#current;
  }
}

function durationMs(d: Duration): number {
  return parseDuration(d) ?? 0;
}

/** Why an order is invalid, from its failed challenge (one line), or a plain word when the CA gives none. */
async function invalidReason(client: acme.Client, order: acme.Order): Promise<string> {
  try {
    for (const authz of await client.getAuthorizations(order)) {
      const reason = challengeError(authz);
      if (reason) return reason.replace(/\s+/g, ' ').slice(0, 500);
    }
  } catch {
    // The reason is only for the log line.
  }
  return 'the CA reports the order invalid';
}

/** The ACME problem (type and detail) when there is one, else the error's message; never more than a line. */
export function errorMessage(error: unknown, problem: Problem | undefined): string {
  if (problem?.status === 0 && problem.detail) return problem.detail.replace(/\s+/g, ' ').slice(0, 500);
  const raw = error instanceof Error ? error.message : String(error);
  // acme-client reports an invalid authorization or order as its JSON: say the challenge's error instead.
  const base = challengeErrorIn(raw) ?? raw;
  const type = problem?.type ? `${problem.type.replace('urn:ietf:params:acme:error:', 'acme:')}: ` : '';
  const text =
    type && problem?.detail && !base.includes(problem.detail) ? `${type}${problem.detail} (${base})` : `${type}${base}`;
  return text.replace(/\s+/g, ' ').slice(0, 500);
}

/** The first challenge error of an ACME authorization or order given as JSON (in a message), as `acme:type detail`. */
function challengeErrorIn(message: string): string | undefined {
  const start = message.indexOf('{');
  if (start < 0) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(message.slice(start));
  } catch {
    return undefined;
  }
  return challengeError(value);
}

function challengeError(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as { error?: unknown; challenges?: unknown };
  const candidates = [...(Array.isArray(v.challenges) ? v.challenges : []), v];
  for (const c of candidates) {
    const e = (c as { error?: { type?: unknown; detail?: unknown } } | null)?.error;
    if (e && typeof e.detail === 'string') {
      const t = typeof e.type === 'string' ? e.type.replace('urn:ietf:params:acme:error:', 'acme:') : '';
      return `${t} ${e.detail}`.trim();
    }
  }
  return undefined;
}
