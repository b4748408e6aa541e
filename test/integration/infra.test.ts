/**
 * The integration tier's own plumbing, end to end: a busybox Swarm service published in host mode
 * on a loopback port, served through a real HAProxy that is reloaded and stopped. Loopback only.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import {
  checkHaproxy,
  createService,
  describeIntegration,
  freePort,
  httpGet,
  removeAllTestServices,
  startHaproxy,
  tempDir,
  uniqueServiceName,
  waitForHttp,
} from '../helpers/infra.ts';

const PREFIX = 'it-infra';

function haproxyConfig(proxyPort: number, servicePort: number, version: string): string {
  return `global
  log stderr format raw local0 notice

defaults
  mode http
  log global
  timeout connect 2s
  timeout client 10s
  timeout server 10s

frontend web
  bind 127.0.0.1:${proxyPort}
  acl is_web hdr(host) -i web.test
  use_backend web if is_web
  default_backend no_route

backend no_route
  http-request return status 404 content-type text/plain string "no route"

backend web
  http-response set-header X-Config ${version}
  server task1 127.0.0.1:${servicePort}
`;
}

describeIntegration('integration infrastructure: Swarm service behind a real HAProxy', ['docker', 'haproxy'], () => {
  let dir = '';
  let servicePort = 0;
  let proxyPort = 0;

  beforeAll(async () => {
    await removeAllTestServices(`${PREFIX}-`); // leftovers of an interrupted run
    dir = await tempDir();
    servicePort = await freePort();
    proxyPort = await freePort();
    await createService({
      name: uniqueServiceName(PREFIX),
      labels: { 'com.docker.lb.hosts': 'web.test', 'com.docker.lb.port': '80' },
      publish: { target: 80, published: servicePort },
    });
    await waitForHttp(`http://127.0.0.1:${servicePort}/`, { accept: (r) => r.status === 200 });
  });

  it('routes by Host header to the service, reloads a new config, refuses a bad one, and stops', async () => {
    const cfg = path.join(dir, 'haproxy.cfg');
    await writeFile(cfg, haproxyConfig(proxyPort, servicePort, 'v1'));
    expect(await checkHaproxy(cfg)).toMatchObject({ ok: true });

    const proxy = await startHaproxy(cfg, { port: proxyPort });
    const url = `http://127.0.0.1:${proxyPort}/`;

    const first = await httpGet(url, { host: 'web.test' });
    expect(first).toMatchObject({ status: 200, body: 'ok\n' });
    expect(first.headers['x-config']).toBe('v1');
    expect(await httpGet(url, { host: 'other.test' })).toMatchObject({ status: 404, body: 'no route' });

    await writeFile(cfg, haproxyConfig(proxyPort, servicePort, 'v2'));
    await proxy.reload();
    const second = await httpGet(url, { host: 'web.test' });
    expect(second).toMatchObject({ status: 200, body: 'ok\n' });
    expect(second.headers['x-config']).toBe('v2');

    await writeFile(cfg, `${haproxyConfig(proxyPort, servicePort, 'v3')}  bogus-directive\n`);
    await expect(proxy.reload()).rejects.toThrow(/bogus-directive/);
    expect((await httpGet(url, { host: 'web.test' })).headers['x-config']).toBe('v2');

    await proxy.stop();
    await expect(httpGet(url, { host: 'web.test', timeoutMs: 1000 })).rejects.toThrow(/ECONNREFUSED/);
  });
});
