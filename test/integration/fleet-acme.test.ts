/**
 * ACME certificates reach the agents (issue 11 with issue 13): the controller (the built
 * `interlock watch`) reads the fake Docker Engine, its `acme.storage` lies outside the served
 * output's folder, and the certificate is there as the issuer writes it (src/acme/store.ts:
 * `<storage>/certs/<host>.<hash>.pem`, chain then key, 0600; valid, so nothing is ordered and no
 * ACME server is needed). An `interlock agent` with a real HAProxy gets the certificate in its
 * bundle, writes it under its --dir (0600) and its HAProxy serves it over TLS. The key appears in
 * no log line, on /healthz, in the metrics or in `interlock status`. Loopback only.
 */
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { AcmeStore } from '../../src/acme/store.ts';
import {
  type AgentProcess,
  type FakeEngine,
  startAgent,
  startBackend,
  startFakeEngine,
  waitConverged,
} from '../fleet/helpers.ts';
import { interlock } from '../helpers/exec.ts';
import { describeIntegration, freePort, httpGet, type ProxyProcess, startHaproxy, tempDir } from '../helpers/infra.ts';
import { selfSignedPair } from '../render/proxy-check.ts';
import { httpService } from '../watch/fake-swarm.ts';
import { startWatch, type WatchProcess, waitFor } from '../watch/it-helpers.ts';

const HOST = 'secure.test';

/** The TLS handshake with SNI `servername` on 127.0.0.1:port: the certificate's CN and an HTTP answer's status line. */
function tlsGet(port: number, servername: string): Promise<{ cn: string; status: string }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false }, () => {
      const cn = String(socket.getPeerCertificate().subject?.CN ?? '');
      socket.write(`GET / HTTP/1.1\r\nHost: ${servername}\r\nConnection: close\r\n\r\n`);
      let answer = '';
      socket.on('data', (b: Buffer) => {
        answer += b.toString();
      });
      socket.on('end', () => resolve({ cn, status: answer.split('\r\n')[0] ?? '' }));
    });
    socket.setTimeout(5000, () => socket.destroy(new Error('no answer')));
    socket.on('error', reject);
  });
}

