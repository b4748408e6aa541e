/**
 * Reading a real Docker Engine in Swarm mode (scripts/setup-test-infra.sh brings it up), and the
 * failures a user meets: refused, no socket, TLS, timeout, missing context, ssh. Loopback only.
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, DEFAULT_TIMEOUT_MS, resolveEndpoint } from '../../src/cluster/connect.ts';
import { type ClusterUnavailableError, readSnapshot } from '../../src/cluster/read.ts';
import type { SnapshotDocument } from '../../src/cluster/snapshot.ts';
import type { ClusterConfig } from '../../src/config/schema.ts';
import { ClusterError } from '../../src/errors.ts';

const run = promisify(execFile);
const DOCKER_SOCKET = '/var/run/docker.sock';
const IMAGE = 'interlock-test/busybox:1';
/** The bound for reporting an unreachable cluster. */
const BOUND_MS = 10_000;

function swarmAvailable(): boolean {
  const r = spawnSync('docker', ['info', '--format', '{{.Swarm.LocalNodeState}}'], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  return r.status === 0 && r.stdout.trim() === 'active';
}

const available = swarmAvailable();
if (!available && process.env.CI) {
  it('needs a Docker Engine in Swarm mode under CI', () => {
    throw new Error('`docker info` failed or Swarm is not active: run scripts/setup-test-infra.sh before the tests');
  });
}

let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'interlock-read-'));
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function resolveAndRead(name: string, cluster: ClusterConfig, env: Record<string, string> = {}) {
  const resolved = await resolveEndpoint(cluster, { HOME: tmp, ...env }, { name, configDir: tmp });
  return {
    resolved,
    snapshot: await readSnapshot(connect(resolved), {
      cluster: name,
      timeoutMs: resolved.timeoutMs,
      endpointDisplay: resolved.display,
    }),
  };
}

