/**
 * The rendered files at work: HAProxy and Nginx started on loopback with configs rendered from the
 * same routes, whose backends are small HTTP servers in this process. The same requests must land
 * on the same backends through both proxies: exact hosts and aliases, the longest path, prefix
 * stripping, wildcards, a known host without a `/` route, the default route, redirects, ssl-only
 * and cookie stickiness.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HaproxyOutput, NginxOutput } from '../../src/config/schema.ts';
import type { Route } from '../../src/routes/types.ts';
import { route } from '../fixtures/routes/base.ts';
import { renderHaproxy, renderNginx } from '../helpers/render.ts';
import { findTool, itWithTools, type Scratch, scratchDir } from './proxy-check.ts';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface Answer {
  status: number;
  backend?: string;
  path?: string;
  location?: string;
  cookie?: string;
}

/** One request on a fresh connection; the backend says who it is and what path it got. */
function get(port: number, host: string, pathAndQuery: string, cookie?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { host };
    if (cookie) headers['cookie'] = cookie;
    const req = http.request({ host: '127.0.0.1', port, path: pathAndQuery, headers, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => {
        body += c.toString();
      });
      res.on('end', () => {
        const answer: Answer = { status: res.statusCode ?? 0 };
        const backend = res.headers['x-backend'];
        if (typeof backend === 'string') {
          answer.backend = backend;
          answer.path = body;
        }
        if (res.headers.location) answer.location = res.headers.location;
        const setCookie = res.headers['set-cookie']?.[0];
        if (setCookie) answer.cookie = setCookie.split(';')[0];
        resolve(answer);
      });
    });
    req.setTimeout(5000, () => req.destroy(new Error(`GET ${host}${pathAndQuery} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** One request sending `cookie` as it is; every Set-Cookie and header of the answer. */
function request(
  port: number,
  host: string,
  pathAndQuery: string,
  cookie?: string,
): Promise<{ backend?: string; setCookies: string[]; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { host };
    if (cookie) headers['cookie'] = cookie;
    const req = http.request({ host: '127.0.0.1', port, path: pathAndQuery, headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => {
        const backend = res.headers['x-backend'];
        resolve({
          ...(typeof backend === 'string' ? { backend } : {}),
          setCookies: res.headers['set-cookie'] ?? [],
          headers: res.headers,
        });
      });
    });
    req.setTimeout(5000, () => req.destroy(new Error(`GET ${host}${pathAndQuery} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function waitForPort(port: number, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`proxy exited with ${child.exitCode}:\n${output()}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (open) return;
    await sleep(50);
  }
  throw new Error(`nothing listens on 127.0.0.1:${port} after 10 s:\n${output()}`);
}

const BACKENDS = [
  'web',
  'api',
  'blog-1',
  'blog-2',
  'status',
  'preview',
  'docs',
  'tenants',
  'fallback',
  'anyhost',
] as const;
type BackendName = (typeof BACKENDS)[number];

function liveRoutes(ports: ReadonlyMap<BackendName, number>): Route[] {
  const at = (name: BackendName) => ({ name, address: '127.0.0.1', port: ports.get(name) ?? 0 });
  return [
    route({
      service: 'web',
      hosts: ['shop.example.com', 'www.example.com'],
      healthCheck: { path: '/healthz', intervalMs: 1000 },
      backends: [at('web')],
    }),
    route({
      service: 'api',
      hosts: ['shop.example.com'],
      path: '/api',
      stripPath: true,
      websocketPaths: ['/api/ws'],
      backends: [at('api')],
    }),
    route({
      service: 'blog',
      hosts: ['blog.example.com', 'news.example.com'],
      stickyCookie: 'SESSION',
      redirects: [{ from: 'http://blog.example.com', to: 'https://blog.example.com' }],
      backends: [at('blog-1'), at('blog-2')],
    }),
    route({ service: 'status', hosts: ['status.example.com'], sslOnly: true, backends: [at('status')] }),
    route({
      service: 'moved',
      hosts: ['moved.example.com', 'gone.example.com'],
      redirects: [
        { from: 'moved.example.com', to: 'https://new.example.com' },
        { from: 'gone.example.com', to: 'https://new.example.com/landing' },
      ],
      redirectCode: 308,
      backends: [at('web')],
    }),
    route({ service: 'preview', hosts: ['*.preview.example.com'], backends: [at('preview')] }),
    route({ service: 'docs', hosts: ['docs.example.org'], path: '/v1', backends: [at('docs')] }),
    route({ service: 'tenants', hosts: ['*.example.org'], backends: [at('tenants')] }),
    route({ service: 'fallback', hosts: ['www.example.net'], defaultBackend: true, backends: [at('fallback')] }),
    // interlock.context_root=/app without a host name.
    route({ service: 'anyhost', path: '/app', defaultBackend: true, backends: [at('anyhost')] }),
    route({ service: 'idle', hosts: ['idle.example.com'], backends: [] }),
  ];
}

/** [host, path, what the answer must hold]: the same for both proxies. */
const CASES: Array<[string, string, Partial<Answer>]> = [
  ['shop.example.com', '/', { status: 200, backend: 'web', path: '/' }],
  ['WWW.Example.com:8080', '/x', { status: 200, backend: 'web', path: '/x' }],
  ['shop.example.com', '/api/items?q=1', { status: 200, backend: 'api', path: '/items?q=1' }],
  ['shop.example.com', '/api', { status: 200, backend: 'api', path: '/' }],
  ['shop.example.com', '/api/ws/chat', { status: 200, backend: 'api', path: '/ws/chat' }],
  ['shop.example.com', '/apix', { status: 200, backend: 'web', path: '/apix' }],
  ['a.preview.example.com', '/', { status: 200, backend: 'preview' }],
  ['a.b.preview.example.com', '/p', { status: 200, backend: 'preview', path: '/p' }],
  ['preview.example.com', '/', { status: 200, backend: 'fallback' }],
  ['unknown.example.com', '/', { status: 200, backend: 'fallback' }],
  ['docs.example.org', '/v1/page', { status: 200, backend: 'docs', path: '/v1/page' }],
  ['docs.example.org', '/', { status: 503 }],
  ['x.example.org', '/', { status: 200, backend: 'tenants' }],
  // Redirects answer 302 unless the route says otherwise (a 301 is cached by browsers for good).
  ['blog.example.com', '/p?x=1', { status: 302, location: 'https://blog.example.com/p?x=1' }],
  ['moved.example.com', '/p?x=1', { status: 308, location: 'https://new.example.com/p?x=1' }],
  ['gone.example.com', '/p?x=1', { status: 308, location: 'https://new.example.com/landing' }],
  // ssl_only stays 301: HSTS makes the switch to https permanent anyway.
  ['status.example.com', '/s?a=b', { status: 301, location: 'https://status.example.com/s?a=b' }],
  ['idle.example.com', '/', { status: 503 }],
  // A context root without a host: on hosts no route names, before the default backend (longest
  // path first); a host a route names keeps all its paths, exact or wildcard.
  ['unknown.example.com', '/app/x', { status: 200, backend: 'anyhost', path: '/app/x' }],
  ['10.1.2.3', '/app', { status: 200, backend: 'anyhost', path: '/app' }],
  ['unknown.example.com', '/appx', { status: 200, backend: 'fallback', path: '/appx' }],
  ['shop.example.com', '/app', { status: 200, backend: 'web', path: '/app' }],
  ['x.example.org', '/app', { status: 200, backend: 'tenants', path: '/app' }],
  ['docs.example.org', '/app', { status: 503 }],
];

interface Proxy {
  port: number;
  stop(): Promise<void>;
}

async function start(argv: string[], port: number, stopSignal: NodeJS.Signals, cwd: string): Promise<Proxy> {
  const [cmd, ...args] = argv;
  const child = spawn(cmd as string, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (b: Buffer) => {
    output += b.toString();
  });
  child.stderr?.on('data', (b: Buffer) => {
    output += b.toString();
  });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(stopSignal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  try {
    await waitForPort(port, child, () => output);
  } catch (e) {
    await stop();
    throw e;
  }
  return { port, stop };
}

const servers: http.Server[] = [];
const ports = new Map<BackendName, number>();

/** Sessions the blog backends handed out, like a Java app's JSESSIONID: value → backend. */
let sessions = 0;

beforeAll(async () => {
  for (const name of BACKENDS) {
    const server = http.createServer((req, res) => {
      const headers: Record<string, string> = { 'x-backend': name, 'content-type': 'text/plain' };
      if (name.startsWith('blog-')) {
        // The application's own session cookie: set when the request has none, then read back.
        headers['x-cookie'] = req.headers.cookie ?? '';
        if (!/(?:^|;) *SESSION=/.test(req.headers.cookie ?? '')) {
          sessions += 1;
          headers['set-cookie'] = `SESSION=${name}-s${sessions}; Path=/`;
        }
      }
      res.writeHead(200, headers);
      res.end(req.url);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
    ports.set(name, (server.address() as AddressInfo).port);
  }
});

afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
});

const launchers = {
  haproxy: async (scratchFor: (files: Parameters<typeof scratchDir>[0]) => Promise<Scratch>): Promise<Proxy> => {
    const port = await freePort();
    const output: HaproxyOutput = {
      kind: 'haproxy',
      file: 'haproxy.cfg',
      http: { address: '127.0.0.1', port },
      maxconn: 256,
    };
    const scratch = await scratchFor(renderHaproxy(liveRoutes(ports), output));
    return start([findTool('haproxy') as string, '-f', path.join(scratch.dir, 'haproxy.cfg')], port, 'SIGTERM', '/');
  },
  nginx: async (scratchFor: (files: Parameters<typeof scratchDir>[0]) => Promise<Scratch>): Promise<Proxy> => {
    const port = await freePort();
    const output: NginxOutput = {
      kind: 'nginx',
      file: 'nginx.conf',
      http: { address: '127.0.0.1', port },
      workerConnections: 256,
    };
    const scratch = await scratchFor([]);
    const [conf] = renderNginx(liveRoutes(ports), output, { runDir: scratch.dir });
    await writeFile(path.join(scratch.dir, 'nginx.conf'), conf?.content ?? '');
    const argv = [findTool('nginx') as string, '-p', scratch.dir, '-c', path.join(scratch.dir, 'nginx.conf')];
    return start([...argv, '-g', 'daemon off;'], port, 'SIGQUIT', '/');
  },
};

for (const kind of ['haproxy', 'nginx'] as const) {
  describe(`${kind} serves the rendered routes`, () => {
    if (findTool(kind) === undefined) {
      itWithTools('routes requests', [kind], async () => {});
      return;
    }
    let proxy: Proxy | undefined;
    const scratches: Scratch[] = [];

    beforeAll(async () => {
      proxy = await launchers[kind](async (files) => {
        const s = await scratchDir(files, `interlock-live-${kind}-`);
        scratches.push(s);
        return s;
      });
    }, 30_000);

    afterAll(async () => {
      await proxy?.stop();
      await Promise.all(scratches.map((s) => s.remove()));
    });

    for (const [host, pathAndQuery, expected] of CASES) {
      it(`${host}${pathAndQuery} → ${expected.backend ?? expected.status}`, async () => {
        const answer = await get(proxy?.port ?? 0, host, pathAndQuery);
        expect(answer).toMatchObject(expected);
      });
    }

    it("pins a client to the backend that set the application's own cookie, which the backend gets back unchanged", async () => {
      const port = proxy?.port ?? 0;
      // Several new clients, so both backends hand out sessions.
      for (let client = 0; client < 4; client++) {
        const first = await request(port, 'news.example.com', '/');
        const own = first.setCookies.filter((c) => c.startsWith('SESSION='));
        // One SESSION cookie, from the application; the proxy never adds one of the same name.
        expect(own, first.setCookies.join(' | ')).toHaveLength(1);
        const jar = first.setCookies.map((c) => c.split(';')[0] ?? '').join('; ');
        const issued = /^blog-\d-s\d+$/.exec(/SESSION=(?:[^;~]*~)?([^;]+)/.exec(own[0] ?? '')?.[1] ?? '')?.[0];
        expect(issued, own[0]).toMatch(new RegExp(`^${first.backend}-s`));
        for (let i = 0; i < 5; i++) {
          const next = await request(port, 'news.example.com', '/', jar);
          expect(next.backend, `request ${i + 2} of client ${client}`).toBe(first.backend);
          // The application reads exactly the value it set.
          expect(/(?:^|;) *SESSION=([^;]*)/.exec(next.headers['x-cookie'] as string)?.[1]).toBe(issued);
          expect(next.setCookies.filter((c) => c.startsWith('SESSION='))).toEqual([]);
        }
      }
    });
  });
}
