/**
 * The controller's side of the fleet: the bundles of the served outputs, held in memory, and the
 * listener agents talk to (`agents.listen`, HTTP or HTTPS).
 *
 *   GET  /v1/bundles/<output>?after=<hash>&instance=&node=&proxy=
 *        200 + the bundle (JSON, gzip when asked) at once when the current hash differs from
 *        `after`; else held open until it changes, or `agents.wait` passes → 304.
 *   POST /v1/reports   {instance, node, output, proxy, applied, error} → 204
 *
 * Every request needs `Authorization: Bearer <token>` (the token file's content). A wrong or
 * missing token → 401, and the claimed identity is listed as `unauthorized` in the fleet status.
 * The token is compared in constant time and never logged. The bundle is built and compressed
 * once per change, whatever the number of agents.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { Gauge } from 'prom-client';
import type { Logger } from '../runtime/log.ts';
import type { Metrics } from '../runtime/metrics.ts';
import type { ListenAddress } from '../watch/http-server.ts';
import type { Bundle } from './bundle.ts';
import { type AgentIdentity, type AgentView, clean, FleetState } from './state.ts';

interface Served {
  bundle: Bundle;
  body: Buffer;
  gzip: Buffer;
  sinceMs: number;
}

interface Waiter {
  after: string;
  wake: () => void;
}

export interface FleetHealth {
  /** Per served output: the hash agents should run, and since when. */
  outputs: Record<string, { hash: string | null; since: string | null; bytes: number; gzipBytes: number }>;
  list: AgentView[];
}

export interface FleetOptions {
  token: string;
  waitMs: number;
  staleMs: number;
  log: Logger;
  metrics?: Metrics;
  now?: () => number;
}

/** The served bundles and what the agents said. */
export class FleetHub {
  readonly #served = new Map<string, Served>();
  readonly #waiters = new Map<string, Set<Waiter>>();
  /** Outputs the config serves (a bundle may not exist yet). */
  #outputs: string[] = [];
  readonly state: FleetState;
  readonly #tokenDigest: Buffer;
  readonly #o: FleetOptions;
  readonly #now: () => number;
  /** Bytes of bundle bodies sent, for the bench. */
  bytesSent = 0;

  constructor(options: FleetOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#tokenDigest = createHash('sha256').update(options.token).digest();
    this.state = new FleetState({ staleMs: options.staleMs });
    if (options.metrics) this.#registerMetrics(options.metrics);
  }

  get waitMs(): number {
    return this.#o.waitMs;
  }

