/**
 * The dockerode side: mapping of GET /containers/json entries (recorded), the one-shot decision,
 * and, in the integration tier, a real collection from busy-loop tasks on the test Swarm.
 */
import { readFileSync } from 'node:fs';
import Docker from 'dockerode';
import { describe, expect, it } from 'vitest';
import { StatsCollector } from '../../src/stats/collect.ts';
import {
  apiAtLeast,
  containerRef,
  createDockerStatsSource,
  type DockerStatsApi,
} from '../../src/stats/docker-source.ts';
import { createNamer } from '../../src/stats/names.ts';
import { fixture } from '../helpers/exec.ts';
import { createService, describeIntegration, removeService, uniqueServiceName } from '../helpers/infra.ts';
import { acquireBusyLoopLock, cpuCounters, expectBusyCpu, referencePercent } from './busy-loop.ts';

// A real dockerode client must satisfy the interface the source asks for.
const _typeCheck: (docker: Docker) => DockerStatsApi = (docker) => docker;

describe('containerRef', () => {
  const list = JSON.parse(readFileSync(fixture('stats', 'containers-json.json'), 'utf8')) as unknown[];

  it('maps a replicated task, a global task and a standalone container from a recorded list', () => {
    expect(list.map(containerRef)).toEqual([
      {
        id: '19a73380843de611bcb694efad702e569093b5050a4bc2dc825e264f258c5334',
        name: 'interlock-stats-fixture-global.5vlju9oxoopp8kisd34wa11ys.x87m6fdgxpaubrlra8r15sprr',
        service: 'interlock-stats-fixture-global',
        taskId: 'x87m6fdgxpaubrlra8r15sprr',
        node: '5vlju9oxoopp8kisd34wa11ys',
      },
      {
        id: 'c444d9db20968370ddff736a1a3295fc3642820c294455c014307ac1b1e0db53',
        name: 'interlock-stats-fixture-busy.1.qzqm7dye9rqfob8ywsicvdpqw',
        service: 'interlock-stats-fixture-busy',
        taskId: 'qzqm7dye9rqfob8ywsicvdpqw',
        node: '5vlju9oxoopp8kisd34wa11ys',
        slot: 1,
      },
      {
        id: '375d66f63da08d29f7a99ae40db35b6a47a5997b741459a97719b4824fb96add',
        name: 'interlock-stats-fixture-host',
      },
    ]);
  });

  it('a service name with dots still yields the slot', () => {
    const ref = containerRef({
      Id: 'abc',
      Names: ['/a.b.12.t1'],
      Labels: {
        'com.docker.swarm.service.name': 'a.b',
        'com.docker.swarm.task.id': 't1',
        'com.docker.swarm.task.name': 'a.b.12.t1',
      },
    });
    expect(ref).toMatchObject({ service: 'a.b', slot: 12, taskId: 't1' });
  });

  it('junk entries are skipped', () => {
    expect(containerRef(null)).toBeUndefined();
    expect(containerRef({ Names: ['/x'] })).toBeUndefined();
  });
});

describe('one-shot where the API allows it', () => {
  function fakeApi(apiVersion: string) {
    const calls: { version: number; stats: Record<string, unknown>[] } = { version: 0, stats: [] };
    const api: DockerStatsApi = {
      version: async () => {
        calls.version++;
        return { ApiVersion: apiVersion };
      },
      listContainers: async () => [],
      getContainer: () => ({
        stats: async (options) => {
          calls.stats.push({ ...options });
          return {};
        },
      }),
    };
    return { api, calls };
  }

  it('API 1.41: one-shot=true, the version asked once', async () => {
    const { api, calls } = fakeApi('1.41');
    const source = createDockerStatsSource(api);
    await source.stats('a');
    await source.stats('b');
    expect(calls.version).toBe(1);
    expect(calls.stats).toEqual([
      { stream: false, 'one-shot': true },
      { stream: false, 'one-shot': true },
    ]);
  });

  it('API 1.40: no one-shot (the engine takes two samples)', async () => {
    const { api, calls } = fakeApi('1.40');
    await createDockerStatsSource(api).stats('a');
    expect(calls.stats).toEqual([{ stream: false }]);
  });

  it('versions compare as numbers', () => {
    expect(apiAtLeast('1.41', '1.41')).toBe(true);
    expect(apiAtLeast('1.100', '1.41')).toBe(true);
    expect(apiAtLeast('1.9', '1.41')).toBe(false);
    expect(apiAtLeast('2.0', '1.41')).toBe(true);
    expect(apiAtLeast(undefined, '1.41')).toBe(false);
  });
});

describeIntegration('collecting from the test Swarm', ['docker'], () => {
  it('a busy-loop task shows the CPU it got (above 50 % on a machine that leaves it that), memory above zero, and every replica is sampled', async () => {
    // One busy loop at a time (see busy-loop.ts): on a two-core machine two would compete.
    const release = await acquireBusyLoopLock();
    const busy = uniqueServiceName('it-stats-busy');
    const idle = uniqueServiceName('it-stats-idle');
    try {
      await Promise.all([
        createService({ name: busy, replicas: 1, args: ['/bin/sh', '-c', 'while :; do :; done'] }),
        createService({ name: idle, replicas: 3, args: ['/bin/sleep', '3600'] }),
      ]);
      const source = createDockerStatsSource(new Docker({ socketPath: '/var/run/docker.sock' }));
      const collector = new StatsCollector(source, { cluster: 'it', namer: createNamer({ prefix: 'interlock' }) });

      const before = await cpuCounters(busy);
      const first = await collector.collect();
      expect(first.failed).toEqual([]);
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      const second = await collector.collect();
      const reference = referencePercent(before, await cpuCounters(busy));
      expect(second.failed).toEqual([]);
      // One-shot calls answer at the engine's next 1 s tick; without one-shot each takes two ticks (~2 s).
      expect(second.durationMs).toBeLessThan(1_800);

      const values = Object.fromEntries(second.points.map((p) => [p.path, p.value]));
      const seg = (name: string) => name.replace(/[^A-Za-z0-9_-]/g, '_');
      expectBusyCpu([values[`interlock.it.tasks.${seg(busy)}.1.cpu.percent`] as number], reference, 35);
      expect(values[`interlock.it.tasks.${seg(busy)}.1.memory.used`]).toBeGreaterThan(0);
      for (let slot = 1; slot <= 3; slot++) {
        expect(values[`interlock.it.tasks.${seg(idle)}.${slot}.memory.used`]).toBeGreaterThan(0);
        expect(values[`interlock.it.tasks.${seg(idle)}.${slot}.cpu.percent`]).toBeLessThan(5);
      }
      expect(values[`interlock.it.services.${seg(idle)}.tasks.sampled`]).toBe(3);
      expect(values[`interlock.it.services.${seg(busy)}.tasks.sampled`]).toBe(1);
      expect(second.points.every((p) => Number.isFinite(p.value) && p.timestamp === second.timestamp)).toBe(true);
    } finally {
      await removeService(busy);
      await release();
    }
  }, 210_000);
});
