import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { realTimers } from '../../src/runtime/debounce.ts';
import { TaskFollower, taskFingerprint, tasksSettled, taskViews } from '../../src/watch/task-follow.ts';

const task = (id: string, state: string, desired = 'running') => ({
  ID: id,
  DesiredState: desired,
  Status: { State: state },
});

describe('task settling', () => {
  it('reads the fields that matter and ignores malformed entries', () => {
    expect(taskViews([task('a', 'running'), { ID: 'b' }, null, 'x'])).toEqual([
      { id: 'a', state: 'running', desired: 'running' },
    ]);
    expect(taskViews({})).toEqual([]);
  });

  it('is settled when every task meant to run runs and old ones are stopped', () => {
    const v = (...t: ReturnType<typeof task>[]) => taskViews(t);
    expect(tasksSettled(v(task('a', 'running'), task('old', 'shutdown', 'shutdown')))).toBe(true);
    expect(tasksSettled(v(task('a', 'running'), task('b', 'starting')))).toBe(false);
    expect(tasksSettled(v(task('a', 'preparing')))).toBe(false);
    // A rolling update's old task, told to stop, still running: its replacement is yet to come.
    expect(tasksSettled(v(task('a', 'running', 'shutdown')))).toBe(false);
    expect(tasksSettled(v(task('f', 'failed', 'shutdown'), task('r', 'rejected', 'shutdown')))).toBe(true);
    expect(tasksSettled([])).toBe(true);
  });

  it('fingerprints independently of order', () => {
    const a = taskViews([task('a', 'running'), task('b', 'starting')]);
    const b = taskViews([task('b', 'starting'), task('a', 'running')]);
    expect(taskFingerprint(a)).toBe(taskFingerprint(b));
    expect(taskFingerprint(a)).not.toBe(taskFingerprint(taskViews([task('a', 'running'), task('b', 'running')])));
  });
});

describe('TaskFollower (fake timers)', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  function setup(sequence: unknown[][], options: { maxMs?: number; maxFollowed?: number } = {}) {
    let i = 0;
    const list = vi.fn(async () => {
      const answer = sequence[Math.min(i, sequence.length - 1)];
      i++;
      return answer;
    });
    const onChange = vi.fn();
    const follower = new TaskFollower({
      list,
      onChange,
      timers: realTimers,
      now: () => Date.now(),
      intervalMs: 250,
      settleMs: 1000,
      ...options,
    });
    return { follower, list, onChange };
  }

  it('pokes each time the tasks move and stops once they stay settled for a second', async () => {
    const { follower, list, onChange } = setup([
      [task('old', 'running')],
      [task('old', 'running', 'shutdown')],
      [task('old', 'shutdown', 'shutdown'), task('new', 'starting')],
      [task('old', 'shutdown', 'shutdown'), task('new', 'running')],
    ]);
    follower.follow('svc');
    await vi.advanceTimersByTimeAsync(0); // the baseline look
    expect(list).toHaveBeenCalledTimes(1);
    expect(onChange).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(750); // three more looks, each a change
    expect(onChange).toHaveBeenCalledTimes(3);
    expect(follower.isFollowing('svc')).toBe(true);
    // Running and unchanged: following ends a second after the last change.
    await vi.advanceTimersByTimeAsync(1000);
    expect(follower.isFollowing('svc')).toBe(false);
    const looks = list.mock.calls.length;
    await vi.advanceTimersByTimeAsync(5000);
    expect(list).toHaveBeenCalledTimes(looks);
    expect(onChange).toHaveBeenCalledTimes(3);
  });

  it('gives up after maxMs when the tasks never settle', async () => {
    const { follower, list } = setup([[task('a', 'starting')]], { maxMs: 20_000 });
    follower.follow('svc');
    await vi.advanceTimersByTimeAsync(19_900);
    expect(follower.isFollowing('svc')).toBe(true);
    await vi.advanceTimersByTimeAsync(500);
    expect(follower.isFollowing('svc')).toBe(false);
    // One look every 250 ms for 20 s, and no more.
    expect(list.mock.calls.length).toBeGreaterThanOrEqual(80);
    expect(list.mock.calls.length).toBeLessThanOrEqual(82);
  });

  it('a new service event extends the follow; a removed service stops it', async () => {
    const { follower } = setup([[task('a', 'running')]]);
    follower.follow('svc');
    await vi.advanceTimersByTimeAsync(800);
    follower.follow('svc'); // another update while following
    await vi.advanceTimersByTimeAsync(800);
    expect(follower.isFollowing('svc')).toBe(true);
    await vi.advanceTimersByTimeAsync(500);
    expect(follower.isFollowing('svc')).toBe(false);
    follower.follow('svc');
    follower.unfollow('svc');
    expect(follower.following).toBe(0);
  });

  it('follows a bounded number of services; errors from the engine do not stop it', async () => {
    let calls = 0;
    const follower = new TaskFollower({
      list: async () => {
        calls++;
        throw new Error('ECONNREFUSED');
      },
      onChange: () => {},
      timers: realTimers,
      now: () => Date.now(),
      maxFollowed: 2,
      maxMs: 1000,
    });
    follower.follow('a');
    follower.follow('b');
    follower.follow('c');
    expect(follower.following).toBe(2);
    await vi.advanceTimersByTimeAsync(600);
    expect(calls).toBeGreaterThan(2);
    follower.stop();
    expect(follower.following).toBe(0);
  });
});
