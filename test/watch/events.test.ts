import { describe, expect, it } from 'vitest';
import { Backoff } from '../../src/runtime/backoff.ts';
import { isRelevant, LineSplitter, parseEvent } from '../../src/watch/events.ts';

describe('LineSplitter', () => {
  it('joins lines split across chunks and keeps the unfinished tail for later', () => {
    const s = new LineSplitter();
    expect(s.push('{"a":1}\n{"b"')).toEqual(['{"a":1}']);
    expect(s.push(':2}\n\n{"c":3}\r\n')).toEqual(['{"b":2}', '{"c":3}']);
    expect(s.push('')).toEqual([]);
  });

  it('does not break a multi-byte character split between two chunks', () => {
    const s = new LineSplitter();
    const bytes = Buffer.from('{"name":"café"}\n');
    const cut = bytes.indexOf(0xc3) + 1; // inside the two bytes of é
    expect(s.push(bytes.subarray(0, cut))).toEqual([]);
    expect(s.push(bytes.subarray(cut))).toEqual(['{"name":"café"}']);
  });

  it('drops an over-long line whole, counts it, and carries on with the next', () => {
    const s = new LineSplitter({ maxLineBytes: 16 });
    expect(s.push('x'.repeat(10))).toEqual([]);
    expect(s.push('x'.repeat(10))).toEqual([]);
    expect(s.push('y'.repeat(30))).toEqual([]);
    expect(s.push('zz\n{"ok":1}\n')).toEqual(['{"ok":1}']);
    expect(s.dropped).toBe(1);
  });
});

describe('parseEvent', () => {
  it('reads a service event', () => {
    // As the engine writes it: timeNano is past 2^53, and JSON.parse rounds it.
    const line =
      '{"Type":"service","Action":"update","Actor":{"ID":"svc1","Attributes":{"name":"web","updatestate.new":"updating"}},"time":1700000000,"timeNano":1700000000123456789}';
    expect(parseEvent(line)).toEqual({
      type: 'service',
      action: 'update',
      id: 'svc1',
      name: 'web',
      serviceId: 'svc1',
      serviceName: 'web',
      timeMs: 1700000000123,
    });
  });

  it('names the Swarm service of a task container', () => {
    const e = parseEvent(
      JSON.stringify({
        Type: 'container',
        Action: 'start',
        Actor: {
          ID: 'c1',
          Attributes: {
            name: 'web.1.abc',
            'com.docker.swarm.service.id': 'svc1',
            'com.docker.swarm.service.name': 'web',
          },
        },
        time: 5,
      }),
    );
    expect(e).toMatchObject({
      type: 'container',
      action: 'start',
      serviceId: 'svc1',
      serviceName: 'web',
      timeMs: 5000,
    });
  });

  it('refuses what is not an event, without throwing', () => {
    expect(parseEvent('not json')).toBeUndefined();
    expect(parseEvent('[]')).toBeUndefined();
    expect(parseEvent('{"Type":"service"}')).toBeUndefined();
    expect(parseEvent('null')).toBeUndefined();
  });

  it('ignores health-check exec noise but not state changes', () => {
    const e = (action: string) => ({ type: 'container', action, id: 'c1' });
    expect(isRelevant(e('exec_start: /bin/sh -c true'))).toBe(false);
    expect(isRelevant(e('exec_die'))).toBe(false);
    expect(isRelevant(e('die'))).toBe(true);
    expect(isRelevant(e('health_status: unhealthy'))).toBe(true);
  });
});

describe('Backoff', () => {
  it('doubles from 250 ms up to the 10 s cap, and starts over after a reset', () => {
    const b = new Backoff({ jitter: 0 });
    const delays = Array.from({ length: 8 }, () => b.next());
    expect(delays).toEqual([250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
    b.reset();
    expect(b.next()).toBe(250);
  });

  it('spreads delays by the jitter, never past the cap', () => {
    const low = new Backoff({ jitter: 0.2, random: () => 0 });
    const high = new Backoff({ jitter: 0.2, random: () => 0.999999 });
    expect(low.next()).toBe(200);
    expect(high.next()).toBe(300);
    for (let i = 0; i < 10; i++) high.next();
    expect(high.next()).toBe(10_000);
  });
});
