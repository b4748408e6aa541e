import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Debouncer } from '../../src/runtime/debounce.ts';

describe('debounce (min restarts on each event, max never extended)', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('fires once, min after a lone event', () => {
    const fire = vi.fn();
    const d = new Debouncer({ minMs: 100, maxMs: 1000, fire });
    d.poke();
    vi.advanceTimersByTime(99);
    expect(fire).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(fire).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(5000);
    expect(fire).toHaveBeenCalledTimes(1);
  });

  it('restarts min on each event of a short burst', () => {
    const fire = vi.fn();
    const d = new Debouncer({ minMs: 100, maxMs: 1000, fire });
    for (let i = 0; i < 5; i++) {
      d.poke();
      vi.advanceTimersByTime(50);
    }
    expect(fire).not.toHaveBeenCalled();
    vi.advanceTimersByTime(50);
    expect(fire).toHaveBeenCalledTimes(1);
  });

  it('fires at max during an endless burst, then starts a new burst', () => {
    const fire = vi.fn();
    const d = new Debouncer({ minMs: 100, maxMs: 1000, fire });
    // An event every 50 ms for 2.5 s: min never elapses, so max paces the runs.
    for (let t = 0; t < 2500; t += 50) {
      d.poke();
      vi.advanceTimersByTime(50);
    }
    expect(fire).toHaveBeenCalledTimes(2);
    vi.advanceTimersByTime(100);
    expect(fire).toHaveBeenCalledTimes(3);
  });

  it('flush fires only when something is pending', () => {
    const fire = vi.fn();
    const d = new Debouncer({ minMs: 100, maxMs: 1000, fire });
    d.flush();
    expect(fire).not.toHaveBeenCalled();
    d.poke();
    d.flush();
    expect(fire).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(2000);
    expect(fire).toHaveBeenCalledTimes(1);
  });
});
