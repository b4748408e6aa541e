/** The collector on a scripted StatsSource that serves bodies recorded from the engine. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type ContainerRef, StatsCollector, type StatsSource } from '../../src/stats/collect.ts';
import { createNamer } from '../../src/stats/names.ts';
import type { Point } from '../../src/stats/point.ts';
import { fixture } from '../helpers/exec.ts';

function body(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(fixture('stats', `${name}.json`), 'utf8')) as Record<string, unknown>;
}

const namer = createNamer({ prefix: 'interlock' });
const T0 = Date.parse('2026-11-23T19:47:15Z');

/** Containers and bodies per round, scripted by the test. */
class ScriptedSource implements StatsSource {
  containers: ContainerRef[] = [];
  bodies = new Map<string, unknown>();
  failing = new Set<string>();
  hanging = new Set<string>();
  delayMs = 0;
  inFlight = 0;
  maxInFlight = 0;
  calls: string[] = [];
  aborted: string[] = [];

  async listRunningContainers(): Promise<ContainerRef[]> {
    return this.containers;
  }

  async stats(id: string, signal?: AbortSignal): Promise<unknown> {
    this.calls.push(id);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.hanging.has(id)) {
        await new Promise<void>((resolve) => {
          signal?.addEventListener('abort', () => {
            this.aborted.push(id);
            resolve();
          });
        });
        throw new Error('aborted');
      }
      if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
      if (this.failing.has(id)) throw new Error(`(HTTP code 404) no such container - ${id}`);
      return this.bodies.get(id);
    } finally {
      this.inFlight--;
    }
  }
}

function byPath(points: readonly Point[]): Record<string, number> {
  return Object.fromEntries(points.map((p) => [p.path, p.value]));
}

const busy: ContainerRef = {
  id: 'c444d9db2096',
  name: 'web.1.qzqm7dye9rqfob8ywsicvdpqw',
  service: 'web',
  slot: 1,
  node: '5vlju9oxoopp8kisd34wa11ys',
  taskId: 'qzqm7dye9rqfob8ywsicvdpqw',
};
const hostNet: ContainerRef = {
  id: '375d66f63da0',
  name: 'web.2.abc',
  service: 'web',
  slot: 2,
  node: '5vlju9oxoopp8kisd34wa11ys',
  taskId: 'abc',
};

