/**
 * The controller (the built `interlock watch`) reading the fake Docker Engine the fleet bench and
 * the fleet integration test use: a label change on the fake engine reaches the served bundle,
 * through an event-driven cycle and across idle reconciles (issue 12's raw-list digest). No Docker,
 * no proxy (the output's check is `none`); loopback only.
 *
 * The cluster's engine is named in the config, not by DOCKER_HOST: the fleet bench once let the
 * controller inherit the environment and read the host's engine instead, so the fake's changes
 * never reached it (issue 11). A controller that reads any other engine fails here.
 *
 * The output serves HTTPS, and one service names a certificate outside the output's folder (an
 * absolute `interlock.ssl_cert`): that service alone is left out, with a diagnostic naming
 * cluster, service and label; the bundle keeps flowing for the others (issue 11).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/infra.ts';
import { selfSignedPair } from '../render/proxy-check.ts';
import { httpService } from '../watch/fake-swarm.ts';
import { sleep, startWatch, type WatchProcess, waitFor } from '../watch/it-helpers.ts';
import { type FakeEngine, startFakeEngine } from './helpers.ts';

const TOKEN = 'fake-engine-test-token';

interface Served {
  hash: string;
  files: { name: string; content: string }[];
}

/** GET the bundle once (the controller answers at once when `after` is not its current hash). */
function bundle(port: number, after = ''): Promise<Served | undefined> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      `http://127.0.0.1:${port}/v1/bundles/edge?instance=probe&after=${after}`,
      { headers: { authorization: `Bearer ${TOKEN}` }, timeout: 15_000 },
      (res) => {
        let b = '';
        res.on('data', (c) => {
          b += c;
        });
        res.on('end', () => resolve(res.statusCode === 200 ? (JSON.parse(b) as Served) : undefined));
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer')));
    req.on('error', reject);
  });
}

describe('controller on the fake engine: label changes reach the served bundle', () => {
  let dir = '';
  let engine: FakeEngine;
  let controller: WatchProcess;
  let agentsPort = 0;
  let services = Array.from({ length: 5 }, (_, i) => httpService(`svc-${i}`, 21_000 + i));
  let outside = '';

  const text = (b: Served | undefined) => (b?.files ?? []).map((f) => f.content).join('\n');
  const relabel = (host: string) => {
    services = services.map((s, k) => (k === 0 ? { ...s, labels: { ...s.labels, 'interlock.hostname': host } } : s));
    engine.set(services);
  };
  const served = (host: string) =>
    waitFor(
      `the served bundle to route ${host}.test`,
      async () => {
        const b = await bundle(agentsPort);
        return b && text(b).includes(`${host}.test`) ? b : undefined;
      },
      { timeoutMs: 20_000 },
    ).catch((e: unknown) => {
      throw new Error(`${String(e)}\ncontroller log:\n${controller.lines().join('\n')}`);
    });

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'il-fake-engine-'));
    const pair = selfSignedPair('fake.test');
    await mkdir(path.join(dir, 'edge', 'certs'), { recursive: true });
    await mkdir(path.join(dir, 'elsewhere'));
    await writeFile(path.join(dir, 'edge', 'certs', 'default.pem'), `${pair.cert}${pair.key}`);
    outside = path.join(dir, 'elsewhere', 'far.pem');
    await writeFile(outside, `${pair.cert}${pair.key}`);
    services = [...services, httpService('far', 21_100, { 'interlock.ssl_cert': outside })];
    engine = await startFakeEngine(path.join(dir, 'docker.sock'), services);
    agentsPort = await freePort();
    await writeFile(path.join(dir, 'token'), `${TOKEN}\n`);
    const config = path.join(dir, 'interlock.config.json');
    await writeFile(
      config,
      JSON.stringify({
        clusters: { fake: { endpoint: { kind: 'socket', path: engine.socketPath }, nodeAddress: '127.0.0.1' } },
        agents: { tokenFile: 'token', listen: `127.0.0.1:${agentsPort}`, wait: '5s' },
        watch: { debounce: { min: '50ms', max: '300ms' }, reconcile: '1s' },
        outputs: [
          {
            kind: 'haproxy',
            name: 'edge',
            file: path.join(dir, 'edge', 'haproxy.cfg'),
            http: { address: '127.0.0.1', port: await freePort() },
            https: { address: '127.0.0.1', port: await freePort(), certDir: 'edge/certs', defaultCert: 'default.pem' },
            validate: { kind: 'none' },
            serve: true,
            write: false,
          },
        ],
      }),
    );
    // A DOCKER_HOST that answers nothing: the controller must read the engine its config names.
    controller = await startWatch({
      config,
      listenPort: await freePort(),
      env: { DOCKER_HOST: `unix://${path.join(dir, 'no-engine.sock')}` },
    });
  });

  afterAll(async () => {
    await controller?.stop();
    await engine?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("serves the fake engine's services, then each label change, before and after idle reconciles", async () => {
    const first = await served('svc-0');
    expect(text(first)).toContain('svc-4.test');

    relabel('changed-1');
    const second = await served('changed-1');
    expect(second.hash).not.toBe(first.hash);
    expect(text(second)).not.toContain('svc-0.test');

    // Idle reconciles (every 1 s) find the raw lists unchanged and parse nothing: nothing new is
    // served (the long-poll holds its 5 s and answers 304); the next event must still be served.
    await sleep(1500);
    expect(await bundle(agentsPort, second.hash)).toBeUndefined();
    relabel('changed-2');
    const third = await served('changed-2');
    expect(third.hash).not.toBe(second.hash);
  });

  it("leaves out only the service whose certificate is outside the output's folder, saying why", async () => {
    const b = await served('svc-1');
    expect(text(b)).not.toContain('far.test');
    expect(text(b)).not.toContain(outside);
    expect(b.files.map((f) => f.name)).toContain('certs/default.pem');
    // Labels name certificates by file name only: the absolute path is refused where it is parsed,
    // for that service alone (a certificate path outside the folder from anywhere else is left out
    // by the TLS material check: test/apply/material.test.ts).
    const line = await controller.waitForLog(/service=far\b.*label=interlock\.ssl_cert/);
    expect(line).toContain('code=label-invalid');
    expect(line).toContain('the service is left out');
    expect(line).toContain('write the file name inside the certificate directory');
  });
});
