/**
 * The daemon's HTTP listener, off unless `--listen ADDR:PORT` is given: `/healthz` (JSON, 200 or
 * 503) and `/metrics` (Prometheus text). Nothing else, and only GET / HEAD.
 */
import http from 'node:http';
import type { HealthReport } from './health.ts';

export interface ListenAddress {
  host: string;
  port: number;
}

/** `127.0.0.1:9090`, `[::1]:9090`, `:9090` (all addresses) → host and port; undefined if malformed. */
export function parseListen(value: string): ListenAddress | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:[\]]*)):(\d{1,5})$/.exec(value.trim());
  if (!m) return undefined;
  const port = Number(m[3]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) return undefined;
  const host = m[1] ?? m[2] ?? '';
  return { host: host === '' ? '0.0.0.0' : host, port };
}

export interface HttpHandlers {
  health: () => HealthReport;
  metrics: () => Promise<{ contentType: string; text: string }>;
}

export interface RunningServer {
  /** The bound address (the real port when 0 was asked for). */
  address: ListenAddress;
  close(): Promise<void>;
}

/**
 * Limits of the listener. The daemon's file descriptors are shared with its Docker connections,
 * so a flood of connections to /healthz must not starve them: past `maxConnections` a new
 * connection is closed at once, and a connection is closed after `idleTimeoutMs` without a
 * request (or mid-request: a slow client cannot hold a socket either).
 */
export interface HttpLimits {
  maxConnections: number;
  idleTimeoutMs: number;
}

/** Ample for a few scrapers and health checkers; far below a default 1024-descriptor limit. */
export const DEFAULT_HTTP_LIMITS: HttpLimits = { maxConnections: 64, idleTimeoutMs: 5000 };

export function startHttpServer(
  listen: ListenAddress,
  handlers: HttpHandlers,
  limits: HttpLimits = DEFAULT_HTTP_LIMITS,
): Promise<RunningServer> {
  // The timeouts below are enforced on this interval (Node's default: 30 s).
  const checkEvery = Math.max(50, Math.min(30_000, Math.floor(limits.idleTimeoutMs / 2)));
  const server = http.createServer({ connectionsCheckingInterval: checkEvery }, (req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (url === '/healthz') {
      const report = handlers.health();
      res
        .writeHead(report.status, { 'content-type': 'application/json', 'cache-control': 'no-store' })
        .end(req.method === 'HEAD' ? undefined : `${JSON.stringify(report.body, null, 2)}\n`);
      return;
    }
    if (url === '/metrics') {
      handlers.metrics().then(
        ({ contentType, text }) => {
          res.writeHead(200, { 'content-type': contentType }).end(req.method === 'HEAD' ? undefined : text);
        },
        (error: unknown) => {
          res.writeHead(500, { 'content-type': 'text/plain' }).end(`${String(error)}\n`);
        },
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /healthz or /metrics\n');
  });
  // Keep-alive sockets must not hold the daemon open at shutdown, nor idle sockets a descriptor.
  server.maxConnections = limits.maxConnections;
  server.keepAliveTimeout = limits.idleTimeoutMs;
  server.headersTimeout = limits.idleTimeoutMs;
  server.requestTimeout = limits.idleTimeoutMs;
  server.setTimeout(limits.idleTimeoutMs, (socket) => socket.destroy());
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      const a = server.address();
      resolve({
        address: typeof a === 'object' && a !== null ? { host: a.address, port: a.port } : listen,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
