import { afterEach, describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/runtime/metrics.ts';
import { healthReport } from '../../src/watch/health.ts';
import { parseListen, type RunningServer, startHttpServer } from '../../src/watch/http-server.ts';
import { httpGet } from '../helpers/infra.ts';

describe('parseListen', () => {
  it('reads ADDRESS:PORT, [IPv6]:PORT and :PORT; refuses the rest', () => {
    expect(parseListen('127.0.0.1:9090')).toEqual({ host: '127.0.0.1', port: 9090 });
    expect(parseListen('[::1]:9090')).toEqual({ host: '::1', port: 9090 });
    expect(parseListen(':9090')).toEqual({ host: '0.0.0.0', port: 9090 });
    expect(parseListen('localhost:1')).toEqual({ host: 'localhost', port: 1 });
    for (const bad of ['9090', '127.0.0.1', '127.0.0.1:', '1.2.3.4:70000', 'a b:1'])
      expect(parseListen(bad)).toBe(undefined);
  });
});

describe('the HTTP listener', () => {
  let server: RunningServer | undefined;
  afterEach(async () => {
    await server?.close();
  });

  it('answers /healthz with the report and its status, /metrics in Prometheus text, 404 elsewhere', async () => {
    const metrics = createMetrics();
    metrics.events.inc({ cluster: 'local', type: 'service', action: 'update' });
    let healthy = true;
    server = await startHttpServer(
      { host: '127.0.0.1', port: 0 },
      {
        health: () =>
          healthReport(
            [{ cluster: 'local', state: healthy ? 'connected' : 'stale', streamUp: healthy }],
            [],
            undefined,
          ),
        metrics: async () => ({ contentType: metrics.registry.contentType, text: await metrics.registry.metrics() }),
      },
    );
    const base = `http://127.0.0.1:${server.address.port}`;
    const ok = await httpGet(`${base}/healthz`);
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toMatchObject({ ok: true, clusters: { local: { state: 'connected' } } });
    healthy = false;
    expect((await httpGet(`${base}/healthz`)).status).toBe(503);
    const m = await httpGet(`${base}/metrics`);
    expect(m.status).toBe(200);
    expect(m.headers['content-type']).toContain('text/plain');
    expect(m.body).toContain('interlock_events_total{cluster="local",type="service",action="update"} 1');
    expect((await httpGet(`${base}/`)).status).toBe(404);
    expect((await httpGet(`${base}/healthz`, { method: 'POST' })).status).toBe(405);
  });
});