/** A unix socket in front of the engine that records every HTTP request line that crosses it. */
async function countingProxy(socketPath: string): Promise<{ requests: () => string[]; close: () => Promise<void> }> {
  const perConnection: string[][] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const seen: string[] = [];
    perConnection.push(seen);
    let text = '';
    const upstream = net.connect(DOCKER_SOCKET);
    sockets.add(client).add(upstream);
    client.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      const lines = [...text.matchAll(/(?:^|\n)([A-Z]+) (\S+) HTTP\/1\.[01]\r\n/g)].map((m) => `${m[1]} ${m[2]}`);
      seen.splice(0, seen.length, ...lines);
      upstream.write(chunk);
    });
    upstream.pipe(client);
    client.on('end', () => upstream.end());
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close);
    upstream.on('error', close);
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return {
    requests: () => perConnection.flat(),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe.skipIf(!available)('readSnapshot against the local Swarm', () => {
  const prefix = `il-read-${process.pid}`;
  const created: string[] = [];
  let proxy: Awaited<ReturnType<typeof countingProxy>>;
  let proxySocket: string;

  async function createServices(from: number, to: number): Promise<void> {
    for (let i = from; i < to; i++) {
      const name = `${prefix}-${i}`;
      created.push(name);
      await run('docker', [
        'service',
        'create',
        '--detach',
        '--quiet',
        '--name',
        name,
        '--label',
        `interlock.hostname=svc${i}`,
        '--label',
        'interlock.domain=read.test',
        IMAGE,
        '/bin/sleep',
        '3600',
      ]);
    }
    await waitRunning(created);
  }

  async function waitRunning(names: readonly string[]): Promise<void> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const { stdout } = await run('docker', ['service', 'ls', '--format', '{{.Name}} {{.Replicas}}']);
      const replicas = new Map(stdout.split('\n').map((l) => l.split(' ') as [string, string]));
      if (names.every((n) => replicas.get(n) === '1/1')) return;
      if (Date.now() > deadline) throw new Error(`services did not start: ${stdout}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** Snapshot through the counting proxy; returns it and the requests it took. */
  async function snapshotCounted(): Promise<{ snapshot: SnapshotDocument; requests: string[] }> {
    const before = proxy.requests().length;
    const { snapshot } = await resolveAndRead('local', { endpoint: { kind: 'socket', path: proxySocket } });
    return { snapshot, requests: proxy.requests().slice(before) };
  }

  function mine(snapshot: SnapshotDocument) {
    const services = (snapshot.services ?? []) as {
      ID: string;
      Spec: { Name: string; Labels?: Record<string, string> };
    }[];
    const ours = services.filter((s) => s.Spec.Name.startsWith(`${prefix}-`));
    const ids = new Set(ours.map((s) => s.ID));
    const tasks = (snapshot.tasks ?? []) as { ServiceID: string; Status: { State: string }; DesiredState: string }[];
    const running = tasks.filter(
      (t) => ids.has(t.ServiceID) && t.Status.State === 'running' && t.DesiredState === 'running',
    );
    return { ours, running };
  }

  beforeAll(async () => {
    proxySocket = path.join(tmp, 'counting.sock');
    proxy = await countingProxy(proxySocket);
  });

  afterAll(async () => {
    await proxy?.close();
    if (created.length > 0) await run('docker', ['service', 'rm', ...created]).catch(() => undefined);
  });

  it('reads services with their labels, running tasks, networks, nodes and containers, with metadata', async () => {
    await createServices(0, 1);
    const { snapshot: doc, requests } = await snapshotCounted();
    const { ours, running } = mine(doc);
    expect(ours.map((s) => s.Spec.Labels)).toEqual([{ 'interlock.hostname': 'svc0', 'interlock.domain': 'read.test' }]);
    expect(running).toHaveLength(1);
    expect((doc.networks as { Name: string }[]).map((n) => n.Name)).toContain('ingress');
    expect(doc.nodes).toHaveLength(1);
    expect(doc.containers?.length).toBeGreaterThanOrEqual(1);
    const version = JSON.parse(
      execFileSync('docker', ['version', '--format', '{{json .Server}}'], { encoding: 'utf8' }),
    );
    expect(doc.metadata).toMatchObject({
      cluster: 'local',
      apiVersion: version.ApiVersion,
      engineVersion: version.Version,
    });
    expect(doc.metadata?.durationMs).toBeLessThan(5000);
    expect(requests.sort()).toEqual([
      'GET /containers/json?all=false',
      'GET /info',
      'GET /networks',
      'GET /nodes',
      'GET /services',
      // Only tasks meant to run: history stays on the manager.
      `GET /tasks?filters=${encodeURIComponent(JSON.stringify({ 'desired-state': ['running'] }))}`,
      'GET /version',
    ]);
  });

  it('takes the same number of requests for 1 service and for 5', async () => {
    const one = await snapshotCounted();
    expect(mine(one.snapshot).ours).toHaveLength(1);
    await createServices(1, 5);
    const five = await snapshotCounted();
    expect(mine(five.snapshot).ours).toHaveLength(5);
    expect(mine(five.snapshot).running).toHaveLength(5);
    expect(five.requests).toHaveLength(7);
    expect(five.requests.sort()).toEqual(one.requests.sort());
  });

  it('reads the engine over ssh (docker system dial-stdio), checking the host key', async () => {
    const server = await sshServer(tmp);
    try {
      const cluster: ClusterConfig = {
        endpoint: { kind: 'ssh', host: `ssh://deploy@127.0.0.1:${server.port}`, identityFile: 'ssh/id' },
      };
      await writeFile(path.join(tmp, '.ssh', 'known_hosts'), `[127.0.0.1]:${server.port} ${server.hostPublicKey}\n`);
      const { snapshot: doc, resolved } = await resolveAndRead('over-ssh', cluster);
      expect(resolved.display).toBe(`ssh://deploy@127.0.0.1:${server.port}`);
      expect(mine(doc).ours.length).toBeGreaterThanOrEqual(1);
      // One ssh session per request, each asking the host for the engine's API.
      expect(server.execs().length).toBeGreaterThanOrEqual(7);
      expect(new Set(server.execs())).toEqual(new Set(['docker system dial-stdio']));

      // The same server presenting a key known_hosts does not hold for it: refused.
      await writeFile(path.join(tmp, '.ssh', 'known_hosts'), `[127.0.0.1]:${server.port} ${server.otherPublicKey}\n`);
      const { error, ms } = await failure('over-ssh', cluster);
      expect(error.failure).toBe('ssh');
      expect(error.message).toContain('ssh failure: the host key does not match known_hosts');
      expect(ms).toBeLessThan(BOUND_MS);
    } finally {
      await server.close();
    }
  });
});

/** Resolves and reads, expecting a one-line ClusterError naming the cluster; returns it and the time taken. */
async function failure(
  name: string,
  cluster: ClusterConfig,
  env: Record<string, string> = {},
): Promise<{ error: ClusterUnavailableError; ms: number }> {
  const started = performance.now();
  const outcome = await resolveAndRead(name, cluster, env).then(
    () => undefined,
    (e: unknown) => e,
  );
  const ms = performance.now() - started;
  expect(outcome).toBeInstanceOf(ClusterError);
  const error = outcome as ClusterUnavailableError;
  expect(error.message).not.toContain('\n');
  expect(error.message.startsWith(`cluster "${name}"`)).toBe(true);
  return { error, ms };
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)),
  );
}