describe('StatsCollector', () => {
  it('two rounds: counters at once, CPU % and rates from the kept previous sample, service sums', async () => {
    const source = new ScriptedSource();
    source.containers = [busy, hostNet];
    source.bodies.set(busy.id, body('v1-busy-1')).set(hostNet.id, body('v1-host-network-1'));
    let now = T0;
    const collector = new StatsCollector(source, { cluster: 'prod', namer, now: () => now });

    const first = await collector.collect();
    expect(first).toMatchObject({ containers: 2, sampled: 2, failed: [], timestamp: Math.floor(T0 / 1000) });
    const f1 = byPath(first.points);
    expect(f1['interlock.prod.tasks.web.1.memory.used']).toBe(1093632);
    expect(f1['interlock.prod.tasks.web.1.cpu.percent']).toBeUndefined();
    expect(first.points.every((p) => p.timestamp === first.timestamp)).toBe(true);

    source.bodies.set(busy.id, body('v1-busy-2')).set(hostNet.id, body('v1-host-network-2'));
    now = T0 + 2_000;
    const second = await collector.collect();
    const f2 = byPath(second.points);
    expect(f2['interlock.prod.tasks.web.1.cpu.percent']).toBeCloseTo(100.4628, 3);
    expect(f2['interlock.prod.tasks.web.2.cpu.percent']).toBeCloseTo(0.1255, 3);
    expect(f2['interlock.prod.services.web.cpu.percent']).toBeCloseTo(100.4628 + 0.1255, 3);
    expect(f2['interlock.prod.services.web.cpu.percent_avg']).toBeCloseTo((100.4628 + 0.1255) / 2, 3);
    expect(f2['interlock.prod.services.web.memory.used']).toBe(1093632 + 2338816 - 237568);
    expect(f2['interlock.prod.services.web.tasks.sampled']).toBe(2);
    // Only the busy task has networks (the other is on host networking): the sum is over it alone.
    expect(f2['interlock.prod.services.web.net.rx_bytes']).toBe(876);
    expect(f2['interlock.prod.tasks.web.2.net.rx_bytes']).toBeUndefined();
    expect(second.points.every((p) => Number.isFinite(p.value))).toBe(true);
    // Tasks first (by slot), then services.
    const kinds = second.points.map((p) => p.path.split('.')[2]);
    expect(kinds.indexOf('services')).toBe(kinds.lastIndexOf('tasks') + 1);
  });

  it('a failing or unreadable container is counted and skipped; the others still report', async () => {
    const source = new ScriptedSource();
    source.containers = [busy, hostNet, { id: 'bad', name: 'junk' }];
    source.bodies.set(busy.id, body('v1-busy-1')).set('bad', 'not json');
    source.failing.add(hostNet.id);
    const collector = new StatsCollector(source, { cluster: 'prod', namer, now: () => T0 });
    const round = await collector.collect();
    expect(round.sampled).toBe(1);
    expect(round.failed).toEqual([
      { id: 'bad', name: 'junk', message: 'the engine returned no stats object' },
      { id: hostNet.id, name: hostNet.name, message: `(HTTP code 404) no such container - ${hostNet.id}` },
    ]);
    expect(byPath(round.points)['interlock.prod.services.web.tasks.sampled']).toBe(1);
  });

  it('a failed round keeps the previous sample, so the next round still has a rate', async () => {
    const source = new ScriptedSource();
    source.containers = [busy];
    source.bodies.set(busy.id, body('v1-busy-1'));
    let now = T0;
    const collector = new StatsCollector(source, { cluster: 'prod', namer, now: () => now });
    await collector.collect();
    source.failing.add(busy.id);
    now += 1_000;
    expect((await collector.collect()).failed).toHaveLength(1);
    source.failing.clear();
    source.bodies.set(busy.id, body('v1-busy-2'));
    now += 1_000;
    const round = await collector.collect();
    expect(byPath(round.points)['interlock.prod.tasks.web.1.cpu.percent']).toBeCloseTo(100.4628, 3);
  });

  it('containers that are gone are forgotten', async () => {
    const source = new ScriptedSource();
    source.containers = [busy, hostNet];
    source.bodies.set(busy.id, body('v1-busy-1')).set(hostNet.id, body('v1-host-network-1'));
    const collector = new StatsCollector(source, { cluster: 'prod', namer, now: () => T0 });
    await collector.collect();
    expect(collector.tracked).toBe(2);
    source.containers = [hostNet];
    await collector.collect();
    expect(collector.tracked).toBe(1);
    // Back with the same id (e.g. `docker restart`): treated as new, no rate from a stale sample.
    source.containers = [busy, hostNet];
    source.bodies.set(busy.id, body('v1-busy-2'));
    const round = await collector.collect();
    expect(byPath(round.points)['interlock.prod.tasks.web.1.cpu.percent']).toBeUndefined();
  });

  it('at most `concurrency` stats calls run at once, and they do run concurrently', async () => {
    const source = new ScriptedSource();
    for (let i = 0; i < 25; i++) {
      const id = `c${i}`;
      source.containers.push({ id, name: `svc.${i + 1}.t${i}`, service: 'svc', slot: i + 1, taskId: `t${i}` });
      source.bodies.set(id, body('v2-web-1'));
    }
    source.delayMs = 40;
    const collector = new StatsCollector(source, { cluster: 'c', namer, concurrency: 10 });
    const started = Date.now();
    const round = await collector.collect();
    const elapsed = Date.now() - started;
    expect(source.maxInFlight).toBe(10);
    expect(round.sampled).toBe(25);
    // Three waves of 40 ms, not 25 in a row (1 s).
    expect(elapsed).toBeLessThan(500);
    // Slots sort as numbers: 2 before 10.
    const slots = [...new Set(round.points.filter((p) => p.path.includes('.tasks.')).map((p) => p.path.split('.')[4]))];
    expect(slots.slice(0, 11)).toEqual(['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11']);
  });

  it('a call that hangs times out, is aborted, and is counted as failed', async () => {
    const source = new ScriptedSource();
    source.containers = [busy, hostNet];
    source.bodies.set(busy.id, body('v1-busy-1'));
    source.hanging.add(hostNet.id);
    const collector = new StatsCollector(source, { cluster: 'prod', namer, timeoutMs: 50 });
    const round = await collector.collect();
    expect(round.sampled).toBe(1);
    expect(round.failed).toEqual([{ id: hostNet.id, name: hostNet.name, message: 'no stats within 50 ms' }]);
    expect(source.aborted).toEqual([hostNet.id]);
  });

  it('global tasks are named by node; standalone containers are services without a task level', async () => {
    const source = new ScriptedSource();
    source.containers = [
      { id: 'g1', name: 'agent.n1.t1', service: 'agent', node: 'n1', taskId: 't1' },
      { id: 's1', name: 'my.db', service: undefined },
    ];
    source.bodies.set('g1', body('v2-web-1')).set('s1', body('v2-web-1'));
    const round = await new StatsCollector(source, { cluster: 'c', namer, now: () => T0 }).collect();
    const paths = round.points.map((p) => p.path);
    expect(paths).toContain('interlock.c.tasks.agent.n1.pids');
    expect(paths).toContain('interlock.c.services.my_db.pids');
    expect(paths.filter((p) => p.startsWith('interlock.c.tasks.my_db'))).toEqual([]);
  });

  it('a collector covering one node writes its service sums under that node', async () => {
    const source = new ScriptedSource();
    source.containers = [busy];
    source.bodies.set(busy.id, body('v1-busy-1'));
    const round = await new StatsCollector(source, { cluster: 'prod', namer, node: 'node-a', now: () => T0 }).collect();
    const paths = round.points.map((p) => p.path);
    expect(paths).toContain('interlock.prod.services.web.node-a.memory.used');
    expect(paths).toContain('interlock.prod.tasks.web.1.memory.used');
  });

  it('a collect() while a round runs joins it instead of racing on the kept samples', async () => {
    const source = new ScriptedSource();
    source.containers = [busy];
    source.bodies.set(busy.id, body('v1-busy-1'));
    source.delayMs = 30;
    const collector = new StatsCollector(source, { cluster: 'prod', namer, now: () => T0 });
    const [a, b] = await Promise.all([collector.collect(), collector.collect()]);
    expect(a).toBe(b);
    expect(source.calls).toEqual([busy.id]);
    await collector.collect();
    expect(source.calls).toEqual([busy.id, busy.id]);
  });

  it('listing the containers failing fails the round (the caller logs and retries next interval)', async () => {
    const source = new ScriptedSource();
    source.listRunningContainers = () => Promise.reject(new Error('connect ENOENT /var/run/docker.sock'));
    await expect(new StatsCollector(source, { cluster: 'c', namer }).collect()).rejects.toThrow(/ENOENT/);
  });
});
