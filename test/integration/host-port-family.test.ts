/**
 * Host-mode ports that differ between IPv4 and IPv6, on the real Swarm, through real HAProxy and
 * Nginx (issue 9: requests for one host reached a container of another service).
 *
 * What Docker 20.10 does here (dockerd 20.10.24, userland proxy on, IPv6 not enabled for the
 * bridge, but the host has IPv6): a port published without a host port (`-p 80`,
 * `--publish mode=host,target=80`) is bound twice, on 0.0.0.0 and on ::, and each address draws
 * its host port from its own allocator (libnetwork's portallocator keeps a "last port" per host
 * IP). The two allocators move together until something draws from one of them only: a container
 * published on `0.0.0.0::80` advances the IPv4 one alone. From then on every such port differs by
 * family, e.g. a task's `Status.PortStatus.Ports` is
 *   [{TargetPort 80, PublishedPort 32781, host}, {TargetPort 80, PublishedPort 32770, host}]
 * (no address in PortStatus; IPv4 first), and /containers/json says
 *   [{IP 0.0.0.0, PrivatePort 80, PublicPort 32781}, {IP ::, PrivatePort 80, PublicPort 32770}].
 * The :: listener of docker-proxy is IPv6-only, so 127.0.0.1:32770 is free for anyone else: here
 * a decoy container of another "service" takes it, as seen live. interlock used to sort the ports
 * and take the lowest, so it sent the host to the decoy.
 *
 * Network rule: traffic to 127.0.0.1 only. Everything started here is removed in afterAll.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { interlock } from '../helpers/exec.ts';
import {
  createService,
  describeIntegration,
  dockerCli,
  freePort,
  httpGet,
  type ProxyProcess,
  removeAllTestServices,
  startHaproxy,
  startNginx,
  TEST_IMAGE,
  tempDir,
  uniqueServiceName,
  waitForHttp,
} from '../helpers/infra.ts';

const PREFIX = 'it-pfam';
const DOMAIN = `pf${process.pid}.test.local`;

function serve(body: string): string[] {
  return ['/bin/sh', '-c', `mkdir -p /www && echo ${body} > /www/index.html && exec httpd -f -p 80 -h /www`];
}

/** `docker port NAME 80/tcp` → the host port per family. */
async function containerPorts(name: string): Promise<{ v4: number; v6: number }> {
  const lines = (await dockerCli(['port', name, '80/tcp'])).trim().split('\n');
  const port = (re: RegExp) => Number(lines.find((l) => re.test(l))?.replace(/.*:/, '') ?? Number.NaN);
  return { v4: port(/^0\.0\.0\.0:/), v6: port(/^\[::\]:/) };
}

