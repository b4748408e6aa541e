import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ApplyResult } from '../../src/apply/apply.ts';
import { type Config, configSchema } from '../../src/config/schema.ts';
import type { PlannedOutput } from '../../src/pipeline.ts';
import { createLogger } from '../../src/runtime/log.ts';
import { createMetrics } from '../../src/runtime/metrics.ts';
import { WatchDaemon } from '../../src/watch/daemon.ts';
import { templateTexts } from '../helpers/render.ts';
import { FakeSwarm, httpService, refused } from './fake-swarm.ts';

function config(input: unknown): Config {
  return configSchema.parse(input);
}

const haproxy = { kind: 'haproxy', file: 'out/haproxy.cfg', http: { address: '127.0.0.1', port: 8080 } };

function setup(swarms: Record<string, FakeSwarm>, cfg: Config) {
  const lines: string[] = [];
  const log = createLogger({ format: 'logfmt', level: 'info', write: (l) => lines.push(l.trimEnd()) });
  const metrics = createMetrics();
  const applied: PlannedOutput[] = [];
  const onDisk = new Map<string, string>();
  let gate: Promise<void> | undefined;
  const apply = async (o: PlannedOutput): Promise<ApplyResult> => {
    await gate;
    const text = o.files.map((f) => f.content).join('\n');
    if (onDisk.get(o.name) === text) return { kind: 'unchanged' };
    onDisk.set(o.name, text);
    applied.push(o);
    return { kind: 'applied', files: o.files.map((f) => ({ path: f.path, result: 'replaced' })), reload: undefined };
  };
  const daemon = new WatchDaemon({
    config: cfg,
    configDir: '/cfg',
    templates: templateTexts(),
    env: {},
    log,
    metrics,
    apply,
    connect: async (name) => {
      const swarm = swarms[name];
      if (!swarm) throw new Error(`no fake for ${name}`);
      return { api: swarm.api(), display: `fake://${name}`, timeoutMs: 1000 };
    },
    watcher: { backoff: { jitter: 0 } },
  });
  return {
    daemon,
    lines,
    metrics,
    applied,
    hold: () => {
      let release = () => {};
      gate = new Promise<void>((r) => {
        release = r;
      });
      return () => {
        gate = undefined;
        release();
      };
    },
  };
}

const mainFile = (o: PlannedOutput | undefined) => o?.files[o.files.length - 1]?.content ?? '';
const mapFile = (o: PlannedOutput | undefined) => o?.files[0]?.content ?? '';

