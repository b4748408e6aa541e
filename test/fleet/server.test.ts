/** The agents listener on a loopback port: long-poll, auth, reports, gzip, metrics. */
import http from 'node:http';
import { gunzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { makeBundle } from '../../src/fleet/bundle.ts';
import { FleetHub, type RunningAgentsServer, startAgentsServer } from '../../src/fleet/server.ts';
import { createLogger } from '../../src/runtime/log.ts';
import { createMetrics } from '../../src/runtime/metrics.ts';

const TOKEN = 'unit-token-123';
const bundle = (n: number) =>
  makeBundle('edge', 'haproxy', '/srv/p', [{ name: 'haproxy.cfg', content: `# version ${n}\n${'x'.repeat(2000)}\n` }]);

let server: RunningAgentsServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function setup(waitMs = 2000) {
  const lines: string[] = [];
  const log = createLogger({ format: 'logfmt', level: 'debug', write: (l) => lines.push(l) });
  const metrics = createMetrics();
  const hub = new FleetHub({ token: TOKEN, waitMs, staleMs: 60_000, log, metrics });
  hub.setOutputs(['edge']);
  server = await startAgentsServer(hub, { host: '127.0.0.1', port: 0 });
  return { hub, lines, metrics, port: server.address.port };
}

function request(
  port: number,
  path: string,
  options: { token?: string; method?: string; body?: string; gzip?: boolean } = {},
): Promise<{ status: number; body: Buffer; headers: http.IncomingHttpHeaders; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: options.method ?? 'GET',
        headers: {
          ...(options.token !== undefined ? { authorization: `Bearer ${options.token}` } : {}),
          ...(options.gzip ? { 'accept-encoding': 'gzip' } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks),
            headers: res.headers,
            ms: Date.now() - t0,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

describe('agents listener', () => {
  it('answers at once when the hash differs, holds the poll until a change, 304 after the wait', async () => {
    const { hub, port } = await setup(600);
    hub.publish(bundle(1));
    const first = await request(port, '/v1/bundles/edge?instance=a1&node=n', { token: TOKEN });
    expect(first.status).toBe(200);
    const got = JSON.parse(first.body.toString()) as { hash: string };
    expect(got.hash).toBe(bundle(1).hash);

    // Same hash: held, then answered by the next publish.
    const held = request(port, `/v1/bundles/edge?after=${got.hash}&instance=a1`, { token: TOKEN });
    await new Promise((r) => setTimeout(r, 150));
    expect(hub.waiting()).toBe(1);
    hub.publish(bundle(2));
    const changed = await held;
    expect(changed.status).toBe(200);
    expect((JSON.parse(changed.body.toString()) as { hash: string }).hash).toBe(bundle(2).hash);

    // Nothing changes: 304 after the wait.
    const idle = await request(port, `/v1/bundles/edge?after=${bundle(2).hash}&instance=a1`, { token: TOKEN });
    expect(idle.status).toBe(304);
    expect(idle.ms).toBeGreaterThanOrEqual(500);
    expect(hub.waiting()).toBe(0);
  });

  it('waits for the first bundle when there is none yet', async () => {
    const { hub, port } = await setup(3000);
    const held = request(port, '/v1/bundles/edge?instance=a1', { token: TOKEN });
    await new Promise((r) => setTimeout(r, 150));
    hub.publish(bundle(1));
    expect((await held).status).toBe(200);
  });

  it('gzips on request; the body is built once per change', async () => {
    const { hub, port } = await setup();
    hub.publish(bundle(1));
    const r = await request(port, '/v1/bundles/edge', { token: TOKEN, gzip: true });
    expect(r.headers['content-encoding']).toBe('gzip');
    expect(JSON.parse(gunzipSync(r.body).toString())).toEqual(bundle(1));
    expect(r.body.length).toBeLessThan(hub.served('edge')?.body.length ?? 0);
    expect(hub.publish(bundle(1))).toBe(false);
  });

  it('a wrong or missing token: 401, listed as unauthorized, logged once, the token never logged', async () => {
    const { hub, port, lines } = await setup();
    hub.publish(bundle(1));
    for (const token of ['nope', 'nope', undefined]) {
      const r = await request(port, '/v1/bundles/edge?instance=intruder&node=n9', token === undefined ? {} : { token });
      expect(r.status).toBe(401);
      expect(r.body.toString()).not.toContain(TOKEN);
    }
    const fleet = hub.health();
    expect(fleet.list).toMatchObject([{ instance: 'intruder', state: 'unauthorized', output: 'edge' }]);
    expect(lines.filter((l) => /wrong or missing token/.test(l))).toHaveLength(1);
    expect(lines.join('\n')).not.toContain(TOKEN);
    expect(hub.authorized(`Bearer ${TOKEN}`)).toBe(true);
    expect(hub.authorized(`Bearer ${TOKEN}x`)).toBe(false);
    expect(hub.authorized(TOKEN)).toBe(false);
  });

  it('404 for an output it does not serve, and for other paths', async () => {
    const { port } = await setup();
    const r = await request(port, '/v1/bundles/other', { token: TOKEN });
    expect(r.status).toBe(404);
    expect(r.body.toString()).toMatch(/served: edge/);
    expect((await request(port, '/healthz', { token: TOKEN })).status).toBe(404);
  });

  it('reports: the applied hash and the error show in the fleet and the metrics', async () => {
    const { hub, port, metrics, lines } = await setup();
    hub.publish(bundle(2));
    const post = (body: unknown) =>
      request(port, '/v1/reports', { token: TOKEN, method: 'POST', body: JSON.stringify(body) });
    expect(
      (await post({ instance: 'a1', node: 'n1', output: 'edge', proxy: 'haproxy', applied: bundle(2).hash })).status,
    ).toBe(204);
    expect(
      (await post({ instance: 'a2', node: 'n2', output: 'edge', applied: bundle(1).hash, error: '[ALERT] bad' }))
        .status,
    ).toBe(204);
    expect((await post({ output: 'edge' })).status).toBe(400);
    expect((await request(port, '/v1/reports', { token: TOKEN, method: 'POST', body: 'not json' })).status).toBe(400);
    const list = hub.health().list;
    expect(list.map((a) => [a.instance, a.state, a.error])).toEqual([
      ['a1', 'converged', null],
      ['a2', 'not_converged', '[ALERT] bad'],
    ]);
    expect(lines.filter((l) => /agent could not apply/.test(l))).toHaveLength(1);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/interlock_agents\{output="edge",state="converged"\} 1/);
    expect(text).toMatch(/interlock_agents\{output="edge",state="not_converged"\} 1/);
  });

  it('an output no longer served: its waiting polls are answered and it goes', async () => {
    const { hub, port } = await setup(5000);
    hub.publish(bundle(1));
    const held = request(port, `/v1/bundles/edge?after=${bundle(1).hash}`, { token: TOKEN });
    await new Promise((r) => setTimeout(r, 150));
    hub.setOutputs([]);
    const r = await held;
    expect(r.ms).toBeLessThan(3000);
    expect((await request(port, '/v1/bundles/edge', { token: TOKEN })).status).toBe(404);
  });
});
