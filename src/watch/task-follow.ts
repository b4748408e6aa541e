/**
 * Following a service's tasks after a service event. Swarm emits no task events (moby#37403) and
 * container events are local to the node that runs the container, so after `docker service
 * update` or `scale` the manager may see nothing more. The follower lists that one service's tasks
 * (GET /tasks?filters={"service":[id]}) every ~250 ms and pokes the daemon whenever they change,
 * until they settle or a bound passes: new and moved tasks reach the proxies within about a second.
 */
import type { Timers } from '../runtime/debounce.ts';

export interface TaskView {
  id: string;
  state: string;
  desired: string;
}

/** States a task passes through before `running`. */
const STARTING = new Set(['new', 'allocated', 'pending', 'assigned', 'accepted', 'preparing', 'ready', 'starting']);

function field(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined;
}

/** The fields of GET /tasks that tell whether an update is still moving. */
export function taskViews(raw: unknown): TaskView[] {
  if (!Array.isArray(raw)) return [];
  const out: TaskView[] = [];
  for (const t of raw) {
    const id = field(t, 'ID');
    const state = field(field(t, 'Status'), 'State');
    const desired = field(t, 'DesiredState');
    if (typeof id === 'string' && typeof state === 'string' && typeof desired === 'string') {
      out.push({ id, state, desired });
    }
  }
  return out;
}

/** Identical when nothing that matters for backends moved. */
export function taskFingerprint(tasks: readonly TaskView[]): string {
  return tasks
    .map((t) => `${t.id}:${t.state}:${t.desired}`)
    .sort()
    .join(',');
}

/**
 * Settled: every task meant to run is running, and no task is still starting or still running
 * while being shut down (an old task of a rolling update, whose replacement comes after it).
 */
export function tasksSettled(tasks: readonly TaskView[]): boolean {
  for (const t of tasks) {
    if (t.desired === 'running') {
      if (t.state !== 'running') return false;
    } else if (t.state === 'running' || STARTING.has(t.state)) {
      return false;
    }
  }
  return true;
}

export interface TaskFollowerOptions {
  /** Lists the tasks of one service (raw GET /tasks answer). */
  list: (serviceId: string) => Promise<unknown>;
  /** Called when a followed service's tasks changed since the last look. */
  onChange: (serviceId: string) => void;
  timers: Timers;
  now: () => number;
  intervalMs?: number;
  /** How long tasks must look settled (and unchanged) before following stops. */
  settleMs?: number;
  /** Follow no longer than this after the last service event. */
  maxMs?: number;
  /** Bound on services followed at once; past it, the periodic re-list covers the rest. */
  maxFollowed?: number;
}

interface Followed {
  deadline: number;
  fingerprint: string | undefined;
  stableSince: number;
  timer: unknown;
  polling: boolean;
}

export class TaskFollower {
  readonly #o: Required<TaskFollowerOptions>;
  readonly #followed = new Map<string, Followed>();
  #stopped = false;
  /** Polls made, for tests and metrics. */
  polls = 0;

  constructor(options: TaskFollowerOptions) {
    this.#o = { intervalMs: 250, settleMs: 1000, maxMs: 20_000, maxFollowed: 64, ...options };
  }

  get following(): number {
    return this.#followed.size;
  }

  isFollowing(serviceId: string): boolean {
    return this.#followed.has(serviceId);
  }

  /** A service event arrived: start following, or extend the follow of, this service. */
  follow(serviceId: string): void {
    if (this.#stopped) return;
    const now = this.#o.now();
    const existing = this.#followed.get(serviceId);
    if (existing) {
      existing.deadline = now + this.#o.maxMs;
      // A new update just started: what looked settled may be about to move.
      existing.stableSince = now;
      return;
    }
    if (this.#followed.size >= this.#o.maxFollowed) return;
    const f: Followed = {
      deadline: now + this.#o.maxMs,
      fingerprint: undefined,
      stableSince: now,
      timer: undefined,
      polling: false,
    };
    this.#followed.set(serviceId, f);
    // The first look right away: it is the baseline later looks are compared with.
    f.timer = this.#o.timers.setTimeout(() => void this.#poll(serviceId), 0);
  }

  /** Stop following one service (it was removed). */
  unfollow(serviceId: string): void {
    const f = this.#followed.get(serviceId);
    if (!f) return;
    if (f.timer !== undefined) this.#o.timers.clearTimeout(f.timer);
    this.#followed.delete(serviceId);
  }

  stop(): void {
    this.#stopped = true;
    for (const id of [...this.#followed.keys()]) this.unfollow(id);
  }

  async #poll(serviceId: string): Promise<void> {
    const f = this.#followed.get(serviceId);
    if (!f || this.#stopped) return;
    f.timer = undefined;
    f.polling = true;
    this.polls++;
    let tasks: TaskView[] | undefined;
    try {
      tasks = taskViews(await this.#o.list(serviceId));
    } catch {
      // The engine is away; the event stream's reconnect and the re-list handle that.
      tasks = undefined;
    }
    f.polling = false;
    if (this.#followed.get(serviceId) !== f || this.#stopped) return;
    const now = this.#o.now();
    if (tasks) {
      const fingerprint = taskFingerprint(tasks);
      if (f.fingerprint !== undefined && fingerprint !== f.fingerprint) {
        f.stableSince = now;
        this.#o.onChange(serviceId);
      }
      f.fingerprint = fingerprint;
      if (tasksSettled(tasks) && now - f.stableSince >= this.#o.settleMs) {
        this.#followed.delete(serviceId);
        return;
      }
    }
    if (now >= f.deadline) {
      this.#followed.delete(serviceId);
      return;
    }
    f.timer = this.#o.timers.setTimeout(() => void this.#poll(serviceId), this.#o.intervalMs);
  }
}
