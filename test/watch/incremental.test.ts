/**
 * Issue 12: the watch daemon reads one service again after an event about it, keeps routes per
 * service, and its reconcile finds changed services from hashed list entries. Whatever the
 * sequence of changes and events (missed ones included), the files it ends up with must be
 * exactly what a full render of the engine's lists gives. Random sequences, seeded (the seed is
 * in the test name, so a failure can be replayed).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ApplyResult } from '../../src/apply/apply.ts';
import { mapSnapshots } from '../../src/cluster/sources.ts';
import { type Config, configSchema } from '../../src/config/schema.ts';
import { type PlannedOutput, planRender } from '../../src/pipeline.ts';
import { createLogger } from '../../src/runtime/log.ts';
import { createMetrics } from '../../src/runtime/metrics.ts';
import { WatchDaemon } from '../../src/watch/daemon.ts';
import { prng } from '../helpers/prng.ts';
import { templateTexts } from '../helpers/render.ts';
import { type FakeService, FakeSwarm } from './fake-swarm.ts';

const config: Config = configSchema.parse({
  clusters: { local: {} },
  outputs: [
    { kind: 'haproxy', file: 'out/haproxy.cfg', http: { address: '127.0.0.1', port: 8080 } },
    { kind: 'nginx', file: 'out/nginx.conf', http: { address: '127.0.0.1', port: 8081 } },
  ],
  watch: { reconcile: '2s' },
});

/** Few hosts for many services: conflicts (two services claiming one host) happen often. */
const HOSTS = ['a', 'b', 'c', 'd', 'e', 'f'];

function randomService(rnd: () => number, n: number): FakeService {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)] as T;
  const labels: Record<string, string> = {
    'interlock.hostname': pick(HOSTS),
    'interlock.domain': 'test',
    'interlock.port': '80',
  };
  if (rnd() < 0.2) labels['interlock.alias_domain'] = `${pick(HOSTS)}.alias.test`;
  if (rnd() < 0.1) labels['interlock.port'] = 'not-a-port';
  const replicas = Math.floor(rnd() * 4);
  return {
    id: `svc${String(n).padStart(4, '0')}`,
    name: `s${n}`,
    labels,
    ports: Array.from({ length: replicas }, (_, i) => 20_000 + n * 10 + i),
    createdAt: `2026-01-0${1 + Math.floor(rnd() * 9)}T00:00:00Z`,
  };
}

function fullRender(swarm: FakeSwarm): Map<string, string> {
  const states = mapSnapshots([{ cluster: 'local', doc: swarm.lists() }], config).states;
  const plan = planRender(config, states, { configDir: '/cfg', templates: templateTexts() });
  return new Map(plan.outputs.map((o) => [o.name, o.files.map((f) => `${f.path}\n${f.content}`).join('\n---\n')]));
}

function setup(swarm: FakeSwarm, rnd: () => number) {
  const onDisk = new Map<string, string>();
  const apply = async (o: PlannedOutput): Promise<ApplyResult> => {
    const text = o.files.map((f) => `${f.path}\n${f.content}`).join('\n---\n');
    if (onDisk.get(o.name) === text) return { kind: 'unchanged' };
    onDisk.set(o.name, text);
    return { kind: 'applied', files: o.files.map((f) => ({ path: f.path, result: 'replaced' })), reload: undefined };
  };
  const metrics = createMetrics();
  const daemon = new WatchDaemon({
    config,
    configDir: '/cfg',
    templates: templateTexts(),
    env: {},
    log: createLogger({ format: 'logfmt', level: 'error', write: () => {} }),
    metrics,
    apply,
    connect: async () => ({
      api: swarm.api({ raw: true, chunkBytes: () => 1 + Math.floor(rnd() * 300) }),
      display: 'fake://local',
      timeoutMs: 1000,
    }),
    watcher: { backoff: { jitter: 0 } },
  });
  return { daemon, onDisk, metrics };
}

