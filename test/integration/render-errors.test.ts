/**
 * A cluster that cannot be reached, through the real binary: a wrong endpoint (nothing listens),
 * a TLS failure (an in-process TLS server with a certificate the config does not trust), a Docker
 * context that does not exist, a socket path that does not exist, and a black hole (accepts TCP,
 * never answers). Each gives exit 2 and ONE line on stderr naming the cluster and the reason, in
 * under 10 seconds, for `render` and for `snapshot`.
 *
 * No Docker Engine is needed: every endpoint here is a listener of this test on 127.0.0.1, or none.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { interlock } from '../helpers/exec.ts';
import { freePort } from '../helpers/infra.ts';

/** The bound: a one-line error and exit 2 in under 10 seconds. */
const BOUND_MS = 10_000;
const CLUSTER = 'prod-eu';

interface Listener {
  port: number;
  close: () => Promise<void>;
}

function listen(server: net.Server): Promise<Listener> {
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  });
  server.on('secureConnection', (s: tls.TLSSocket) => {
    s.on('error', () => {});
  });
  server.on('tlsClientError', () => {});
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      const address = server.address();
      if (address === null || typeof address !== 'object') return reject(new Error('no port'));
      resolve({
        port: address.port,
        close: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
}

/** A self-signed certificate for 127.0.0.1 (it is its own CA), generated now. */
function selfSigned(dir: string, name: string, cn: string): { cert: string; key: string } {
  const cert = path.join(dir, `${name}.pem`);
  const key = path.join(dir, `${name}.key`);
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '2',
      '-subj',
      `/CN=${cn}`,
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    dir,
  );
  return { cert, key };
}

describe('an unreachable cluster: exit 2, one line naming the cluster, within 10 s', () => {
  let dir = '';
  let emptyDockerConfig = '';
  let closedPort = 0;
  let blackHole: Listener;
  let tlsServer: Listener;
  let serverCert = '';
  let otherCa = '';

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ile-'));
    emptyDockerConfig = path.join(dir, 'docker-config');
    await mkdir(emptyDockerConfig);
    closedPort = await freePort();

    // Accepts the connection and never says a word.
    blackHole = await listen(net.createServer(() => {}));

    const server = selfSigned(dir, 'engine', '127.0.0.1');
    serverCert = server.cert;
    otherCa = selfSigned(dir, 'other-ca', 'some other CA').cert;
    // Past the handshake it answers every request with a 404: not a Docker Engine.
    tlsServer = await listen(
      tls.createServer(
        { cert: await readFile(server.cert), key: await readFile(server.key) },
        (socket: tls.TLSSocket) => {
          socket.once('data', () => socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n'));
        },
      ),
    );
  });

  afterAll(async () => {
    await blackHole?.close();
    await tlsServer?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Writes a config whose one cluster has `endpoint` (none: the environment). */
  async function configWith(name: string, endpoint: Record<string, unknown> | undefined): Promise<string> {
    const file = path.join(dir, `${name}.json`);
    await writeFile(
      file,
      JSON.stringify({
        clusters: { [CLUSTER]: endpoint === undefined ? {} : { endpoint } },
        outputs: [{ kind: 'haproxy', file: `out-${name}/haproxy.cfg`, http: { address: '127.0.0.1', port: 18999 } }],
      }),
    );
    return file;
  }

  const cases: Array<{
    name: string;
    endpoint: () => Record<string, unknown> | undefined;
    env?: () => Record<string, string>;
    reason: RegExp;
  }> = [
    {
      name: 'wrong endpoint (nothing listens there)',
      endpoint: () => ({ kind: 'tcp', host: `tcp://127.0.0.1:${closedPort}` }),
      reason: /connection refused/,
    },
    {
      name: 'TLS: the engine certificate is not signed by the configured CA',
      endpoint: () => ({ kind: 'tcp', host: `tcp://127.0.0.1:${tlsServer.port}`, tls: { ca: otherCa, verify: true } }),
      reason: /TLS failure: certificate verify failed/,
    },
    {
      name: 'TLS: no CA configured, verification on (the default)',
      endpoint: () => ({ kind: 'tcp', host: `tcp://127.0.0.1:${tlsServer.port}`, tls: {} }),
      reason: /TLS failure: certificate verify failed/,
    },
    {
      name: 'missing Docker context named in the config',
      endpoint: () => ({ kind: 'context', name: 'nope' }),
      env: () => ({ DOCKER_CONFIG: emptyDockerConfig }),
      reason: /Docker context "nope".*does not exist/,
    },
    {
      name: 'missing Docker context named by DOCKER_CONTEXT',
      endpoint: () => undefined,
      env: () => ({ DOCKER_CONFIG: emptyDockerConfig, DOCKER_CONTEXT: 'nope' }),
      reason: /Docker context "nope".*DOCKER_CONTEXT.*does not exist/,
    },
    {
      name: 'socket path that does not exist',
      endpoint: () => ({ kind: 'socket', path: path.join(dir, 'no-such.sock') }),
      reason: /no such socket/,
    },
    {
      name: 'black hole (accepts TCP, never answers): the default timeout',
      endpoint: () => ({ kind: 'tcp', host: `tcp://127.0.0.1:${blackHole.port}` }),
      reason: /timeout/,
    },
  ];

  for (const c of cases) {
    for (const command of ['render', 'snapshot'] as const) {
      it(`${command}: ${c.name}`, async () => {
        const config = await configWith(`${command}-${cases.indexOf(c)}`, c.endpoint());
        const started = Date.now();
        const r = await interlock([command, '--config', config], { env: c.env?.() ?? {}, timeoutMs: 20_000 });
        const elapsed = Date.now() - started;
        const lines = r.stderr.trimEnd().split('\n');
        expect({ code: r.code, stdout: r.stdout, lines: lines.length }, r.stderr).toEqual({
          code: 2,
          stdout: '',
          lines: 1,
        });
        expect(lines[0]).toMatch(new RegExp(`^interlock: cluster "${CLUSTER}"`));
        expect(lines[0]).toMatch(c.reason);
        expect(elapsed, `took ${elapsed} ms`).toBeLessThan(BOUND_MS);
        // Nothing was written.
        await expect(readFile(path.join(dir, `out-${command}-${cases.indexOf(c)}`, 'haproxy.cfg'))).rejects.toThrow();
      });
    }
  }

  it('control: with the right CA the TLS handshake succeeds (the failure above was the CA)', async () => {
    const config = await configWith('tls-right-ca', {
      kind: 'tcp',
      host: `tcp://127.0.0.1:${tlsServer.port}`,
      tls: { ca: serverCert },
    });
    const r = await interlock(['snapshot', '--config', config], { timeoutMs: 20_000 });
    expect(r.code).toBe(2);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    // Past TLS: the test server is no Docker Engine.
    expect(r.stderr).toMatch(new RegExp(`^interlock: cluster "${CLUSTER}" .*not a Docker API`));
    expect(r.stderr).not.toMatch(/TLS/);
  });
});
