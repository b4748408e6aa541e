/**
 * The carbon runner on a scripted engine (stats bodies recorded from the test Swarm), an
 * in-process TCP receiver standing in for carbon-cache, and timers the test fires by hand.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import type Docker from 'dockerode';
import { afterEach, describe, expect, it } from 'vitest';
import type { ClusterState, ServiceState } from '../../src/cluster/model.ts';
import { type ConfigInput, configSchema } from '../../src/config/schema.ts';
import type { Timers } from '../../src/runtime/debounce.ts';
import { createLogger } from '../../src/runtime/log.ts';
import { createMetrics } from '../../src/runtime/metrics.ts';
import type { Point } from '../../src/stats/point.ts';
import {
  type CarbonDockerApi,
  type CarbonRunner,
  type CarbonRunnerOptions,
  CollectError,
  createCarbonRunner,
  figuresFromMetrics,
  nodeFromInfo,
  parseCarbonAddress,
} from '../../src/stats/runner.ts';
import { fixture } from '../helpers/exec.ts';

// A real dockerode client must satisfy the interface the runner asks for.
const _typeCheck: (docker: Docker) => CarbonDockerApi = (docker) => docker;

const NODE_ID = '5vlju9oxoopp8kisd34wa11ys';
const BUSY = 'interlock-stats-fixture-busy';
const GLOBAL = 'interlock-stats-fixture-global';

function json(name: string): unknown {
  return JSON.parse(readFileSync(fixture('stats', name), 'utf8'));
}

/** An engine with the recorded container list; each stats call serves the next recorded sample. */
class ScriptedEngine implements CarbonDockerApi {
  listError: Error | undefined;
  /** While set, listing waits for it (a hung engine). */
  hang: Promise<void> | undefined;
  infoCalls = 0;
  lists = 0;
  #round = new Map<string, number>();

  async version(): Promise<unknown> {
    return { ApiVersion: '1.41' };
  }

  async info(): Promise<unknown> {
    this.infoCalls++;
    return { Name: 'manager-1', Swarm: { NodeID: NODE_ID } };
  }

  async listContainers(): Promise<unknown> {
    this.lists++;
    if (this.hang) await this.hang;
    if (this.listError) throw this.listError;
    return json('containers-json.json');
  }

  getContainer(id: string) {
    return {
      stats: async () => {
        const n = this.#round.get(id) ?? 0;
        this.#round.set(id, n + 1);
        // The busy task's two recorded samples, then the host-network ones for everything else.
        if (id.startsWith('c444d9db2096')) return json(n % 2 === 0 ? 'v1-busy-1.json' : 'v1-busy-2.json');
        return json(n % 2 === 0 ? 'v1-host-network-1.json' : 'v1-host-network-2.json');
      },
    };
  }
}

/** Timers the test fires; `now` moves only when the test says. */
class ManualTimers implements Timers {
  nowMs = Date.parse('2026-11-23T19:47:15.250Z');
  #next = 1;
  pending = new Map<number, { fn: () => void; ms: number }>();
  setTimeout = (fn: () => void, ms: number): unknown => {
    const id = this.#next++;
    this.pending.set(id, { fn, ms });
    return id;
  };
  clearTimeout = (handle: unknown): void => {
    this.pending.delete(handle as number);
  };
  now = (): number => this.nowMs;

  /** The delay of the one pending timer that is not a round deadline. */
  scheduled(deadlineMs: number): number[] {
    return [...this.pending.values()].filter((t) => t.ms !== deadlineMs).map((t) => t.ms);
  }

  /** Advances the clock by the timer's delay and runs it. */
  fire(predicate: (ms: number) => boolean): void {
    for (const [id, t] of this.pending) {
      if (!predicate(t.ms)) continue;
      this.pending.delete(id);
      this.nowMs += t.ms;
      t.fn();
      return;
    }
    throw new Error(`no pending timer matches; pending: ${[...this.pending.values()].map((t) => t.ms).join(', ')}`);
  }
}