describeIntegration('host ports that differ by address family', ['docker', 'haproxy', 'nginx'], () => {
  const svc = uniqueServiceName(PREFIX);
  const containers = {
    drift: `${PREFIX}-drift-${process.pid}`,
    drift2: `${PREFIX}-drift2-${process.pid}`,
    plain: `${PREFIX}-plain-${process.pid}`,
  };
  const decoys: string[] = [];
  const host = { svc: `svc.${DOMAIN}`, plain: `plain.${DOMAIN}` };
  let dir = '';
  let hp = 0;
  let ng = 0;
  let haproxy: ProxyProcess | undefined;
  let nginx: ProxyProcess | undefined;
  const ports: Record<'svc' | 'plain', { v4: number; v6: number }> = {
    svc: { v4: 0, v6: 0 },
    plain: { v4: 0, v6: 0 },
  };
  const all = () => [...Object.values(containers), ...decoys];

  beforeAll(async () => {
    await removeAllTestServices(`${PREFIX}-`);
    const stale = (await dockerCli(['ps', '-aq', '--filter', `name=^${PREFIX}-`])).split('\n').filter(Boolean);
    if (stale.length > 0) await dockerCli(['rm', '-f', ...stale]);

    // Draw two ports from the IPv4 allocator only: from now on the two families differ by two, so
    // each IPv6-only port below is one the drift containers held (freed before the decoys bind
    // it), never the IPv4 port of a container this test still runs.
    for (const name of [containers.drift, containers.drift2])
      await dockerCli(['run', '-d', '--name', name, '-p', '0.0.0.0::80', TEST_IMAGE, ...serve('drift')]);
    await createService({
      name: svc,
      labels: { 'interlock.hostname': 'svc', 'interlock.domain': DOMAIN, 'interlock.port': '80' },
      publish: { target: 80 },
      args: serve('right-service'),
    });
    const task = (await dockerCli(['ps', '-q', '--filter', `label=com.docker.swarm.service.name=${svc}`])).trim();
    ports.svc = await containerPorts(task);
    await dockerCli([
      'run',
      '-d',
      '--name',
      containers.plain,
      '-p',
      '80',
      '--label',
      `interlock.hostname=plain`,
      '--label',
      `interlock.domain=${DOMAIN}`,
      TEST_IMAGE,
      ...serve('right-container'),
    ]);
    ports.plain = await containerPorts(containers.plain);
    // What this test is about: the engine gave the two families different host ports.
    for (const [k, p] of Object.entries(ports)) {
      expect(p.v4, `${k}: IPv4 port`).toBeGreaterThan(0);
      expect(p.v6, `${k}: IPv6 port differs from the IPv4 one`).not.toBe(p.v4);
    }
    await dockerCli(['rm', '-f', containers.drift, containers.drift2]);
    expect(ports.svc.v6).not.toBe(ports.plain.v4);
    // Another "service" on each IPv6-only port, on IPv4 loopback: where the wrong choice leads.
    for (const [k, p] of Object.entries(ports)) {
      const name = `${PREFIX}-decoy-${k}-${process.pid}`;
      decoys.push(name);
      await dockerCli(['run', '-d', '--name', name, '-p', `127.0.0.1:${p.v6}:80`, TEST_IMAGE, ...serve('decoy')]);
    }
    for (const p of Object.values(ports)) {
      await waitForHttp(`http://127.0.0.1:${p.v4}/`, { accept: (r) => r.status === 200 });
      await waitForHttp(`http://127.0.0.1:${p.v6}/`, { accept: (r) => r.body === 'decoy\n' });
    }

    dir = await tempDir('ilpf-');
    await mkdir(path.join(dir, 'run'), { recursive: true });
    [hp, ng] = [await freePort(), await freePort()];
    const config = path.join(dir, 'interlock.config.yaml');
    await writeFile(
      config,
      stringify({
        clusters: { local: { endpoint: { kind: 'socket', path: '/var/run/docker.sock' }, nodeAddress: '127.0.0.1' } },
        rules: [{ kind: 'interlock' }],
        outputs: [
          { kind: 'haproxy', file: 'out/haproxy.cfg', http: { address: '127.0.0.1', port: hp } },
          { kind: 'nginx', file: 'out/nginx.conf', runDir: 'run', http: { address: '127.0.0.1', port: ng } },
        ],
      }),
    );
    const r = await interlock(['render', '--config', config], { timeoutMs: 30_000 });
    if (r.code !== 0) throw new Error(`render exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
    haproxy = await startHaproxy(path.join(dir, 'out', 'haproxy.cfg'), { port: hp });
    nginx = await startNginx(path.join(dir, 'out', 'nginx.conf'), dir, { port: ng });
  });

  afterAll(async () => {
    await haproxy?.stop();
    await nginx?.stop();
    await dockerCli(['rm', '-f', ...all()]).catch(() => {});
    // The Swarm service goes in describeIntegration's stopAll.
  });

  it('renders the IPv4 host port of the task and of the container', async () => {
    const cfg = await readFile(path.join(dir, 'out', 'haproxy.cfg'), 'utf8');
    const conf = await readFile(path.join(dir, 'out', 'nginx.conf'), 'utf8');
    for (const p of Object.values(ports)) {
      for (const text of [cfg, conf]) {
        expect(text).toContain(`127.0.0.1:${p.v4}`);
        expect(text).not.toContain(`127.0.0.1:${p.v6}`);
      }
    }
  });

  it.each([
    ['haproxy', () => hp],
    ['nginx', () => ng],
  ])('through %s each host reaches its own service, never the decoy', async (_proxy, port) => {
    for (const [h, body] of [
      [host.svc, 'right-service'],
      [host.plain, 'right-container'],
    ] as const) {
      const r = await httpGet(`http://127.0.0.1:${port()}/`, { host: h });
      expect({ status: r.status, body: r.body }, h).toEqual({ status: 200, body: `${body}\n` });
    }
  });
});