describeIntegration('proxy fleet: ACME certificates travel in the bundle', ['haproxy', 'openssl'], () => {
  let dir = '';
  let engine: FakeEngine;
  let controller: WatchProcess;
  let agent: AgentProcess;
  let proxy: ProxyProcess | undefined;
  let backend: { close(): Promise<void> } | undefined;
  let listenPort = 0;
  let agentsPort = 0;
  let hp = 0;
  let hs = 0;
  let certFile = '';
  let keyLine = '';
  const agentDir = () => path.join(dir, 'agent');

  beforeAll(async () => {
    dir = await tempDir('ilfa-');
    [listenPort, agentsPort, hp, hs] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const backendPort = await freePort();
    backend = await startBackend(backendPort, 'secure');
    engine = await startFakeEngine(path.join(dir, 'docker.sock'), [
      httpService('secure', backendPort, { 'interlock.hostname': 'secure' }),
    ]);
    // The certificate as the issuer stores it, outside the output's folder.
    const storage = path.join(dir, 'acme-storage');
    const store = new AcmeStore(storage);
    await store.init();
    const pair = selfSignedPair(HOST);
    // As the issuer writes it (src/acme/issuer.ts): the chain (leaf first), then the key.
    const pem = `${pair.cert.trimEnd()}\n${pair.key.trimEnd()}\n`;
    certFile = store.certFile(HOST, pem);
    await store.write(certFile, pem);
    // A line from the middle of the key: what must never show.
    const lines = pair.key.trim().split('\n');
    keyLine = lines[Math.floor(lines.length / 2)] as string;
    await mkdir(path.join(dir, 'ctl', 'edge', 'certs'), { recursive: true });
    await writeFile(path.join(dir, 'token'), 'acme-fleet-token\n');
    const config = path.join(dir, 'interlock.config.json');
    await writeFile(
      config,
      JSON.stringify({
        clusters: { fake: { endpoint: { kind: 'socket', path: engine.socketPath }, nodeAddress: '127.0.0.1' } },
        agents: { tokenFile: 'token', listen: `127.0.0.1:${agentsPort}`, wait: '20s' },
        acme: {
          // Never reached: the stored certificate is valid.
          directory: 'https://127.0.0.1:9/directory',
          storage: 'acme-storage',
          hosts: [HOST],
          httpPort: hp,
          challenge: { address: '127.0.0.1', port: await freePort() },
          retry: { min: '1h', max: '1h' },
        },
        outputs: [
          {
            kind: 'haproxy',
            name: 'edge',
            // The controller's own folder for this output; each agent rebases it onto its --dir.
            file: path.join(dir, 'ctl', 'edge', 'haproxy.cfg'),
            http: { address: '127.0.0.1', port: hp },
            https: { address: '127.0.0.1', port: hs, certDir: 'ctl/edge/certs' },
            masterSocket: path.join(dir, 'ctl', 'edge', 'stats.sock'),
            serve: true,
            write: false,
          },
        ],
      }),
    );
    controller = await startWatch({ config, listenPort, env: {} });
    agent = startAgent([
      '--controller',
      `http://127.0.0.1:${agentsPort}`,
      '--token-file',
      path.join(dir, 'token'),
      '--output',
      'edge',
      '--dir',
      agentDir(),
      '--instance',
      'a1',
      '--reload-master-socket',
      path.join(agentDir(), 'master.sock'),
    ]);
    const cfg = path.join(agentDir(), 'haproxy.cfg');
    await waitFor(cfg, () => readFile(cfg, 'utf8').catch(() => undefined), { timeoutMs: 60_000 }).catch(
      (e: unknown) => {
        throw new Error(
          `${String(e)}\ncontroller:\n${controller.lines().join('\n')}\nagent:\n${agent.lines().join('\n')}`,
        );
      },
    );
    proxy = await startHaproxy(cfg, { port: hp, cwd: agentDir() });
  });

  afterAll(async () => {
    await agent?.stop();
    await controller?.stop();
    await proxy?.stop();
    await backend?.close();
    await engine?.close();
  });

  it('the agent writes the ACME certificate under its folder (0600) and its HAProxy serves it', async () => {
    await waitConverged(listenPort, 'edge', ['a1'], { timeoutMs: 60_000 });
    const copy = path.join(agentDir(), 'interlock-acme', path.basename(certFile));
    expect(await readFile(copy, 'utf8')).toBe(await readFile(certFile, 'utf8'));
    expect((await stat(copy)).mode & 0o777).toBe(0o600);
    // The agent's files name the copy, never the controller's storage.
    const crtList = (await readFile(path.join(agentDir(), 'haproxy.cfg'), 'utf8')).match(/crt-list (\S+)/)?.[1];
    expect(crtList).toBeDefined();
    const list = await readFile(path.resolve(agentDir(), crtList as string), 'utf8');
    expect(list).toContain(copy);
    expect(list).not.toContain(path.join(dir, 'acme-storage'));
    const answer = await waitFor('HTTPS through the agent-run HAProxy', () => tlsGet(hs, HOST).catch(() => undefined), {
      timeoutMs: 20_000,
    });
    expect(answer.cn).toBe(HOST);
    expect(answer.status).toMatch(/^HTTP\/1\.1 200/);
  });

  it('the key shows nowhere: logs, /healthz, metrics, status', async () => {
    const health = await httpGet(`http://127.0.0.1:${listenPort}/healthz`);
    const metrics = await controller.metrics();
    const status = await interlock(['status', '--address', `127.0.0.1:${listenPort}`, '--format', 'json']);
    for (const [where, text] of [
      ['controller log', controller.lines().join('\n')],
      ['agent log', agent.lines().join('\n')],
      ['/healthz', health.body],
      ['/metrics', metrics],
      ['status', `${status.stdout}${status.stderr}`],
    ] as const) {
      expect(text.length, where).toBeGreaterThan(0);
      expect(text.includes(keyLine), `${where} holds a line of the key`).toBe(false);
    }
  });
});
