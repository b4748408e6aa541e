/**
 * TLS through the real proxies, rendered by the real binary (`interlock render --snapshot`) from a
 * standalone-engine snapshot whose two labelled containers are listeners of this test on loopback:
 * - TLS passthrough (`com.docker.lb.ssl_passthrough`): a TLS client asking for the passthrough
 *   host by SNI gets the backend's own certificate, through HAProxy and through Nginx (stream
 *   block, ssl_preread), and the bytes reach the backend untouched.
 * - A certificate and its key in separate files (`ssl_cert` + `ssl_key`, Interlock 2's secret
 *   names): both proxies load them and terminate TLS with that certificate; Nginx, behind its
 *   passthrough stream hop, still passes the client address (PROXY protocol + realip).
 *
 * No Docker Engine is needed. Network rule: traffic to 127.0.0.1 only.
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { interlock } from '../helpers/exec.ts';
import { describeIntegration, freePort, startHaproxy, startNginx, tempDir } from '../helpers/infra.ts';
import { selfSignedPair } from '../render/proxy-check.ts';

const PASSTHROUGH_HOST = 'vault.tls.test';
const APP_HOST = 'app.tls.test';

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      const a = server.address();
      if (a === null || typeof a !== 'object') reject(new Error('no port'));
      else resolve(a.port);
    });
  });
}

function close(server: net.Server | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (!server) return resolve();
    server.close(() => resolve());
    if ('closeAllConnections' in server) (server as http.Server).closeAllConnections();
  });
}

/** A TLS handshake with SNI `servername` to 127.0.0.1:`port`, then one HTTP/1.1 request; the peer's CN and the answer. */
function tlsRequest(port: number, servername: string): Promise<{ cn: string; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      servername,
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
    });
    let body = '';
    let cn = '';
    socket.setTimeout(10_000, () => socket.destroy(new Error(`no answer from 127.0.0.1:${port} for ${servername}`)));
    socket.once('secureConnect', () => {
      const subject = socket.getPeerCertificate().subject as { CN?: string | string[] } | undefined;
      cn = String(subject?.CN ?? '');
      socket.write(`GET / HTTP/1.1\r\nHost: ${servername}\r\nConnection: close\r\n\r\n`);
    });
    socket.on('data', (b: Buffer) => {
      body += b.toString();
    });
    socket.once('error', reject);
    socket.once('close', () => resolve({ cn, body }));
  });
}