describe('watch: one-service reads and per-service routes give what a full render gives', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  for (const seed of [1, 2, 3, 4, 5, 6]) {
    it(`random changes and events, seed ${seed}`, async () => {
      const rnd = prng(seed);
      const swarm = new FakeSwarm();
      let next = 0;
      for (; next < 12; next++) swarm.add(randomService(rnd, next));
      const { daemon, onDisk, metrics } = setup(swarm, rnd);
      daemon.start();
      await vi.advanceTimersByTimeAsync(1500);
      expect(onDisk).toEqual(fullRender(swarm));

      let missed = 0;
      for (let step = 0; step < 30; step++) {
        const ids = [...swarm.services.keys()];
        const id = ids[Math.floor(rnd() * ids.length)];
        const action = rnd();
        let event: [string, string, string] | undefined;
        if (action < 0.35 && id) {
          // Relabel (a new host, often one another service holds).
          const s = swarm.services.get(id) as FakeService;
          const fresh = randomService(rnd, Number(id.slice(3)));
          s.labels = fresh.labels;
          event = ['service', 'update', id];
        } else if (action < 0.55 && id) {
          // Scale or a rolling update: other tasks.
          const s = swarm.services.get(id) as FakeService;
          s.ports = Array.from({ length: Math.floor(rnd() * 4) }, (_, i) => 30_000 + step * 10 + i);
          s.generation = (s.generation ?? 0) + 1;
          event = rnd() < 0.5 ? ['service', 'update', id] : ['container', 'start', id];
        } else if (action < 0.7 && id) {
          swarm.remove(id);
          event = ['service', 'remove', id];
        } else if (action < 0.85) {
          const s = randomService(rnd, next++);
          swarm.add(s);
          event = ['service', 'create', s.id];
        } else if (id) {
          // A rename: the name is part of backend names and of who keeps a host on a tie.
          const s = swarm.services.get(id) as FakeService;
          s.name = `r${step}x${s.name}`;
          event = ['service', 'update', id];
        }
        // Some events are missed: the reconcile must find the change itself.
        const miss = rnd() < 0.25;
        if (event && !miss) {
          const [type, act, sid] = event;
          const attrs: Record<string, string> =
            type === 'container' ? { 'com.docker.swarm.service.id': sid } : { name: sid };
          swarm.emit(type, act, type === 'container' ? `c-${sid}` : sid, attrs);
          await vi.advanceTimersByTimeAsync(1200);
        } else {
          missed++;
          // Past a reconcile (2 s; more when the last look was costly).
          await vi.advanceTimersByTimeAsync(6000);
        }
        expect(onDisk, `step ${step}`).toEqual(fullRender(swarm));
      }
      const text = await metrics.registry.metrics();
      // The incremental path was taken (service reads), not only full re-lists.
      expect(text).toMatch(/interlock_service_reads_total\{cluster="local"\} [1-9]/);
      expect(missed).toBeGreaterThan(0);
      await daemon.stop();
    });
  }

  it('a newer service cannot take a host from an older one; it gets it when the older lets go', async () => {
    const rnd = prng(99);
    const swarm = new FakeSwarm();
    const svc = (id: string, host: string, createdAt: string, port: number): FakeService => ({
      id,
      name: id,
      labels: { 'interlock.hostname': host, 'interlock.domain': 'test', 'interlock.port': '80' },
      ports: [port],
      createdAt,
    });
    swarm.add(svc('old', 'a', '2026-01-01T00:00:00Z', 20001));
    swarm.add(svc('new', 'b', '2026-01-05T00:00:00Z', 20002));
    const { daemon, onDisk } = setup(swarm, rnd);
    const hostsMap = () => onDisk.get('haproxy')?.split('\n---\n')[0] ?? '';
    daemon.start();
    await vi.advanceTimersByTimeAsync(1500);
    expect(hostsMap()).toMatch(/^a\.test\/ old__/m);

    // The newer service claims a.test: it does not get it (the older one keeps it).
    (swarm.services.get('new') as FakeService).labels['interlock.hostname'] = 'a';
    swarm.emit('service', 'update', 'new', { name: 'new' });
    await vi.advanceTimersByTimeAsync(1200);
    expect(onDisk).toEqual(fullRender(swarm));
    expect(hostsMap()).toMatch(/^a\.test\/ old__/m);
    expect(hostsMap()).not.toMatch(/new__/);

    // The older one moves to c.test: only its own event comes, and the newer one gets a.test.
    (swarm.services.get('old') as FakeService).labels['interlock.hostname'] = 'c';
    swarm.emit('service', 'update', 'old', { name: 'old' });
    await vi.advanceTimersByTimeAsync(1200);
    expect(onDisk).toEqual(fullRender(swarm));
    expect(hostsMap()).toMatch(/^a\.test\/ new__/m);
    expect(hostsMap()).toMatch(/^c\.test\/ old__/m);
    await daemon.stop();
  });

  it('an event storm about many services reads again only those a reconcile look finds changed', async () => {
    const rnd = prng(7);
    const swarm = new FakeSwarm();
    for (let n = 0; n < 300; n++) swarm.add(randomService(rnd, n));
    const { daemon, onDisk, metrics } = setup(swarm, rnd);
    daemon.start();
    await vi.advanceTimersByTimeAsync(1500);
    const reads = async () =>
      Number(/interlock_service_reads_total\{cluster="local"\} (\d+)/.exec(await metrics.registry.metrics())?.[1] ?? 0);
    const before = await reads();
    const ids = [...swarm.services.keys()];
    // Three services change; update events come for 100 of them (most change nothing).
    for (const id of ids.slice(0, 3))
      (swarm.services.get(id) as FakeService).labels['interlock.hostname'] = `storm-${id}`;
    for (const id of ids.slice(0, 100)) swarm.emit('service', 'update', id, { name: id });
    await vi.advanceTimersByTimeAsync(1500);
    expect(onDisk).toEqual(fullRender(swarm));
    expect(onDisk.get('haproxy')).toContain(`storm-${ids[0]}.test`);
    // The three changed ones (and services the task follower saw move), not 100.
    expect((await reads()) - before).toBeLessThan(20);
    await daemon.stop();
  });
});
