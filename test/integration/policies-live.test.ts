/**
 * Traffic policies (issue 14) through the real proxies, rendered by the real binary
 * (`interlock render --snapshot`) from a standalone-engine snapshot whose labelled containers are
 * node http servers of this test on loopback, with labels of both dialects:
 * - allow list: 127.0.0.1 is let in, a client bound to 127.0.0.2 gets 403; a deny list refuses;
 * - rate limit: a burst far above the limit gets 429s, requests within the rate never do;
 * - headers: set / removed on the way in, set / added / removed on the way out, X-Request-Id; a
 *   service whose header label holds a line break is refused, and the text is in no file;
 * - compression: gzip for a listed text type, none for an image;
 * - HTTP/2 on the TLS listener: `curl --http2` negotiates h2; the hsts preset is sent over TLS only.
 *
 * No Docker Engine is needed. Network rule: traffic to 127.0.0.1 only (from 127.0.0.1 or 127.0.0.2).
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { interlock } from '../helpers/exec.ts';
import { describeIntegration, freePort, startHaproxy, startNginx, tempDir, whichTool } from '../helpers/infra.ts';
import { selfSignedPair } from '../render/proxy-check.ts';

const HOSTILE_MARKER = 'evil-directive';

/** A PROXY protocol v1 header claiming `client`, then one HTTP/1.1 request, from 127.0.0.1; the status. */
function proxiedStatus(port: number, host: string, client: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let answer = '';
    socket.setTimeout(15_000, () => socket.destroy(new Error(`no answer on ${port}`)));
    socket.once('connect', () => {
      socket.write(`PROXY TCP4 ${client} 127.0.0.1 40000 ${port}\r\n`);
      socket.write(`GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    });
    socket.on('data', (b: Buffer) => {
      answer += b.toString();
    });
    socket.once('error', reject);
    socket.once('close', () => {
      const m = /^HTTP\/1\.[01] ([0-9]{3})/.exec(answer);
      if (m) resolve(Number(m[1]));
      else reject(new Error(`no HTTP answer: ${JSON.stringify(answer.slice(0, 200))}`));
    });
  });
}

/** `curl --http2` over TLS to 127.0.0.1:`port` for `host`: the HTTP version it used and the response headers. */
function curlHttp2(port: number, host: string): Promise<{ version: string; headers: string }> {
  const curl = whichTool('curl');
  if (curl === undefined) throw new Error('curl is not installed (scripts/setup-test-infra.sh installs it)');
  return new Promise((resolve, reject) => {
    execFile(
      curl,
      [
        '--http2',
        '-sk',
        '--max-time',
        '15',
        '--resolve',
        `${host}:${port}:127.0.0.1`,
        '-D',
        '-',
        '-o',
        '/dev/null',
        '-w',
        'version=%{http_version}',
        `https://${host}:${port}/`,
      ],
      { timeout: 20_000 },
      (error, stdout) => {
        if (error) return reject(error);
        const m = /version=(\S+)$/.exec(stdout);
        resolve({ version: m?.[1] ?? '', headers: stdout.toLowerCase() });
      },
    );
  });
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** One request to 127.0.0.1:`port` from `localAddress`, on a fresh connection. */
function request(
  port: number,
  host: string,
  options: { path?: string; localAddress?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: options.path ?? '/',
        localAddress: options.localAddress ?? '127.0.0.1',
        headers: { host, ...options.headers },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
      },
    );
    req.setTimeout(15_000, () => req.destroy(new Error(`no answer for ${host} on ${port}`)));
    req.on('error', reject);
    req.end();
  });
}

const PAGE = `<html><body>${'interlock compresses this text. '.repeat(200)}</body></html>`;
const IMAGE = Buffer.alloc(6000, 7);