describeIntegration(
  'TLS through real HAProxy and Nginx: passthrough by SNI, separate key files',
  ['haproxy', 'nginx'],
  () => {
    let dir = '';
    let passthroughBackend: tls.Server | undefined;
    let appBackend: http.Server | undefined;
    const ports = { haproxyHttp: 0, haproxyHttps: 0, nginxHttp: 0, nginxHttps: 0 };

    beforeAll(async () => {
      dir = await tempDir('iltls-');
      const backendPair = selfSignedPair('passthrough-backend');
      const appPair = selfSignedPair(APP_HOST);
      const defaultPair = selfSignedPair('default.tls.test');
      // The passthrough backend terminates TLS itself, with its own certificate.
      passthroughBackend = tls.createServer({ cert: backendPair.cert, key: backendPair.key }, (s) => {
        s.on('error', () => {});
        s.once('data', () => s.end('HTTP/1.1 200 OK\r\nContent-Length: 11\r\nConnection: close\r\n\r\npassthrough'));
      });
      // The terminated app answers with the client address the proxy passed on.
      appBackend = http.createServer((req, res) => {
        res.end(`app xff=${req.headers['x-forwarded-for'] ?? ''} real=${req.headers['x-real-ip'] ?? ''}`);
      });
      const [passthroughPort, appPort] = [await listen(passthroughBackend), await listen(appBackend)];
      for (const k of Object.keys(ports) as Array<keyof typeof ports>) ports[k] = await freePort();

      await mkdir(path.join(dir, 'certs'), { recursive: true });
      await writeFile(path.join(dir, 'certs', 'demo.crt'), appPair.cert);
      await writeFile(path.join(dir, 'certs', 'demo.key'), appPair.key);
      await writeFile(path.join(dir, 'certs', 'default.pem'), `${defaultPair.cert}${defaultPair.key}`);
      const container = (name: string, port: number, labels: Record<string, string>) => ({
        Id: `${name}0000`,
        Names: [`/${name}`],
        State: 'running',
        Labels: Object.fromEntries(Object.entries(labels).map(([k, v]) => [`com.docker.lb.${k}`, v])),
        Ports: [{ IP: '127.0.0.1', PrivatePort: port, PublicPort: port, Type: 'tcp' }],
      });
      await writeFile(
        path.join(dir, 'snapshot.json'),
        JSON.stringify({
          services: [],
          tasks: [],
          networks: [],
          nodes: [],
          containers: [
            container('vault', passthroughPort, {
              hosts: PASSTHROUGH_HOST,
              port: String(passthroughPort),
              ssl_passthrough: 'true',
            }),
            container('app', appPort, {
              hosts: APP_HOST,
              port: String(appPort),
              ssl_cert: 'demo.crt',
              ssl_key: 'demo.key',
            }),
          ],
        }),
      );
      // Absolute: how a relative defaultCert resolves is the pipeline's (inside certDir).
      const defaultCert = path.join(dir, 'certs', 'default.pem');
      const https = (port: number) => ({ address: '127.0.0.1', port, certDir: 'certs', defaultCert });
      await writeFile(
        path.join(dir, 'interlock.config.yaml'),
        stringify({
          clusters: { local: {} },
          rules: [{ kind: 'docker-lb' }],
          outputs: [
            {
              kind: 'haproxy',
              file: 'out/haproxy.cfg',
              http: { address: '127.0.0.1', port: ports.haproxyHttp },
              https: https(ports.haproxyHttps),
            },
            {
              kind: 'nginx',
              file: 'out/nginx.conf',
              runDir: 'run',
              http: { address: '127.0.0.1', port: ports.nginxHttp },
              https: https(ports.nginxHttps),
            },
          ],
        }),
      );
      // Nginx's workers (another user when the master runs as root) connect to the unix sockets of
      // the stream hop in runDir: the folders on the way must let them through.
      await mkdir(path.join(dir, 'run'), { recursive: true });
      await chmod(dir, 0o755);
      await chmod(path.join(dir, 'run'), 0o755);
      const r = await interlock(
        ['render', '--config', path.join(dir, 'interlock.config.yaml'), '--snapshot', path.join(dir, 'snapshot.json')],
        { timeoutMs: 60_000 },
      );
      if (r.code !== 0) throw new Error(`interlock render exited ${r.code}\n${r.stdout}\n${r.stderr}`);
      await startHaproxy(path.join(dir, 'out', 'haproxy.cfg'), { port: ports.haproxyHttp });
      await startNginx(path.join(dir, 'out', 'nginx.conf'), dir, { port: ports.nginxHttp });
    });

    afterAll(async () => {
      // The proxies and the temp dir go in describeIntegration's stopAll.
      await close(passthroughBackend);
      await close(appBackend);
    });

    describe.each([
      ['haproxy', () => ports.haproxyHttps],
      ['nginx', () => ports.nginxHttps],
    ] as const)('%s', (_name, httpsPort) => {
      it('passes TLS for the passthrough host through: the backend’s own certificate comes back', async () => {
        const r = await tlsRequest(httpsPort(), PASSTHROUGH_HOST);
        expect(r.cn).toBe('passthrough-backend');
        expect(r.body).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\npassthrough$/);
      });

      it('terminates TLS for another host with its certificate from separate cert and key files', async () => {
        const r = await tlsRequest(httpsPort(), APP_HOST);
        expect(r.cn).toBe(APP_HOST);
        // The client address survives the proxy (through Nginx's stream hop: PROXY protocol + realip).
        expect(r.body).toMatch(/\r\n\r\napp xff=127\.0\.0\.1 real=/);
      });

      it('serves the default certificate to a name no route has', async () => {
        const r = await tlsRequest(httpsPort(), 'nobody.tls.test');
        expect(r.cn).toBe('default.tls.test');
      });
    });
  },
);