/** A line receiver like carbon's: whole lines only. */
class Receiver {
  lines: string[] = [];
  port = 0;
  #server: net.Server | undefined;
  #sockets = new Set<net.Socket>();

  async listen(port = 0): Promise<void> {
    const server = net.createServer((socket) => {
      this.#sockets.add(socket);
      let partial = '';
      socket.on('data', (chunk: Buffer) => {
        const parts = (partial + chunk.toString('utf8')).split('\n');
        partial = parts.pop() ?? '';
        this.lines.push(...parts);
      });
      socket.on('end', () => socket.end());
      socket.on('error', () => {});
      socket.on('close', () => this.#sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: '127.0.0.1', port }, () => resolve());
    });
    this.#server = server;
    this.port = (server.address() as net.AddressInfo).port;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const s of this.#sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

async function waitFor(what: string, predicate: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function config(output: Record<string, unknown>, cluster: Record<string, unknown> = {}) {
  const input = {
    clusters: { local: { nodeAddress: '127.0.0.1', ...cluster } },
    outputs: [{ kind: 'carbon', address: '127.0.0.1:2003', prefix: 'it', interval: '10s', ...output }],
  } as ConfigInput;
  return configSchema.parse(input);
}

function service(name: string, over: Partial<ServiceState>): ServiceState {
  return {
    id: name,
    name,
    mode: 'replicated',
    labels: {},
    networks: [],
    vips: [],
    ingressPorts: [],
    tasks: [],
    ...over,
  };
}

function task(slot: number) {
  return { id: `t${slot}`, slot, nodeId: NODE_ID, nodeAddress: '127.0.0.1', addresses: [], hostPorts: [] };
}

const STATE: ClusterState = {
  cluster: 'local',
  swarm: true,
  nodes: [],
  networks: [],
  services: [
    service('web', { replicas: 3, tasks: [task(1), task(2)] }),
    service(GLOBAL, {
      mode: 'global',
      tasks: [{ id: 'g1', nodeId: NODE_ID, nodeAddress: '127.0.0.1', addresses: [], hostPorts: [] }],
    }),
    service('standalone', { mode: 'container', tasks: [task(1)] }),
  ],
};

function byPath(points: readonly Point[]): Record<string, number> {
  return Object.fromEntries(points.map((p) => [p.path, p.value]));
}

interface Harness {
  runner: CarbonRunner;
  engine: ScriptedEngine;
  timers: ManualTimers;
  logs: Record<string, unknown>[];
  metrics: ReturnType<typeof createMetrics>;
}

const runners: CarbonRunner[] = [];
const receivers: Receiver[] = [];
afterEach(async () => {
  await Promise.all(runners.splice(0).map((r) => r.stop(500)));
  await Promise.all(receivers.splice(0).map((r) => r.stop()));
});

function harness(options: Partial<CarbonRunnerOptions> & Pick<CarbonRunnerOptions, 'config'>): Harness {
  const engine = new ScriptedEngine();
  const timers = new ManualTimers();
  const logs: Record<string, unknown>[] = [];
  const metrics = createMetrics();
  const runner = createCarbonRunner({
    docker: () => engine,
    log: createLogger({ format: 'json', level: 'debug', write: (line) => logs.push(JSON.parse(line)) }),
    metrics,
    instance: 'host-1',
    timers,
    now: timers.now,
    ...options,
  });
  runners.push(runner);
  return { runner, engine, timers, logs, metrics };
}

const messages = (logs: readonly Record<string, unknown>[]) => logs.map((l) => l.msg);

describe('carbon runner', () => {
  it('one round: task and service points, running-task counts from the last cluster state, own figures', async () => {
    const { runner, timers } = harness({
      config: config({}),
      daemonFigures: () => ({
        renders: 3,
        applies: 2,
        reloads: 1,
        failures: 0,
        events: { local: { 'service.update': 4 } },
      }),
    });
    runner.setClusterState(STATE);
    await runner.collectOnce();
    timers.nowMs += 2_000;
    const points = await runner.collectOnce();
    const values = byPath(points);

    expect(values[`it.local.tasks.${BUSY}.1.cpu.percent`]).toBeGreaterThan(50);
    expect(values[`it.local.tasks.${BUSY}.1.memory.used`]).toBeGreaterThan(0);
    // A global service's task is named by its node.
    expect(values[`it.local.tasks.${GLOBAL}.${NODE_ID}.memory.used`]).toBeGreaterThan(0);
    expect(values[`it.local.services.${BUSY}.tasks.sampled`]).toBe(1);
    // Counts come from the manager's view: 2 of 3 replicas run.
    expect(values['it.local.services.web.tasks.running']).toBe(2);
    expect(values['it.local.services.web.tasks.desired']).toBe(3);
    expect(values[`it.local.services.${GLOBAL}.tasks.running`]).toBe(1);
    expect(values[`it.local.services.${GLOBAL}.tasks.desired`]).toBeUndefined();
    // A standalone container is not a service with tasks to count.
    expect(values['it.local.services.standalone.tasks.running']).toBeUndefined();
    expect(values['it.interlock.host-1.renders']).toBe(3);
    expect(values['it.interlock.host-1.events.local.service_update']).toBe(4);
    expect(values['it.interlock.host-1.metrics.sent']).toBe(0);
    expect(new Set(points.map((p) => p.timestamp))).toEqual(new Set([Math.floor(timers.nowMs / 1000)]));

    const bare = await runner.collectOnce({ ownFigures: false });
    expect(bare.some((p) => p.path.startsWith('it.interlock.'))).toBe(false);
  });

  it('running-task counts stop when the cluster state is older than stateMaxAgeMs', async () => {
    const { runner, timers } = harness({ config: config({}), stateMaxAgeMs: 60_000 });
    runner.setClusterState(STATE);
    expect(byPath(await runner.collectOnce())['it.local.services.web.tasks.running']).toBe(2);
    timers.nowMs += 61_000;
    expect(byPath(await runner.collectOnce())['it.local.services.web.tasks.running']).toBeUndefined();
  });

  it('localOnly: per-service sums go to per-node series named by the Swarm node id from GET /info', async () => {
    const { runner, engine } = harness({ config: config({}, { localOnly: true }) });
    await runner.collectOnce();
    const values = byPath(await runner.collectOnce());
    expect(values[`it.local.services.${BUSY}.${NODE_ID}.memory.used`]).toBeGreaterThan(0);
    expect(values[`it.local.services.${BUSY}.memory.used`]).toBeUndefined();
    expect(values[`it.local.tasks.${BUSY}.1.memory.used`]).toBeGreaterThan(0);
    expect(engine.infoCalls).toBe(1);
  });

  it('tags mode and a custom pattern reach the names', async () => {
    const tagged = harness({ config: config({ tags: true }) });
    const paths = (await tagged.runner.collectOnce()).map((p) => p.path);
    expect(paths).toContain(`it.tasks.memory.used;cluster=local;node=${NODE_ID};service=${BUSY};task=1`);
    const custom = harness({ config: config({ pattern: 'docker.{cluster}.{service}.{task}.{metric}' }) });
    const values = byPath(await custom.runner.collectOnce());
    expect(values[`docker.local.${BUSY}.1.memory.used`]).toBeGreaterThan(0);
    expect(values[`docker.local.${BUSY}.memory.used`]).toBeGreaterThan(0);
  });

  it('a cluster that cannot be listed makes collectOnce reject with the cluster named', async () => {
    const { runner, engine } = harness({ config: config({}) });
    engine.listError = new Error('connect ECONNREFUSED /var/run/docker.sock');
    const error = await runner.collectOnce().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CollectError);
    expect((error as CollectError).cluster).toBe('local');
    expect((error as Error).message).toBe(
      'cluster "local": cannot collect statistics: connect ECONNREFUSED /var/run/docker.sock',
    );
  });

  it('a hung engine fails its cluster after roundTimeoutMs instead of holding the rounds', async () => {
    const { runner, engine, timers } = harness({ config: config({}), roundTimeoutMs: 7_777 });
    engine.hang = new Promise(() => {});
    const pending = runner.collectOnce().catch((e: unknown) => e);
    await waitFor('the round deadline', () => [...timers.pending.values()].some((t) => t.ms === 7_777));
    timers.fire((ms) => ms === 7_777);
    expect(String(await pending)).toContain('no answer within 7777 ms');
  });

  it('rounds: one at start, then at the next multiple of the interval, never two at once; a failed round is logged and the next runs; points reach carbon; stop flushes', async () => {
    const carbon = new Receiver();
    receivers.push(carbon);
    await carbon.listen();
    const DEADLINE = 29_999;
    const { runner, engine, timers, logs, metrics } = harness({
      config: config({ address: `127.0.0.1:${carbon.port}` }),
      roundTimeoutMs: DEADLINE,
    });
    runner.setClusterState(STATE);
    runner.start();
    await waitFor('round 1 scheduled the next', () => timers.scheduled(DEADLINE).length === 1);
    // 19:47:15.250 → the next multiple of 10 s is 19:47:20, plus the 50 ms offset.
    expect(timers.scheduled(DEADLINE)).toEqual([4_800]);
    await waitFor('round 1 at carbon', () =>
      carbon.lines.some((l) => l.startsWith('it.local.services.web.tasks.running 2 ')),
    );
    expect(messages(logs)).toContain('carbon connected');

    // Round 2: the engine hangs; while it does, no other round is scheduled.
    let release = () => {};
    engine.hang = new Promise<void>((resolve) => {
      release = resolve;
    });
    engine.listError = new Error('engine is restarting');
    timers.fire((ms) => ms === 4_800);
    await waitFor('round 2 listing', () => engine.lists === 2);
    expect(timers.scheduled(DEADLINE)).toEqual([]);
    engine.hang = undefined;
    release();
    await waitFor('round 2 scheduled the next', () => timers.scheduled(DEADLINE).length === 1);
    expect(logs.find((l) => l.msg === 'cannot collect statistics; will retry next round')).toMatchObject({
      level: 'warn',
      output: 'carbon',
      cluster: 'local',
      error: 'engine is restarting',
    });
    expect(timers.scheduled(DEADLINE)).toEqual([10_000]);

    // Round 3: the engine is back.
    engine.listError = undefined;
    const before = carbon.lines.length;
    timers.fire((ms) => ms === 10_000);
    await waitFor('round 3 scheduled the next', () => timers.scheduled(DEADLINE).length === 1);
    expect(messages(logs)).toContain('statistics readable again');
    const round3 = String(Math.floor(timers.nowMs / 1000));
    await runner.stop(2_000);
    const after = carbon.lines.slice(before);
    expect(after.some((l) => l.startsWith(`it.local.tasks.${BUSY}.1.cpu.percent `) && l.endsWith(round3))).toBe(true);
    expect(logs.find((l) => l.msg === 'carbon closed')).toMatchObject({ flushed: true, dropped_total: 0 });
    const sent = (await metrics.metricsSent.get()).values[0]?.value;
    expect(sent).toBe(carbon.lines.length);
  });

  it('a round that ends just past a multiple of the interval is followed by the round of that slot, not skipped', async () => {
    const { runner, timers } = harness({ config: config({ address: '127.0.0.1:9' }), roundTimeoutMs: 29_999 });
    timers.nowMs = Date.parse('2026-11-23T19:47:20.010Z');
    runner.start();
    await waitFor('round 1 scheduled the next', () => timers.scheduled(29_999).length === 1);
    expect(timers.scheduled(29_999)).toEqual([40]);
  });

  it('carbon away: the first failure is logged once, drops are counted in logs and metrics, points after its return arrive', async () => {
    const carbon = new Receiver();
    receivers.push(carbon);
    await carbon.listen();
    const port = carbon.port;
    await carbon.stop();
    const { runner, timers, logs, metrics } = harness({
      config: config({ address: `127.0.0.1:${port}` }),
      sender: { capacity: 20, backoff: { initialMs: 20, maxMs: 40, jitter: 0 } },
    });
    runner.start();
    await waitFor('a full buffer', () => messages(logs).includes('carbon points dropped'));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const failures = logs.filter((l) => l.msg === 'cannot connect to carbon; will retry');
    expect(failures.filter((l) => l.level === 'warn')).toHaveLength(1);
    expect(failures.length).toBeGreaterThan(2);
    const dropped = logs.find((l) => l.msg === 'carbon points dropped');
    expect(dropped).toMatchObject({ level: 'warn', reason: 'buffer-full', queued: 20 });
    const droppedMetric = (await metrics.metricsDropped.get()).values[0]?.value ?? 0;
    expect(droppedMetric).toBeGreaterThan(0);
    expect(runner.status()[0]?.counters).toMatchObject({ connected: false, queued: 20, dropped: droppedMetric });

    await carbon.listen(port);
    await waitFor('reconnected', () => messages(logs).includes('carbon connected'));
    await waitFor('the buffered points', () => carbon.lines.length === 20);
    await waitFor('next round scheduled', () => timers.scheduled(30_000).length === 1);
    timers.fire((ms) => ms !== 30_000);
    await waitFor('round 2 at carbon', () =>
      carbon.lines.some((l) => l.startsWith(`it.interlock.host-1.metrics.dropped ${droppedMetric} `)),
    );
  });
});

describe('helpers', () => {
  it("reads the watch daemon's figures from its Prometheus counters; latency is the mean since the last round", async () => {
    const m = createMetrics();
    const figures = figuresFromMetrics(m);
    m.renders.inc(3);
    m.applies.inc({ output: 'haproxy' }, 2);
    m.reloads.inc({ output: 'haproxy', result: 'ok' }, 2);
    m.reloads.inc({ output: 'nginx', result: 'failed' });
    m.validationFailures.inc({ output: 'nginx' });
    m.events.inc({ cluster: 'local', type: 'service', action: 'update' }, 4);
    m.events.inc({ cluster: 'local', type: 'container', action: 'die' });
    m.applyLatency.observe({ output: 'haproxy' }, 0.2);
    m.applyLatency.observe({ output: 'nginx' }, 0.4);
    expect(await figures()).toEqual({
      renders: 3,
      applies: 2,
      reloads: 2,
      failures: 2,
      applyLatencyMs: expect.closeTo(300, 6),
      events: { local: { 'service.update': 4, 'container.die': 1 } },
    });
    // Nothing applied since: no latency rather than a stale one.
    expect((await figures()).applyLatencyMs).toBeUndefined();
    m.applyLatency.observe({ output: 'haproxy' }, 1);
    expect((await figures()).applyLatencyMs).toBeCloseTo(1000, 6);
  });

  it('parses carbon addresses, IPv6 included', () => {
    expect(parseCarbonAddress('graphite.internal:2003')).toEqual({ host: 'graphite.internal', port: 2003 });
    expect(parseCarbonAddress('[::1]:2004')).toEqual({ host: '::1', port: 2004 });
  });

  it('names the node by its Swarm id, or its host name off Swarm', () => {
    expect(nodeFromInfo({ Name: 'n1', Swarm: { NodeID: 'abc' } })).toBe('abc');
    expect(nodeFromInfo({ Name: 'n1', Swarm: { NodeID: '' } })).toBe('n1');
    expect(() => nodeFromInfo({})).toThrow(/names no node/);
  });
});