/** Echoes the request headers as JSON; /page.html and /img.png serve a page and an "image". */
function backend(): http.Server {
  return http.createServer((req, res) => {
    if (req.url === '/page.html') {
      res.writeHead(200, { 'content-type': 'text/html', 'content-length': Buffer.byteLength(PAGE) });
      return res.end(PAGE);
    }
    if (req.url === '/img.png') {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': IMAGE.length });
      return res.end(IMAGE);
    }
    const body = JSON.stringify(req.headers);
    res.writeHead(200, {
      'content-type': 'application/json',
      'x-powered-by': 'node',
      'x-frame-options': 'SAMEORIGIN',
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
  });
}

function listen(server: http.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      const a = server.address();
      if (a === null || typeof a !== 'object') reject(new Error('no port'));
      else resolve(a.port);
    });
  });
}

describeIntegration('Traffic policies through real HAProxy and Nginx', ['haproxy', 'nginx'], () => {
  let dir = '';
  const servers: http.Server[] = [];
  const ports = { haproxy: 0, nginx: 0, haproxyTls: 0, nginxTls: 0, haproxyProxied: 0, nginxProxied: 0 };
  let rendered = '';
  let renderOutput = '';

  beforeAll(async () => {
    dir = await tempDir('ilpol-');
    const container = (name: string, port: number, labels: Record<string, string>) => ({
      Id: `${name.replace(/[^a-z0-9]/g, '')}00000000`,
      Names: [`/${name}`],
      State: 'running',
      Labels: labels,
      Ports: [{ IP: '127.0.0.1', PrivatePort: port, PublicPort: port, Type: 'tcp' }],
    });
    const lb = (labels: Record<string, string>) =>
      Object.fromEntries(Object.entries(labels).map(([k, v]) => [`com.docker.lb.${k}`, v]));
    const il = (labels: Record<string, string>) =>
      Object.fromEntries(Object.entries(labels).map(([k, v]) => [`interlock.${k}`, v]));
    const containers: unknown[] = [];
    const add = async (name: string, labels: (port: number) => Record<string, string>) => {
      const server = backend();
      servers.push(server);
      const port = await listen(server);
      containers.push(container(name, port, labels(port)));
    };
    await add('allowed', (port) =>
      lb({ hosts: 'allowed.pol.test', port: String(port), allow_ips: '127.0.0.1,::1', deny_ips: '10.9.9.9' }),
    );
    await add('denied', (port) =>
      il({ hostname: 'denied', domain: 'pol.test', port: String(port), deny_ip: '127.0.0.0/8' }),
    );
    await add('limited', (port) =>
      lb({ hosts: 'limited.pol.test', port: String(port), rate_limit: '1', rate_limit_burst: '2' }),
    );
    await add('steady', (port) =>
      il({ hostname: 'steady', domain: 'pol.test', port: String(port), rate_limit: '2', rate_limit_burst: '2' }),
    );
    await add('headers', (port) => ({
      ...lb({
        hosts: 'headers.pol.test',
        port: String(port),
        request_headers_set: "X-Env: prod; {eu} 'a' #1 100%",
        request_headers_remove: 'X-Debug',
        response_headers_set: 'X-Frame-Options: DENY',
        'response_headers_add.1': 'X-Served-By: interlock',
        response_headers_remove: 'X-Powered-By',
        request_id: 'true',
        compress_types: 'text/html,text/css',
        hsts: 'max-age=600; includeSubDomains',
      }),
    }));
    await add('headers-il', (port) =>
      il({
        hostname: 'headers-il',
        domain: 'pol.test',
        port: String(port),
        request_header_set: 'X-Env: staging',
        response_header_add: 'X-Served-By: interlock',
        compress: 'text/html',
      }),
    );
    await add('hostile', (port) =>
      lb({
        hosts: 'hostile.pol.test',
        port: String(port),
        request_headers_set: `X-Env: a\n    http-request redirect location https://${HOSTILE_MARKER}.example.com`,
      }),
    );
    for (const k of Object.keys(ports) as Array<keyof typeof ports>) ports[k] = await freePort();
    const pair = selfSignedPair('default.pol.test');
    await mkdir(path.join(dir, 'certs'), { recursive: true });
    await writeFile(path.join(dir, 'certs', 'default.pem'), `${pair.cert}${pair.key}`);
    const https = (port: number) => ({
      address: '127.0.0.1',
      port,
      certDir: 'certs',
      defaultCert: path.join(dir, 'certs', 'default.pem'),
    });
    await writeFile(
      path.join(dir, 'snapshot.json'),
      JSON.stringify({ services: [], tasks: [], networks: [], nodes: [], containers }),
    );
    await writeFile(
      path.join(dir, 'interlock.config.yaml'),
      stringify({
        clusters: { local: {} },
        rules: [{ kind: 'docker-lb' }, { kind: 'interlock' }],
        outputs: [
          {
            kind: 'haproxy',
            file: 'out/haproxy.cfg',
            http: { address: '127.0.0.1', port: ports.haproxy },
            https: https(ports.haproxyTls),
          },
          {
            kind: 'nginx',
            file: 'out/nginx.conf',
            runDir: 'run',
            http: { address: '127.0.0.1', port: ports.nginx },
            https: https(ports.nginxTls),
          },
          // The same routes behind a load balancer on 127.0.0.1 that speaks the PROXY protocol.
          {
            kind: 'haproxy',
            name: 'haproxy-proxied',
            file: 'out/proxied/haproxy.cfg',
            http: { address: '127.0.0.1', port: ports.haproxyProxied, proxyProtocol: { trusted: ['127.0.0.1'] } },
          },
          {
            kind: 'nginx',
            name: 'nginx-proxied',
            file: 'out/proxied/nginx.conf',
            runDir: 'run-proxied',
            http: { address: '127.0.0.1', port: ports.nginxProxied, proxyProtocol: { trusted: ['127.0.0.1'] } },
          },
        ],
      }),
    );
    const r = await interlock(
      ['render', '--config', path.join(dir, 'interlock.config.yaml'), '--snapshot', path.join(dir, 'snapshot.json')],
      { timeoutMs: 60_000 },
    );
    renderOutput = `${r.stdout}\n${r.stderr}`;
    // The hostile service is refused (exit 1); the files are written for the others.
    if (r.code !== 0 && r.code !== 1) throw new Error(`interlock render exited ${r.code}\n${renderOutput}`);
    rendered =
      (await readFile(path.join(dir, 'out', 'haproxy.cfg'), 'utf8')) +
      (await readFile(path.join(dir, 'out', 'nginx.conf'), 'utf8'));
    await startHaproxy(path.join(dir, 'out', 'haproxy.cfg'), { port: ports.haproxy });
    await startNginx(path.join(dir, 'out', 'nginx.conf'), dir, { port: ports.nginx });
    await startHaproxy(path.join(dir, 'out', 'proxied', 'haproxy.cfg'), { port: ports.haproxyProxied });
    await startNginx(path.join(dir, 'out', 'proxied', 'nginx.conf'), dir, { port: ports.nginxProxied });
  });

  afterAll(async () => {
    for (const s of servers) {
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
  });

  it('refuses the service with a line break in a header value, naming the label, and renders none of it', () => {
    expect(renderOutput).toContain('com.docker.lb.request_headers_set');
    expect(renderOutput).toMatch(/hostile/);
    expect(rendered).not.toContain(HOSTILE_MARKER);
    expect(rendered).not.toContain('hostile.pol.test');
  });

  describe.each([
    ['haproxy', () => ports.haproxy, () => ports.haproxyTls],
    ['nginx', () => ports.nginx, () => ports.nginxTls],
  ] as const)('%s', (_name, port, tlsPort) => {
    it('HTTP/2 over TLS: curl --http2 negotiates h2; HSTS is sent over TLS, not over plain HTTP', async () => {
      const r = await curlHttp2(tlsPort(), 'headers.pol.test');
      expect(r.version).toBe('2');
      expect(r.headers).toContain('strict-transport-security: max-age=600; includesubdomains');
      expect(r.headers).toContain('x-served-by: interlock');
      const plain = await request(port(), 'headers.pol.test');
      expect(plain.headers['strict-transport-security']).toBeUndefined();
    });

    it('allow list: 127.0.0.1 gets in, a client bound to 127.0.0.2 gets 403; a deny list refuses', async () => {
      expect((await request(port(), 'allowed.pol.test')).status).toBe(200);
      expect((await request(port(), 'allowed.pol.test', { localAddress: '127.0.0.2' })).status).toBe(403);
      expect((await request(port(), 'denied.pol.test')).status).toBe(403);
    });

    it('allow list behind the PROXY protocol: the address in the PROXY header is the one judged', async () => {
      const proxied = _name === 'haproxy' ? ports.haproxyProxied : ports.nginxProxied;
      expect(await proxiedStatus(proxied, 'allowed.pol.test', '127.0.0.1')).toBe(200);
      // The connection comes from 127.0.0.1 (allowed); the client it speaks for is not.
      expect(await proxiedStatus(proxied, 'allowed.pol.test', '127.0.0.2')).toBe(403);
      expect(await proxiedStatus(proxied, 'allowed.pol.test', '192.0.2.10')).toBe(403);
    });

    it('rate limit: a burst far above the limit gets 429s (and some get through)', async () => {
      const answers = await Promise.all(Array.from({ length: 60 }, () => request(port(), 'limited.pol.test')));
      const statuses = answers.map((a) => a.status);
      expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
      expect(statuses.filter((s) => s === 200).length).toBeGreaterThan(0);
      expect(statuses.every((s) => s === 200 || s === 429)).toBe(true);
    });

    it('rate limit: requests within the rate never get a 429', async () => {
      for (let i = 0; i < 6; i++) {
        expect((await request(port(), 'steady.pol.test')).status).toBe(200);
        // 1 request a second against a rate of 2 per second.
        await sleep(1000);
      }
    }, 30_000);

    it('headers: set and removed on the way in, set, added and removed on the way out', async () => {
      const a = await request(port(), 'headers.pol.test', { headers: { 'X-Debug': '1', 'X-Env': 'client' } });
      expect(a.status).toBe(200);
      const seen = JSON.parse(a.body.toString()) as Record<string, string>;
      expect(seen['x-env']).toBe("prod; {eu} 'a' #1 100%");
      expect(seen['x-debug']).toBeUndefined();
      expect(seen['x-request-id']).toMatch(/^[0-9a-f-]{32,36}$/);
      expect(a.headers['x-frame-options']).toBe('DENY');
      expect(a.headers['x-served-by']).toBe('interlock');
      expect(a.headers['x-powered-by']).toBeUndefined();
      const b = await request(port(), 'headers-il.pol.test');
      expect((JSON.parse(b.body.toString()) as Record<string, string>)['x-env']).toBe('staging');
      expect(b.headers['x-served-by']).toBe('interlock');
      // The client address still reaches the backend next to the label's headers.
      expect((JSON.parse(b.body.toString()) as Record<string, string>)['x-forwarded-for']).toMatch(/127\.0\.0\.1/);
    });

    it('compression: gzip for a listed text type, none for an image', async () => {
      for (const host of ['headers.pol.test', 'headers-il.pol.test']) {
        const page = await request(port(), host, { path: '/page.html', headers: { 'Accept-Encoding': 'gzip' } });
        expect(page.status).toBe(200);
        expect(page.headers['content-encoding'], host).toBe('gzip');
        expect(page.body.length).toBeLessThan(Buffer.byteLength(PAGE));
        const img = await request(port(), host, { path: '/img.png', headers: { 'Accept-Encoding': 'gzip' } });
        expect(img.status).toBe(200);
        expect(img.headers['content-encoding'], host).toBeUndefined();
        expect(img.body.equals(IMAGE)).toBe(true);
      }
    });
  });
});