describe('WatchDaemon (fake engines, fake timers)', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('renders at start, then turns a burst of events into one re-list and one apply', async () => {
    const swarm = new FakeSwarm();
    swarm.add(httpService('web', 8001));
    const { daemon, applied, metrics } = setup(
      { local: swarm },
      config({ clusters: { local: {} }, outputs: [haproxy] }),
    );
    daemon.start();
    await vi.advanceTimersByTimeAsync(200);
    expect(applied).toHaveLength(1);
    expect(mapFile(applied[0])).toContain('web.test');
    expect(mainFile(applied[0])).toContain('127.0.0.1:8001');

    const cyclesBefore = daemon.cycles;
    swarm.add(httpService('shop', 8002));
    // 20 events 40 ms apart: min (100 ms) never elapses, max (1 s) fires once.
    for (let i = 0; i < 20; i++) {
      swarm.emit('service', 'update', 'svc-shop', { name: 'shop' });
      await vi.advanceTimersByTimeAsync(40);
    }
    await vi.advanceTimersByTimeAsync(150);
    expect(daemon.cycles - cyclesBefore).toBeLessThanOrEqual(2);
    expect(applied).toHaveLength(2);
    expect(mapFile(applied[1])).toContain('shop.test');
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/interlock_events_total\{cluster="local",type="service",action="update"\} 20/);
    expect(text).toMatch(/interlock_applies_total\{output="haproxy"\} 2/);
    await daemon.stop();
  });

  it('re-lists every reconcile interval, catching changes no event announced', async () => {
    const swarm = new FakeSwarm();
    const { daemon, applied } = setup(
      { local: swarm },
      config({ clusters: { local: {} }, outputs: [haproxy], watch: { reconcile: '2s' } }),
    );
    daemon.start();
    await vi.advanceTimersByTimeAsync(200);
    swarm.add(httpService('quiet', 8003)); // e.g. a task moved on another node
    await vi.advanceTimersByTimeAsync(1500);
    expect(applied.some((o) => mapFile(o).includes('quiet.test'))).toBe(false);
    await vi.advanceTimersByTimeAsync(800);
    expect(applied.some((o) => mapFile(o).includes('quiet.test'))).toBe(true);
    await daemon.stop();
  });

  it('an idle reconcile of an API with raw bodies parses and renders nothing; a change still renders', async () => {
    const swarm = new FakeSwarm();
    swarm.add(httpService('web', 8001));
    const api = swarm.api();
    let raw = 0;
    // The engine's bodies as bytes, as the CLI's dockerode connection provides them.
    const lists: Record<string, () => Promise<unknown>> = {
      '/services?': () => api.listServices(),
      '/tasks?': () => api.listTasks(),
      '/networks?': () => api.listNetworks(),
      '/nodes?': () => api.listNodes(),
      '/containers/json?': () => api.listContainers(),
    };
    const rawApi = {
      ...api,
      getRaw: async (
        path: string,
        _query: unknown,
        { keep, each }: { keep: boolean; each?: (chunk: Buffer) => void },
      ) => {
        raw++;
        const body = Buffer.from(JSON.stringify(await (lists[path] as () => Promise<unknown>)()));
        each?.(body);
        return { digest: createHash('sha256').update(body).digest('base64'), ...(keep ? { body } : {}) };
      },
    };
    const { daemon, applied, metrics } = setup(
      { local: { api: () => rawApi } as unknown as FakeSwarm },
      config({ clusters: { local: {} }, outputs: [haproxy], watch: { reconcile: '1s' } }),
    );
    daemon.start();
    await vi.advanceTimersByTimeAsync(200);
    expect(applied).toHaveLength(1);
    const renders = async () => Number(/interlock_renders_total (\d+)/.exec(await metrics.registry.metrics())?.[1]);
    const rendersAfterStart = await renders();
    await vi.advanceTimersByTimeAsync(3500);
    // Three reconciles read the lists raw; none rendered.
    expect(raw).toBeGreaterThanOrEqual(15);
    expect(await renders()).toBe(rendersAfterStart);
    swarm.add(httpService('quiet', 8003));
    await vi.advanceTimersByTimeAsync(1200);
    expect(applied.some((o) => mapFile(o).includes('quiet.test'))).toBe(true);
    await daemon.stop();
  });

  it('an edited page in the policyFiles folder is served at the next reconcile, with no cluster change', async () => {
    vi.useRealTimers();
    const dir = await mkdtemp(path.join(tmpdir(), 'il-policy-'));
    try {
      await writeFile(path.join(dir, 'oops.html'), '<h1>v1</h1>\n');
      const swarm = new FakeSwarm();
      swarm.add(httpService('web', 8001, { 'interlock.error_page': 'oops.html' }));
      const { daemon, applied, lines } = setup(
        { local: swarm },
        config({ clusters: { local: {} }, outputs: [haproxy], policyFiles: dir, watch: { reconcile: '1s' } }),
      );
      const served = (text: string) => applied.some((o) => o.files.some((f) => f.content.includes(text)));
      daemon.start();
      await vi.waitFor(() => expect(served('<h1>v1</h1>'), lines.join('\n')).toBe(true), { timeout: 10_000 });
      await writeFile(path.join(dir, 'oops.html'), '<h1>v2</h1>\n');
      await vi.waitFor(() => expect(served('<h1>v2</h1>'), lines.join('\n')).toBe(true), { timeout: 10_000 });
      const count = applied.length;
      // Unchanged folder and cluster: reconciles render nothing more.
      await new Promise((r) => setTimeout(r, 2500));
      expect(applied.length).toBe(count);
      await daemon.stop();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('keeps a cluster that went down at its last known state; the other cluster goes on', async () => {
    const a = new FakeSwarm();
    const b = new FakeSwarm();
    a.add(httpService('web', 8001));
    b.add(httpService('api', 8002));
    const { daemon, applied, lines } = setup({ a, b }, config({ clusters: { a: {}, b: {} }, outputs: [haproxy] }));
    daemon.start();
    await vi.advanceTimersByTimeAsync(200);
    expect(daemon.health().status).toBe(200);

    b.down = refused();
    b.dropStreams();
    a.add(httpService('shop', 8003));
    a.emit('service', 'create', 'svc-shop', { name: 'shop' });
    await vi.advanceTimersByTimeAsync(300);
    const last = applied.at(-1);
    expect(mapFile(last)).toContain('shop.test');
    expect(mapFile(last)).toContain('api.test'); // b, as it was last read
    const health = daemon.health();
    expect(health.status).toBe(503);
    expect(health.body.clusters.b?.state).toBe('stale');
    expect(health.body.clusters.a?.state).toBe('connected');
    // The reconcile re-list tries b too, and says so once.
    await vi.advanceTimersByTimeAsync(5000);
    const warned = lines.filter((l) => l.includes('cannot read cluster; keeping its last known state'));
    expect(warned).toHaveLength(1);
    expect(warned[0]).toContain('cluster=b');

    b.down = undefined;
    await vi.advanceTimersByTimeAsync(3000);
    expect(daemon.health().status).toBe(200);
    expect(lines.some((l) => l.includes('cluster readable again') && l.includes('cluster=b'))).toBe(true);
    await daemon.stop();
  });

  it('writes nothing for an output until every cluster it reads was read once', async () => {
    const a = new FakeSwarm();
    const b = new FakeSwarm();
    a.add(httpService('web', 8001));
    b.add(httpService('api', 8002));
    b.down = refused();
    const { daemon, applied, lines } = setup(
      { a, b },
      config({
        clusters: { a: {}, b: {} },
        outputs: [
          { ...haproxy, name: 'only-a', clusters: ['a'] },
          { ...haproxy, name: 'both', file: 'out/both.cfg', http: { address: '127.0.0.1', port: 8081 } },
        ],
      }),
    );
    daemon.start();
    await vi.advanceTimersByTimeAsync(500);
    expect(applied.map((o) => o.name)).toEqual(['only-a']);
    expect(lines.some((l) => l.includes('not writing output until its clusters have been read'))).toBe(true);
    b.down = undefined;
    await vi.advanceTimersByTimeAsync(6000);
    expect(applied.map((o) => o.name)).toEqual(['only-a', 'both']);
    expect(mapFile(applied[1])).toContain('api.test');
    await daemon.stop();
  });

  it('logs a bad label once, not on every re-list, and keeps serving the others', async () => {
    const swarm = new FakeSwarm();
    swarm.add(httpService('web', 8001));
    swarm.add(httpService('bad', 8002, { 'interlock.port': 'eighty' }));
    const { daemon, applied, lines } = setup(
      { local: swarm },
      config({ clusters: { local: {} }, outputs: [haproxy], watch: { reconcile: '1s' } }),
    );
    daemon.start();
    await vi.advanceTimersByTimeAsync(5000);
    const refusedLines = lines.filter((l) => l.includes('service refused') && l.includes('service=bad'));
    expect(refusedLines).toHaveLength(1);
    expect(mapFile(applied.at(-1))).toContain('web.test');
    expect(applied.at(-1)?.refused).toEqual(['local/bad']);
    swarm.add(httpService('bad', 8002));
    await vi.advanceTimersByTimeAsync(1200);
    expect(lines.some((l) => l.includes('diagnostic resolved') && l.includes('service=bad'))).toBe(true);
    expect(mapFile(applied.at(-1))).toContain('bad.test');
    await daemon.stop();
  });

  it('the log output prints each event and each change in hosts', async () => {
    const swarm = new FakeSwarm();
    swarm.add(httpService('web', 8001));
    const { daemon, lines } = setup(
      { local: swarm },
      config({ clusters: { local: {} }, outputs: [haproxy, { kind: 'log' }] }),
    );
    daemon.start();
    await vi.advanceTimersByTimeAsync(200);
    expect(lines.some((l) => / msg=routes output=log routes=1 backends=1 hosts=web.test$/.test(l))).toBe(true);
    swarm.remove('svc-web');
    swarm.add(httpService('shop', 8002));
    swarm.emit('service', 'remove', 'svc-web', { name: 'web' });
    // Each event re-reads its own service only (issue 12): the new service comes with its own event.
    swarm.emit('service', 'create', 'svc-shop', { name: 'shop' });
    await vi.advanceTimersByTimeAsync(200);
    expect(lines).toContainEqual(
      expect.stringMatching(/ msg=event cluster=local type=service action=remove name=web$/),
    );
    expect(lines).toContainEqual(
      expect.stringMatching(/ msg=change output=log routes=1 backends=1 added=shop.test removed=web.test$/),
    );
    await daemon.stop();
  });

  it('reloads its config: new waits, new outputs, new clusters', async () => {
    const a = new FakeSwarm();
    const b = new FakeSwarm();
    a.add(httpService('web', 8001));
    b.add(httpService('api', 8002));
    const { daemon, applied } = setup({ a, b }, config({ clusters: { a: {} }, outputs: [haproxy] }));
    daemon.start();
    await vi.advanceTimersByTimeAsync(200);
    expect(applied).toHaveLength(1);
    await daemon.reload({
      config: config({ clusters: { a: {}, b: {} }, outputs: [haproxy] }),
      configDir: '/cfg',
      templates: templateTexts(),
    });
    await vi.advanceTimersByTimeAsync(200);
    expect(applied).toHaveLength(2);
    expect(mapFile(applied[1])).toContain('api.test');
    expect(daemon.health().body.clusters.b?.state).toBe('connected');
    await daemon.stop();
  });

  it('stop() lets the apply in flight finish, then starts nothing new', async () => {
    const swarm = new FakeSwarm();
    swarm.add(httpService('web', 8001));
    const { daemon, applied, hold } = setup({ local: swarm }, config({ clusters: { local: {} }, outputs: [haproxy] }));
    const release = hold();
    daemon.start();
    await vi.advanceTimersByTimeAsync(200);
    expect(applied).toHaveLength(0); // apply waiting
    let stopped = false;
    const stopping = daemon.stop().then(() => {
      stopped = true;
    });
    await vi.advanceTimersByTimeAsync(50);
    expect(stopped).toBe(false);
    release();
    await stopping;
    expect(applied).toHaveLength(1);
    swarm.emit('service', 'update', 'svc-web', { name: 'web' });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(applied).toHaveLength(1);
  });
});
