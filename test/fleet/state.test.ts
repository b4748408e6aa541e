import { describe, expect, it } from 'vitest';
import { FleetState, MAX_UNAUTHORIZED } from '../../src/fleet/state.ts';

const id = (instance: string, output = 'edge') => ({ instance, node: 'n1', output, proxy: 'haproxy' });

describe('fleet state', () => {
  it('converged when the applied hash is the current one; not_converged otherwise, with the error', () => {
    const s = new FleetState({ staleMs: 1000 });
    s.report({ ...id('a'), applied: 'h1' }, 0);
    s.report({ ...id('b'), applied: 'h0', error: 'haproxy: [ALERT] no' }, 0);
    s.seen(id('c'), 0);
    const list = s.list(() => 'h1', 10);
    expect(list.map((a) => [a.instance, a.state, a.applied, a.error])).toEqual([
      ['a', 'converged', 'h1', null],
      ['b', 'not_converged', 'h0', 'haproxy: [ALERT] no'],
      ['c', 'not_converged', null, null],
    ]);
    expect(s.list(() => undefined, 10).every((a) => a.state === 'not_converged')).toBe(true);
  });

  it('stale after staleMs without contact unless a long-poll is open; forgotten after 10 x staleMs', () => {
    const s = new FleetState({ staleMs: 1000 });
    s.report({ ...id('a'), applied: 'h' }, 0);
    s.report({ ...id('b'), applied: 'h' }, 0);
    s.pollOpened(id('b'), 0);
    expect(s.list(() => 'h', 1500).map((a) => a.state)).toEqual(['stale', 'converged']);
    expect(s.list(() => 'h', 10_001).map((a) => a.instance)).toEqual(['b']);
    s.pollClosed(id('b'), 10_001);
    expect(s.list(() => 'h', 10_500).map((a) => a.state)).toEqual(['converged']);
    expect(s.list(() => 'h', 30_000)).toEqual([]);
  });

  it('lists refused requests as unauthorized (once each), cleared by a good request, capped', () => {
    const s = new FleetState({ staleMs: 1000 });
    expect(s.unauthorized(id('x'), 0, '10.0.0.9')).toBe(true);
    expect(s.unauthorized(id('x'), 1, '10.0.0.9')).toBe(false);
    expect(s.list(() => 'h', 2)).toMatchObject([{ instance: 'x', state: 'unauthorized', address: '10.0.0.9' }]);
    s.seen(id('x'), 3);
    expect(s.list(() => 'h', 4).map((a) => a.state)).toEqual(['not_converged']);
    for (let i = 0; i < MAX_UNAUTHORIZED + 50; i++) s.unauthorized(id(`u${i}`), 10 + i);
    const refused = s.list(() => 'h', 500).filter((a) => a.state === 'unauthorized');
    expect(refused).toHaveLength(MAX_UNAUTHORIZED);
    // The oldest went first.
    expect(refused.some((a) => a.instance === 'u0')).toBe(false);
    expect(refused.some((a) => a.instance === `u${MAX_UNAUTHORIZED + 49}`)).toBe(true);
  });

  it('counts every state of every output, zeros included', () => {
    const s = new FleetState({ staleMs: 1000 });
    s.report({ ...id('a'), applied: 'h' }, 0);
    const counts = s.counts(['edge', 'web'], (o) => (o === 'edge' ? 'h' : undefined), 0);
    expect(counts).toContainEqual({ output: 'edge', state: 'converged', count: 1 });
    expect(counts).toContainEqual({ output: 'web', state: 'converged', count: 0 });
    expect(counts).toHaveLength(8);
  });
});