function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** A throwaway certificate made with openssl now, never committed. */
function certificate(
  dir: string,
  name: string,
  subjectAltName: string,
): { key: Buffer; cert: Buffer; certFile: string } {
  const keyFile = path.join(dir, `${name}-key.pem`);
  const certFile = path.join(dir, `${name}-cert.pem`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '1',
      '-subj',
      `/CN=${name}`,
      '-addext',
      `subjectAltName=${subjectAltName}`,
    ],
    { stdio: 'ignore' },
  );
  return { key: readFileSync(keyFile), cert: readFileSync(certFile), certFile };
}

describe('an unreachable cluster is one line naming it, within the bound', () => {
  const servers: net.Server[] = [];
  const held: net.Socket[] = [];
  let blackHolePort: number;
  let selfSignedPort: number;
  let otherNamePort: number;
  let otherNameCa: string;

  beforeAll(async () => {
    // Accepts connections and never answers: a hung engine or a black-holed path.
    const blackHole = net.createServer((socket) => {
      held.push(socket);
      socket.on('error', () => {});
    });
    servers.push(blackHole);
    blackHolePort = await listen(blackHole);

    const notDocker = (_req: unknown, res: import('node:http').ServerResponse) => {
      res.writeHead(404, { 'content-type': 'text/html' });
      res.end('<html>not here</html>');
    };
    const selfSigned = certificate(tmp, 'self-signed', 'IP:127.0.0.1');
    const selfSignedServer = https.createServer({ key: selfSigned.key, cert: selfSigned.cert }, notDocker);
    servers.push(selfSignedServer);
    selfSignedPort = await listen(selfSignedServer);

    const otherName = certificate(tmp, 'other-name', 'DNS:other.test');
    otherNameCa = otherName.certFile;
    const otherNameServer = https.createServer({ key: otherName.key, cert: otherName.cert }, notDocker);
    servers.push(otherNameServer);
    otherNamePort = await listen(otherNameServer);
  });

  afterAll(async () => {
    for (const s of held) s.destroy();
    await Promise.all(servers.map(closeServer));
  });

  it('connection refused', async () => {
    const probe = net.createServer();
    const port = await listen(probe);
    await closeServer(probe);
    const { error, ms } = await failure('prod', { endpoint: { kind: 'tcp', host: `tcp://127.0.0.1:${port}` } });
    expect(error.failure).toBe('refused');
    expect(error.message).toBe(
      `cluster "prod" (tcp://127.0.0.1:${port}): connection refused (is the Docker Engine running and listening there?)`,
    );
    expect(ms).toBeLessThan(BOUND_MS);
  });

  it('no such socket', async () => {
    const { error, ms } = await failure('prod', { endpoint: { kind: 'socket', path: 'missing/docker.sock' } });
    expect(error.failure).toBe('no-socket');
    expect(error.message).toBe(
      `cluster "prod" (unix://${tmp}/missing/docker.sock): no such socket (is the Docker Engine running? is the path right?)`,
    );
    expect(ms).toBeLessThan(BOUND_MS);
  });

  it('TLS failure: a self-signed engine certificate, verification on by default', async () => {
    const { error, ms } = await failure('prod', {
      endpoint: { kind: 'tcp', host: `tcp://127.0.0.1:${selfSignedPort}`, tls: { verify: true } },
    });
    expect(error.failure).toBe('tls');
    expect(error.message).toBe(
      `cluster "prod" (tcp://127.0.0.1:${selfSignedPort}): TLS failure: certificate verify failed: the engine certificate is self-signed and not trusted`,
    );
    expect(ms).toBeLessThan(BOUND_MS);
  });

  it('TLS failure: a trusted certificate for another host name', async () => {
    const { error, ms } = await failure('prod', {
      endpoint: { kind: 'tcp', host: `tcp://127.0.0.1:${otherNamePort}`, tls: { ca: otherNameCa, verify: true } },
    });
    expect(error.failure).toBe('tls');
    expect(error.message).toBe(
      `cluster "prod" (tcp://127.0.0.1:${otherNamePort}): TLS failure: hostname mismatch: the engine certificate is for DNS:other.test, not 127.0.0.1`,
    );
    expect(ms).toBeLessThan(BOUND_MS);
  });

  it('with verification off, TLS passes and a non-Docker server is named as such', async () => {
    const { error } = await failure('prod', {
      endpoint: { kind: 'tcp', host: `tcp://127.0.0.1:${selfSignedPort}`, tls: { verify: false } },
    });
    expect(error.failure).toBe('not-docker');
    expect(error.message).toBe(
      `cluster "prod" (tcp://127.0.0.1:${selfSignedPort}): not a Docker API: GET /version answered HTTP 404`,
    );
  });

  it('timeout: an endpoint that accepts and never answers, with the default bound', async () => {
    const { error, ms } = await failure('prod', {
      endpoint: { kind: 'tcp', host: `tcp://127.0.0.1:${blackHolePort}` },
    });
    expect(error.failure).toBe('timeout');
    expect(error.message).toBe(
      `cluster "prod" (tcp://127.0.0.1:${blackHolePort}): timeout: no answer within ${DEFAULT_TIMEOUT_MS / 1000}s`,
    );
    expect(ms).toBeGreaterThanOrEqual(DEFAULT_TIMEOUT_MS - 50);
    expect(ms).toBeLessThan(BOUND_MS);
  });

  it('timeout: the configured bound, also when the TLS handshake never completes', async () => {
    for (const tls of [undefined, { verify: true }]) {
      const { error, ms } = await failure('prod', {
        endpoint: { kind: 'tcp', host: `tcp://127.0.0.1:${blackHolePort}`, ...(tls ? { tls } : {}) },
        timeout: '1s',
      });
      expect(error.failure).toBe('timeout');
      expect(ms).toBeGreaterThanOrEqual(950);
      expect(ms).toBeLessThan(2500);
    }
  });

  it('a missing context', async () => {
    const { error, ms } = await failure(
      'prod',
      { endpoint: { kind: 'context', name: 'staging' } },
      {
        DOCKER_CONFIG: path.join(tmp, 'no-docker-config'),
      },
    );
    expect(error.message).toBe(
      `cluster "prod": Docker context "staging" does not exist in ${tmp}/no-docker-config/contexts; contexts there: default. Create it with \`docker context create\` or name one of those.`,
    );
    expect(ms).toBeLessThan(BOUND_MS);
  });
});