  #registerMetrics(metrics: Metrics): void {
    const hub = this;
    new Gauge({
      name: 'interlock_agents',
      help: 'Agents seen, per served output and state (converged, not_converged, stale, unauthorized)',
      labelNames: ['output', 'state'],
      registers: [metrics.registry],
      collect() {
        this.reset();
        for (const c of hub.state.counts(hub.#outputs, (o) => hub.current(o), hub.#now()))
          this.set({ output: c.output, state: c.state }, c.count);
      },
    });
  }

  /** True when `header` carries the token (constant time: both sides are hashed first). */
  authorized(header: string | undefined): boolean {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
    if (!m) return false;
    return timingSafeEqual(
      createHash('sha256')
        .update(m[1] as string)
        .digest(),
      this.#tokenDigest,
    );
  }

  /** The outputs the config serves: bundles of others are dropped and their waiters answered. */
  setOutputs(names: readonly string[]): void {
    this.#outputs = [...names].sort();
    for (const name of [...this.#served.keys()]) if (!names.includes(name)) this.#served.delete(name);
    for (const [name, waiters] of this.#waiters) if (!names.includes(name)) for (const w of waiters) w.wake();
  }

  serves(output: string): boolean {
    return this.#outputs.includes(output);
  }

  current(output: string): string | undefined {
    return this.#served.get(output)?.bundle.hash;
  }

  served(output: string): Served | undefined {
    return this.#served.get(output);
  }

  /** A new bundle for an output: waiting agents whose hash differs are answered now. */
  publish(bundle: Bundle): boolean {
    const before = this.#served.get(bundle.output);
    if (before?.bundle.hash === bundle.hash) return false;
    const body = Buffer.from(JSON.stringify(bundle));
    this.#served.set(bundle.output, { bundle, body, gzip: gzipSync(body), sinceMs: this.#now() });
    this.#o.log.info('serving output to agents', {
      output: bundle.output,
      hash: bundle.hash.slice(0, 12),
      files: bundle.files.length,
      bytes: body.length,
      waiting: this.#waiters.get(bundle.output)?.size ?? 0,
    });
    for (const w of [...(this.#waiters.get(bundle.output) ?? [])]) if (w.after !== bundle.hash) w.wake();
    return true;
  }

  /** Resolves when the output's hash differs from `after`, or after `waitMs`; `abort` ends it early. */
  wait(output: string, after: string, waitMs: number, abort: AbortSignal): Promise<void> {
    if (this.current(output) !== undefined && this.current(output) !== after) return Promise.resolve();
    return new Promise((resolve) => {
      let set = this.#waiters.get(output);
      if (!set) {
        set = new Set();
        this.#waiters.set(output, set);
      }
      const waiters = set;
      const done = () => {
        clearTimeout(timer);
        abort.removeEventListener('abort', done);
        waiters.delete(waiter);
        if (waiters.size === 0) this.#waiters.delete(output);
        resolve();
      };
      const waiter: Waiter = { after, wake: done };
      const timer = setTimeout(done, waitMs);
      waiters.add(waiter);
      abort.addEventListener('abort', done);
    });
  }

  waiting(): number {
    let n = 0;
    for (const s of this.#waiters.values()) n += s.size;
    return n;
  }

  health(): FleetHealth {
    const now = this.#now();
    return {
      outputs: Object.fromEntries(
        this.#outputs.map((name) => {
          const s = this.#served.get(name);
          return [
            name,
            {
              hash: s?.bundle.hash ?? null,
              since: s ? new Date(s.sinceMs).toISOString() : null,
              bytes: s?.body.length ?? 0,
              gzipBytes: s?.gzip.length ?? 0,
            },
          ];
        }),
      ),
      list: this.state.list((o) => this.current(o), now),
    };
  }

  /** Answers one request on the agents listener. */
  handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://agent');
    const address = req.socket.remoteAddress;
    const q = url.searchParams;
    const bundleMatch = /^\/v1\/bundles\/([A-Za-z0-9_[\]-]+)$/.exec(url.pathname);
    const identity = (output: string): AgentIdentity => ({
      instance: clean(q.get('instance')) || address || 'unknown',
      node: clean(q.get('node')),
      output: clean(output, 100),
      ...(q.get('proxy') ? { proxy: clean(q.get('proxy'), 20) } : {}),
    });
    if (!(bundleMatch && req.method === 'GET') && !(url.pathname === '/v1/reports' && req.method === 'POST')) {
      res
        .writeHead(404, { 'content-type': 'text/plain' })
        .end('not found: GET /v1/bundles/<output>, POST /v1/reports\n');
      return;
    }
    if (!this.authorized(req.headers.authorization)) {
      const output = bundleMatch ? decodeURIComponent(bundleMatch[1] as string) : clean(q.get('output'), 100);
      if (this.state.unauthorized(identity(output), this.#now(), address))
        this.#o.log.warn('agent refused: wrong or missing token (said once per agent)', {
          address,
          instance: clean(q.get('instance')) || undefined,
          output,
        });
      res
        .writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Bearer' })
        .end('wrong or missing token\n');
      req.resume();
      return;
    }
    if (bundleMatch) this.#getBundle(decodeURIComponent(bundleMatch[1] as string), identity, q, req, res);
    else this.#postReport(req, res);
  }

  #getBundle(
    output: string,
    identity: (output: string) => AgentIdentity,
    q: URLSearchParams,
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ): void {
    if (!this.serves(output)) {
      res
        .writeHead(404, { 'content-type': 'text/plain' })
        .end(`output ${output} is not served; served: ${this.#outputs.join(', ') || 'none'}\n`);
      return;
    }
    const id = identity(output);
    // `after`: the last hash the agent received (applied or refused); `applied`: what its proxy runs.
    const after = clean(q.get('after'), 80);
    this.state.seen(
      id,
      this.#now(),
      req.socket.remoteAddress,
      q.has('applied') ? clean(q.get('applied'), 80) : undefined,
    );
    const abort = new AbortController();
    const onClose = () => abort.abort();
    res.on('close', onClose);
    this.state.pollOpened(id, this.#now());
    void this.wait(output, after, this.#o.waitMs, abort.signal).then(() => {
      res.off('close', onClose);
      this.state.pollClosed(id, this.#now());
      if (abort.signal.aborted || res.destroyed) return;
      const s = this.#served.get(output);
      if (!s || s.bundle.hash === after) {
        res.writeHead(304, { etag: s?.bundle.hash ?? '' }).end();
        return;
      }
      const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
      const body = gzip ? s.gzip : s.body;
      this.bytesSent += body.length;
      res
        .writeHead(200, {
          'content-type': 'application/json',
          'cache-control': 'no-store',
          etag: s.bundle.hash,
          'content-length': body.length,
          ...(gzip ? { 'content-encoding': 'gzip' } : {}),
        })
        .end(body);
    });
  }

  #postReport(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (b: Buffer) => {
      size += b.length;
      if (size > 64 * 1024) {
        res.writeHead(413).end();
        req.destroy();
        return;
      }
      chunks.push(b);
    });
    req.on('end', () => {
      if (res.headersSent) return;
      let r: Record<string, unknown>;
      try {
        r = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
        if (typeof r !== 'object' || r === null) throw new Error('not an object');
      } catch {
        res.writeHead(400, { 'content-type': 'text/plain' }).end('a report is a JSON object\n');
        return;
      }
      const output = clean(r.output, 100);
      const instance = clean(r.instance);
      if (!output || !instance) {
        res.writeHead(400, { 'content-type': 'text/plain' }).end('a report names its output and instance\n');
        return;
      }
      const previousError = this.state.errorOf(output, instance);
      const error = clean(r.error, 2000);
      this.state.report(
        {
          instance,
          node: clean(r.node),
          output,
          ...(r.proxy ? { proxy: clean(r.proxy, 20) } : {}),
          applied: clean(r.applied, 80),
          error,
        },
        this.#now(),
        req.socket.remoteAddress,
      );
      // Said once when an agent starts failing (or fails differently), once when it recovers.
      if (error && previousError !== error)
        this.#o.log.warn('agent could not apply', { output, instance, node: clean(r.node), error });
      else if (!error && previousError)
        this.#o.log.info('agent applies again', { output, instance, applied: clean(r.applied, 80).slice(0, 12) });
      res.writeHead(204).end();
    });
  }
}

export interface RunningAgentsServer {
  address: ListenAddress;
  close(): Promise<void>;
}

/** Starts the agents listener; TLS when cert and key are given (read here). */
export async function startAgentsServer(
  hub: FleetHub,
  listen: ListenAddress,
  tls?: { cert: string; key: string },
): Promise<RunningAgentsServer> {
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => hub.handle(req, res);
  const server = tls
    ? https.createServer({ cert: await readFile(tls.cert), key: await readFile(tls.key) }, handler)
    : http.createServer(handler);
  // A long-poll is held for `wait`; anything slower than that plus a margin is a dead client.
  server.requestTimeout = hub.waitMs + 30_000;
  server.headersTimeout = 15_000;
  server.keepAliveTimeout = 65_000;
  server.maxConnections = 20_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      const a = server.address() as AddressInfo;
      resolve({
        address: { host: a.address, port: a.port },
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
