/**
 * Figures from Docker stats bodies: v1 bodies recorded from the test Swarm, v2 bodies constructed
 * after the Engine API reference (see test/fixtures/stats/README.md).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { ClusterState } from '../../src/cluster/model.ts';
import {
  clusterStatePoints,
  containerFigures,
  daemonPoints,
  type Figures,
  parseStatsBody,
  serviceFigures,
  taskPoints,
} from '../../src/stats/compute.ts';
import { createNamer } from '../../src/stats/names.ts';
import { fixture } from '../helpers/exec.ts';

// biome-ignore lint/suspicious/noExplicitAny: tests edit fields deep inside raw API bodies
type Body = Record<string, any>;

function body(name: string): Body {
  return JSON.parse(readFileSync(fixture('stats', `${name}.json`), 'utf8')) as Body;
}

const NOW = Date.parse('2030-01-01T00:00:00Z');

function figures(current: Body, previous?: Body): Figures {
  const cur = parseStatsBody(current, NOW);
  if (!cur) throw new Error('not a stats body');
  const prev = previous === undefined ? undefined : parseStatsBody(previous, NOW);
  return containerFigures(cur, prev);
}

function allFinite(f: Figures): boolean {
  return Object.values(f).every((v) => Number.isFinite(v));
}

describe('cgroup v1 bodies recorded from the engine', () => {
  it('CPU % of a busy-loop task is about one CPU (100), from our own previous one-shot sample', () => {
    const f = figures(body('v1-busy-2'), body('v1-busy-1'));
    // (13541636004 - 11527356698) / (2930840000000 - 2926830000000) * 2 CPUs * 100
    expect(f['cpu.percent']).toBeCloseTo(100.4628, 3);
  });

  it('the first one-shot sample has counters but no CPU % and no rates (precpu is empty)', () => {
    const f = figures(body('v1-busy-1'));
    expect(f['cpu.percent']).toBeUndefined();
    expect(f['net.rx_bytes']).toBe(806);
    expect(f['net.rx_bytes_per_s']).toBeUndefined();
    expect(f['memory.used']).toBe(22065152 - 20971520);
  });

  it('a two-sample body (stream=false without one-shot) gives CPU % from its own precpu', () => {
    const f = figures(body('v1-busy-twosample'));
    // (18561708859 - 17558919454) / (2940860000000 - 2938850000000) * 2 * 100
    expect(f['cpu.percent']).toBeCloseTo(99.78, 3);
  });

  it('memory used leaves out total_inactive_file (the 20 MiB of page cache), against the 64 MiB limit', () => {
    const f = figures(body('v1-busy-2'), body('v1-busy-1'));
    expect(f['memory.used']).toBe(1093632);
    expect(f['memory.limit']).toBe(67108864);
    expect(f['memory.percent']).toBeCloseTo((1093632 / 67108864) * 100, 9);
  });

  it('cgroup v1: the hierarchical total_inactive_file wins over inactive_file, as in the docker CLI', () => {
    const cur = body('v1-busy-2');
    cur.memory_stats.stats.inactive_file = 0;
    expect(figures(cur)['memory.used']).toBe(1093632);
    // When the cache exceeds usage, usage itself is reported (never a negative or zero "used").
    cur.memory_stats.stats.total_inactive_file = cur.memory_stats.usage + 1;
    expect(figures(cur)['memory.used']).toBe(22065152);
  });

  it('network counters are summed and rates come from the previous sample and the engine read times', () => {
    const f = figures(body('v1-busy-2'), body('v1-busy-1'));
    expect(f['net.rx_bytes']).toBe(876);
    expect(f['net.rx_packets']).toBe(10);
    expect(f['net.tx_bytes']).toBe(0);
    // 70 bytes between reads at 19:47:15.872 and 19:47:17.890
    expect(f['net.rx_bytes_per_s']).toBeCloseTo(70 / 2.018, 6);
    expect(f['net.rx_packets_per_s']).toBeCloseTo(1 / 2.018, 6);
    expect(f['net.tx_bytes_per_s']).toBe(0);
    expect(f.pids).toBe(1);
  });

  it('block I/O reported as an empty list (this kernel accounts none) is zero, not missing', () => {
    const f = figures(body('v1-busy-2'), body('v1-busy-1'));
    expect(f['blkio.read_bytes']).toBe(0);
    expect(f['blkio.write_bytes']).toBe(0);
    expect(f['blkio.read_bytes_per_s']).toBe(0);
  });

  it('host networking: no networks key, so no net.* figures at all; no limit means the host memory', () => {
    const f = figures(body('v1-host-network-2'), body('v1-host-network-1'));
    expect(Object.keys(f).filter((k) => k.startsWith('net.'))).toEqual([]);
    expect(f['memory.limit']).toBe(25276502016);
    expect(f['memory.used']).toBe(2338816 - 237568);
    expect(f['cpu.percent']).toBeCloseTo((2516208 / 4010000000) * 200, 9);
  });

  it('online_cpus missing: falls back to the length of percpu_usage, as the docker CLI does', () => {
    const cur = body('v1-busy-2');
    const prev = body('v1-busy-1');
    delete cur.cpu_stats.online_cpus;
    expect(cur.cpu_stats.cpu_usage.percpu_usage).toHaveLength(2);
    expect(figures(cur, prev)['cpu.percent']).toBeCloseTo(100.4628, 3);
  });

  it('cgroup v1 block I/O: Read/Write summed over devices, Sync/Async/Total ignored', () => {
    const cur = body('v1-busy-2');
    const prev = body('v1-busy-1');
    const entries = (read: number, write: number) =>
      [
        ['Read', read],
        ['Write', write],
        ['Sync', read + write],
        ['Async', 0],
        ['Total', read + write],
      ].flatMap(([op, value]) => [
        { major: 8, minor: 0, op, value },
        { major: 8, minor: 16, op, value },
      ]);
    prev.blkio_stats.io_service_bytes_recursive = entries(1000, 2000);
    cur.blkio_stats.io_service_bytes_recursive = entries(3000, 2000);
    const f = figures(cur, prev);
    expect(f['blkio.read_bytes']).toBe(6000);
    expect(f['blkio.write_bytes']).toBe(4000);
    expect(f['blkio.read_bytes_per_s']).toBeCloseTo(4000 / 2.018, 6);
    expect(f['blkio.write_bytes_per_s']).toBe(0);
  });
});

describe('cgroup v2 bodies (constructed after the API reference)', () => {
  const f = figures(body('v2-web-2'), body('v2-web-1'));

  it('CPU %: 2 s of CPU over 10 s on 4 CPUs is 20', () => {
    expect(f['cpu.percent']).toBeCloseTo(20, 9);
  });

  it('memory used = usage - inactive_file (v2 has no total_inactive_file)', () => {
    expect(f['memory.used']).toBe(52428800 - 10485760);
    expect(f['memory.percent']).toBeCloseTo((41943040 / 268435456) * 100, 9);
  });

  it('lower-case read/write block I/O ops are counted', () => {
    expect(f['blkio.read_bytes']).toBe(2097152 + 512);
    expect(f['blkio.write_bytes']).toBe(413696 + 8192);
    expect(f['blkio.read_bytes_per_s']).toBeCloseTo((2097664 - 1048576) / 10, 9);
    expect(f['blkio.write_bytes_per_s']).toBeCloseTo((421888 - 4096) / 10, 9);
  });

  it('two interfaces are summed, errors and drops included', () => {
    expect(f['net.rx_bytes']).toBe(24000);
    expect(f['net.rx_bytes_per_s']).toBeCloseTo(1200, 9);
    expect(f['net.tx_bytes_per_s']).toBeCloseTo(1100, 9);
    expect(f['net.rx_errors']).toBe(3);
    expect(f['net.rx_errors_per_s']).toBeCloseTo(0.2, 9);
    expect(f['net.rx_dropped']).toBe(3);
    expect(f['net.rx_dropped_per_s']).toBeCloseTo(0.1, 9);
  });

  it('a counter that went backwards (reset) gives no rate, never a negative one', () => {
    const cur = body('v2-web-2');
    cur.networks.eth0.tx_bytes = 10;
    cur.networks.eth1.tx_bytes = 10;
    const g = figures(cur, body('v2-web-1'));
    expect(g['net.tx_bytes']).toBe(20);
    expect(g['net.tx_bytes_per_s']).toBeUndefined();
    expect(g['net.rx_bytes_per_s']).toBeCloseTo(1200, 9);
  });

  it('a CPU counter reset gives no CPU %', () => {
    const cur = body('v2-web-2');
    cur.cpu_stats.cpu_usage.total_usage = 1000;
    expect(figures(cur, body('v2-web-1'))['cpu.percent']).toBeUndefined();
  });
});

describe('never NaN or Infinity', () => {
  it('no time passed, no system delta, zero limit: those figures are left out', () => {
    const same = body('v2-web-2');
    const f = figures(same, body('v2-web-2'));
    expect(f['cpu.percent']).toBeUndefined();
    expect(f['net.rx_bytes_per_s']).toBeUndefined();
    const noLimit = body('v2-web-2');
    noLimit.memory_stats.limit = 0;
    const g = figures(noLimit, body('v2-web-1'));
    expect(g['memory.percent']).toBeUndefined();
    expect(g['memory.limit']).toBeUndefined();
    expect(g['memory.used']).toBe(41943040);
    expect(allFinite(f) && allFinite(g)).toBe(true);
  });

  it('strings, nulls and missing sections are skipped, not coerced', () => {
    const f = figures({
      read: 'garbage',
      cpu_stats: { cpu_usage: { total_usage: '5' }, system_cpu_usage: null },
      memory_stats: { usage: Number.NaN },
      networks: { eth0: { rx_bytes: 'x', tx_bytes: 5 } },
      blkio_stats: { io_service_bytes_recursive: null },
    });
    expect(f).toEqual({
      'net.rx_bytes': 0,
      'net.rx_dropped': 0,
      'net.rx_errors': 0,
      'net.rx_packets': 0,
      'net.tx_bytes': 5,
      'net.tx_dropped': 0,
      'net.tx_errors': 0,
      'net.tx_packets': 0,
    });
    expect(parseStatsBody(null, NOW)).toBeUndefined();
    expect(parseStatsBody('{"read":1}', NOW)).toBeUndefined();
  });

  it('a body without a read time uses the time passed in', () => {
    const s = parseStatsBody({}, NOW);
    expect(s?.time).toBe(NOW);
    expect(parseStatsBody({ read: '0001-01-01T00:00:00Z' }, NOW)?.time).toBe(NOW);
  });
});

describe('service figures', () => {
  const a: Figures = { 'cpu.percent': 90, 'memory.used': 100, 'memory.limit': 1000, 'memory.percent': 10, pids: 2 };
  const b: Figures = {
    'cpu.percent': 30,
    'memory.used': 300,
    'memory.limit': 1000,
    'memory.percent': 30,
    'net.rx_bytes_per_s': 5,
    pids: 1,
  };

  it('sums CPU % (total CPU of the service) and also averages it; memory % is averaged and maxed', () => {
    expect(serviceFigures([a, b])).toEqual({
      'cpu.percent': 120,
      'cpu.percent_avg': 60,
      'memory.used': 400,
      'memory.percent_avg': 20,
      'memory.percent_max': 30,
      'net.rx_bytes_per_s': 5,
      pids: 3,
      'tasks.sampled': 2,
    });
  });

  it('no task: only the count', () => {
    expect(serviceFigures([])).toEqual({ 'tasks.sampled': 0 });
  });
});

describe('points', () => {
  const namer = createNamer({ prefix: 'interlock' });

  it('task points are sorted by metric and carry the round timestamp', () => {
    const points = taskPoints({ cluster: 'prod', service: 'web', task: '2' }, { pids: 1, 'cpu.percent': 5 }, namer, 42);
    expect(points).toEqual([
      { path: 'interlock.prod.tasks.web.2.cpu.percent', value: 5, timestamp: 42 },
      { path: 'interlock.prod.tasks.web.2.pids', value: 1, timestamp: 42 },
    ]);
  });

  it('cluster state gives the running and desired task counts per service', () => {
    const task = { nodeId: 'n1', nodeAddress: '127.0.0.1', addresses: [], hostPorts: [] };
    const state: ClusterState = {
      cluster: 'prod',
      swarm: true,
      nodes: [],
      networks: [],
      services: [
        {
          id: 's1',
          name: 'web',
          mode: 'replicated',
          replicas: 3,
          labels: {},
          networks: [],
          vips: [],
          ingressPorts: [],
          tasks: [
            { ...task, id: 't1', slot: 1 },
            { ...task, id: 't2', slot: 2 },
          ],
        },
        {
          id: 's2',
          name: 'agent',
          mode: 'global',
          labels: {},
          networks: [],
          vips: [],
          ingressPorts: [],
          tasks: [{ ...task, id: 't3' }],
        },
      ],
    };
    expect(clusterStatePoints(state, namer, 7)).toEqual([
      { path: 'interlock.prod.services.web.tasks.desired', value: 3, timestamp: 7 },
      { path: 'interlock.prod.services.web.tasks.running', value: 2, timestamp: 7 },
      { path: 'interlock.prod.services.agent.tasks.running', value: 1, timestamp: 7 },
    ]);
  });

  it("interlock's own figures, with event types as one level each", () => {
    const points = daemonPoints(
      {
        renders: 4,
        applies: 3,
        reloads: 2,
        failures: 1,
        applyLatencyMs: 120.5,
        metricsSent: 1000,
        metricsDropped: 7,
        events: { prod: { 'service.update': 5, 'container.die': 1 } },
      },
      namer,
      'node-1.example.com',
      9,
    );
    expect(points.map((p) => `${p.path} ${p.value}`)).toEqual([
      'interlock.interlock.node-1_example_com.applies 3',
      'interlock.interlock.node-1_example_com.apply.latency_ms 120.5',
      'interlock.interlock.node-1_example_com.events.prod.container_die 1',
      'interlock.interlock.node-1_example_com.events.prod.service_update 5',
      'interlock.interlock.node-1_example_com.failures 1',
      'interlock.interlock.node-1_example_com.metrics.dropped 7',
      'interlock.interlock.node-1_example_com.metrics.sent 1000',
      'interlock.interlock.node-1_example_com.reloads 2',
      'interlock.interlock.node-1_example_com.renders 4',
    ]);
    expect(points.every((p) => p.timestamp === 9)).toBe(true);
  });

  it('a NaN in the daemon record is left out', () => {
    const points = daemonPoints(
      { renders: Number.NaN, applies: 0, reloads: 0, failures: 0, metricsSent: Infinity, metricsDropped: 0 },
      namer,
      'a',
      1,
    );
    expect(points.map((p) => p.path)).toEqual([
      'interlock.interlock.a.applies',
      'interlock.interlock.a.failures',
      'interlock.interlock.a.metrics.dropped',
      'interlock.interlock.a.reloads',
    ]);
  });
});