/**
 * An in-process ssh server that, like a host running sshd and docker, answers
 * `docker system dial-stdio` by connecting the session to the engine socket.
 */
async function sshServer(dir: string) {
  const sshDir = path.join(dir, 'ssh');
  await rm(sshDir, { recursive: true, force: true });
  execFileSync('mkdir', ['-p', sshDir, path.join(dir, '.ssh')]);
  for (const name of ['id', 'host', 'other']) {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(sshDir, name), '-C', name]);
  }
  const publicKey = (name: string) =>
    readFileSync(path.join(sshDir, `${name}.pub`), 'utf8')
      .split(' ')
      .slice(0, 2)
      .join(' ');
  const allowed = ssh2.utils.parseKey(readFileSync(path.join(sshDir, 'id.pub')));
  if (allowed instanceof Error) throw allowed;
  const execs: string[] = [];
  const connections = new Set<ssh2.Connection>();
  const server = new ssh2.Server({ hostKeys: [readFileSync(path.join(sshDir, 'host'))] }, (client) => {
    connections.add(client);
    client.on('error', () => {});
    client.on('authentication', (ctx) => {
      const ok =
        ctx.method === 'publickey' &&
        ctx.username === 'deploy' &&
        ctx.key.algo === allowed.type &&
        ctx.key.data.equals(allowed.getPublicSSH()) &&
        (!ctx.signature || allowed.verify(ctx.blob as Buffer, ctx.signature, ctx.hashAlgo) === true);
      if (ok) ctx.accept();
      else ctx.reject();
    });
    client.on('ready', () => {
      client.on('session', (acceptSession) => {
        const session = acceptSession();
        session.on('exec', (accept, reject, info) => {
          execs.push(info.command);
          if (info.command !== 'docker system dial-stdio') {
            reject();
            return;
          }
          const stream = accept();
          const engine = net.connect(DOCKER_SOCKET);
          stream.pipe(engine).pipe(stream);
          engine.on('error', () => stream.close());
          engine.on('close', () => stream.close());
        });
      });
    });
  });
  const port = await listen(server as unknown as net.Server);
  return {
    port,
    hostPublicKey: publicKey('host'),
    otherPublicKey: publicKey('other'),
    execs: () => [...execs],
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of connections) c.end();
        server.close(() => resolve());
      }),
  };
}
