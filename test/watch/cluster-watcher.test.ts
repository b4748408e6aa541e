import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { realTimers } from '../../src/runtime/debounce.ts';
import { createLogger } from '../../src/runtime/log.ts';
import { ClusterWatcher, type PokeReason } from '../../src/watch/cluster-watcher.ts';
import { FakeSwarm, httpService, refused } from './fake-swarm.ts';

function setup(swarm: FakeSwarm) {
  const pokes: PokeReason[] = [];
  const lines: string[] = [];
  const log = createLogger({ format: 'logfmt', level: 'debug', write: (l) => lines.push(l) });
  const watcher = new ClusterWatcher({
    cluster: 'local',
    connect: async () => ({ api: swarm.api(), display: 'unix:///fake.sock', timeoutMs: 1000 }),
    timers: realTimers,
    now: () => Date.now(),
    log,
    onPoke: (_c, reason) => pokes.push(reason),
    backoff: { jitter: 0 },
  });
  return { watcher, pokes, lines };
}

describe('ClusterWatcher (fake engine, fake timers)', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('subscribes with the four event types and pokes on every relevant event', async () => {
    const swarm = new FakeSwarm();
    const { watcher, pokes } = setup(swarm);
    watcher.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(pokes).toEqual(['start']);
    swarm.emit('network', 'connect', 'n1');
    swarm.emit('container', 'exec_start: sh -c true', 'c1');
    await vi.advanceTimersByTimeAsync(0);
    expect(pokes).toEqual(['start', 'event']);
    expect(watcher.events).toBe(1);
    await watcher.stop();
  });

  it('after a service event follows its tasks and pokes when they move', async () => {
    const swarm = new FakeSwarm();
    const web = { ...httpService('web', 8001), states: ['starting'] };
    swarm.add(web);
    const { watcher, pokes } = setup(swarm);
    watcher.start();
    await vi.advanceTimersByTimeAsync(0);
    swarm.emit('service', 'update', web.id, { name: 'web' });
    await vi.advanceTimersByTimeAsync(10);
    expect(watcher.followedServices).toBe(1);
    web.states = ['running']; // the task came up; no event says so
    await vi.advanceTimersByTimeAsync(300);
    expect(pokes).toEqual(['start', 'event', 'tasks']);
    await vi.advanceTimersByTimeAsync(1500);
    expect(watcher.followedServices).toBe(0);
    expect(swarm.calls.filter((c) => c === 'listTasks(service)').length).toBeGreaterThan(2);
    await watcher.stop();
  });

  it('reconnects with backoff when the engine goes away, then asks for a resync', async () => {
    const swarm = new FakeSwarm();
    const { watcher, pokes, lines } = setup(swarm);
    watcher.start();
    await vi.advanceTimersByTimeAsync(0);
    await watcher.read();
    expect(watcher.health().state).toBe('connected');

    swarm.down = refused();
    swarm.dropStreams();
    await vi.advanceTimersByTimeAsync(0);
    expect(watcher.health()).toMatchObject({ state: 'stale', streamUp: false });
    expect(lines.some((l) => l.includes('msg="event stream lost; reconnecting"'))).toBe(true);
    // Attempts at 250, +500, +1000 ms all fail.
    await vi.advanceTimersByTimeAsync(1750);
    const attempts = swarm.calls.filter((c) => c === 'getEvents').length;
    expect(attempts).toBe(4);
    await expect(watcher.read()).rejects.toThrow(/connection refused/);
    expect(watcher.health().error).toMatch(/connection refused/);

    swarm.down = undefined; // the engine is back
    await vi.advanceTimersByTimeAsync(2000);
    expect(pokes.at(-1)).toBe('resync');
    expect(lines.some((l) => l.includes('msg="event stream reconnected; resyncing"'))).toBe(true);
    // Stream up, but the last read failed: still stale until the resync read succeeds.
    expect(watcher.health().state).toBe('stale');
    await watcher.read();
    expect(watcher.health()).toMatchObject({ state: 'connected', streamUp: true });
    await watcher.stop();
  });

  it('drops a stream that looks up when a read fails (a half-open connection)', async () => {
    const swarm = new FakeSwarm();
    const { watcher, pokes } = setup(swarm);
    watcher.start();
    await vi.advanceTimersByTimeAsync(0);
    swarm.down = refused();
    await expect(watcher.read()).rejects.toThrow();
    await vi.advanceTimersByTimeAsync(0);
    expect(watcher.health().streamUp).toBe(false);
    swarm.down = undefined;
    await vi.advanceTimersByTimeAsync(300);
    expect(pokes).toEqual(['start', 'resync']);
    await watcher.stop();
  });

  it('is down until its first read, and stops cleanly', async () => {
    const swarm = new FakeSwarm();
    swarm.down = refused();
    const { watcher } = setup(swarm);
    watcher.start();
    await vi.advanceTimersByTimeAsync(100);
    expect(watcher.health().state).toBe('down');
    await watcher.stop();
    const before = swarm.calls.length;
    await vi.advanceTimersByTimeAsync(60_000);
    expect(swarm.calls.length).toBe(before);
  });
});
