import net from 'node:net';
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

describe('the HTTP listener under a connection flood', () => {
  let server: RunningServer | undefined;
  const sockets: net.Socket[] = [];
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await server?.close();
  });

  const handlers = {
    health: () => healthReport([{ cluster: 'local', state: 'connected' as const, streamUp: true }], [], undefined),
    metrics: async () => ({ contentType: 'text/plain', text: '' }),
  };

  /** How long until `closed` settles, or Infinity after `ms`. */
  const within = (closed: Promise<number>, ms: number) =>
    Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(Number.POSITIVE_INFINITY), ms))]);

  /** Opens a raw TCP connection; resolves once connected, with a promise of its close. */
  function connectRaw(port: number): Promise<{ socket: net.Socket; closed: Promise<number> }> {
    return new Promise((resolve, reject) => {
      const opened = Date.now();
      const socket = net.connect(port, '127.0.0.1');
      sockets.push(socket);
      const closed = new Promise<number>((done) => socket.on('close', () => done(Date.now() - opened)));
      socket.on('error', () => {});
      // Read what the server says (a 408 before it closes): an unread socket never ends.
      socket.resume();
      socket.once('connect', () => resolve({ socket, closed }));
      socket.once('error', reject);
    });
  }

  it('closes connections past the cap at once, and still answers once they are gone', async () => {
    server = await startHttpServer({ host: '127.0.0.1', port: 0 }, handlers, {
      maxConnections: 8,
      idleTimeoutMs: 60_000,
    });
    const port = server.address.port;
    const held: Array<{ socket: net.Socket; closed: Promise<number> }> = [];
    for (let i = 0; i < 8; i++) held.push(await connectRaw(port));
    // Past the cap: the kernel accepts, the server closes them without reading.
    const extra = [];
    for (let i = 0; i < 12; i++) extra.push(await connectRaw(port));
    const closedWithin = await Promise.all(extra.map((e) => within(e.closed, 10_000)));
    for (const ms of closedWithin) expect(ms).toBeLessThan(10_000);
    // The first eight are still open and served.
    held[0]?.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    const answer = await new Promise<string>((resolve) =>
      held[0]?.socket.once('data', (b: Buffer) => resolve(b.toString())),
    );
    expect(answer).toMatch(/^HTTP\/1\.1 200/);
    for (const h of held) h.socket.destroy();
    await Promise.all(held.map((h) => h.closed));
    await new Promise((r) => setTimeout(r, 50));
    expect((await httpGet(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
  });

  it('closes idle connections, and connections stuck in a request, after the idle timeout', async () => {
    server = await startHttpServer({ host: '127.0.0.1', port: 0 }, handlers, { maxConnections: 8, idleTimeoutMs: 300 });
    const port = server.address.port;
    const idle = await connectRaw(port);
    const partial = await connectRaw(port);
    partial.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
    const [idleMs, partialMs] = await Promise.all([within(idle.closed, 10_000), within(partial.closed, 10_000)]);
    expect(idleMs).toBeGreaterThanOrEqual(250);
    // Bounds are loose for a loaded machine; without the timeout they stay open (Infinity).
    expect(idleMs).toBeLessThan(10_000);
    expect(partialMs).toBeLessThan(10_000);
    expect((await httpGet(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
  });

  it('caps at 64 connections by default', async () => {
    server = await startHttpServer({ host: '127.0.0.1', port: 0 }, handlers);
    const port = server.address.port;
    const held: Array<{ socket: net.Socket; closed: Promise<number> }> = [];
    for (let i = 0; i < 64; i++) held.push(await connectRaw(port));
    const extra = await connectRaw(port);
    expect(await within(extra.closed, 10_000)).toBeLessThan(10_000);
    let stillOpen = 0;
    await new Promise((r) => setTimeout(r, 100));
    for (const h of held) if (!h.socket.destroyed && h.socket.readyState === 'open') stillOpen++;
    expect(stillOpen).toBe(64);
  });
});
