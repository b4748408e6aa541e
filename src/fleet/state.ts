/**
 * What the controller knows about its agents: every agent seen (instance, node, output, applied
 * hash, last seen, last error), and the requests refused for a wrong token. Pure: the time comes in
 * as an argument.
 *
 * An agent is
 * - `converged` when the hash it applied is the output's current one;
 * - `not_converged` otherwise (still applying, its proxy refused the bundle, its reload failed);
 * - `stale` when it has not been heard from for `staleMs` and holds no long-poll open;
 * - `unauthorized` when its last request carried a wrong token.
 * Agents not heard from for 10 × `staleMs` are forgotten. Unauthorized entries are capped (anyone
 * who reaches the port can make one), the oldest dropped first.
 */
export type AgentState = 'converged' | 'not_converged' | 'stale' | 'unauthorized';
export const AGENT_STATES: readonly AgentState[] = ['converged', 'not_converged', 'stale', 'unauthorized'];

export interface AgentIdentity {
  instance: string;
  node: string;
  output: string;
  /** `haproxy`, `nginx`: what the agent says it runs beside. */
  proxy?: string;
}

export interface AgentReport extends AgentIdentity {
  /** The bundle hash its proxy runs, if any. */
  applied?: string;
  /** Why its last bundle was not applied (the proxy's words), or the reload failure. */
  error?: string;
}

interface AgentRecord extends AgentIdentity {
  applied?: string;
  error?: string;
  lastSeenMs: number;
  /** Long-polls held open right now. */
  polls: number;
  address?: string;
  unauthorized?: boolean;
}

export interface AgentView {
  instance: string;
  node: string;
  output: string;
  proxy: string | null;
  state: AgentState;
  applied: string | null;
  lastSeen: string;
  error: string | null;
  address: string | null;
}

/** Bounded text from the network: one line per field value, at most `max` characters. */
export function clean(value: unknown, max = 200): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping them is the point
  const s = typeof value === 'string' ? value.replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, '') : '';
  return s.length > max ? `${s.slice(0, max - 3)}...` : s;
}

export const MAX_UNAUTHORIZED = 100;
export const MAX_AGENTS = 10_000;

export class FleetState {
  readonly #agents = new Map<string, AgentRecord>();
  readonly #staleMs: number;

  constructor(options: { staleMs: number }) {
    this.#staleMs = options.staleMs;
  }

  get size(): number {
    return this.#agents.size;
  }

  #key(id: AgentIdentity, unauthorized = false): string {
    return `${unauthorized ? '!' : ''}${id.output}\u0000${id.instance}`;
  }

  #upsert(id: AgentIdentity, nowMs: number, address: string | undefined): AgentRecord {
    const key = this.#key(id);
    let r = this.#agents.get(key);
    if (!r) {
      if (this.#agents.size >= MAX_AGENTS) this.#dropOldest(() => true);
      r = { instance: id.instance, node: id.node, output: id.output, lastSeenMs: nowMs, polls: 0 };
      this.#agents.set(key, r);
    }
    r.node = id.node;
    if (id.proxy) r.proxy = id.proxy;
    r.lastSeenMs = nowMs;
    if (address) r.address = address;
    // A good request clears an earlier refusal of the same instance.
    this.#agents.delete(this.#key(id, true));
    return r;
  }

  /** An authenticated request from an agent (a poll, before and after it is answered). */
  seen(id: AgentIdentity, nowMs: number, address?: string, applied?: string): void {
    const r = this.#upsert(id, nowMs, address);
    if (applied !== undefined) r.applied = applied || undefined;
  }

  pollOpened(id: AgentIdentity, nowMs: number): void {
    this.#upsert(id, nowMs, undefined).polls++;
  }

  pollClosed(id: AgentIdentity, nowMs: number): void {
    const r = this.#upsert(id, nowMs, undefined);
    r.polls = Math.max(0, r.polls - 1);
  }

  /** The last error an (authorized) agent reported, if any: one lookup, not a listing. */
  errorOf(output: string, instance: string): string | undefined {
    return this.#agents.get(this.#key({ output, instance, node: '' }))?.error;
  }

  report(report: AgentReport, nowMs: number, address?: string): void {
    const r = this.#upsert(report, nowMs, address);
    r.applied = report.applied || undefined;
    r.error = report.error || undefined;
  }

  /**
   * A request with a missing or wrong token, under the identity it claimed. True when this
   * identity was not already listed as refused (so the controller logs it once).
   */
  unauthorized(id: AgentIdentity, nowMs: number, address?: string): boolean {
    const key = this.#key(id, true);
    const fresh = !this.#agents.has(key);
    if (fresh) {
      const count = [...this.#agents.values()].filter((a) => a.unauthorized).length;
      if (count >= MAX_UNAUTHORIZED) this.#dropOldest((a) => a.unauthorized === true);
    }
    this.#agents.set(key, {
      ...id,
      lastSeenMs: nowMs,
      polls: 0,
      unauthorized: true,
      error: 'wrong or missing token',
      ...(address ? { address } : {}),
    });
    return fresh;
  }

  #dropOldest(which: (a: AgentRecord) => boolean): void {
    let oldest: [string, AgentRecord] | undefined;
    for (const e of this.#agents) if (which(e[1]) && (!oldest || e[1].lastSeenMs < oldest[1].lastSeenMs)) oldest = e;
    if (oldest) this.#agents.delete(oldest[0]);
  }

  /** Forgets agents not heard from for 10 × staleMs. */
  prune(nowMs: number): void {
    for (const [k, a] of this.#agents)
      if (a.polls === 0 && nowMs - a.lastSeenMs > 10 * this.#staleMs) this.#agents.delete(k);
  }

  stateOf(a: AgentRecord, current: string | undefined, nowMs: number): AgentState {
    if (a.unauthorized) return 'unauthorized';
    if (a.polls === 0 && nowMs - a.lastSeenMs > this.#staleMs) return 'stale';
    return current !== undefined && a.applied === current ? 'converged' : 'not_converged';
  }

  /** Every agent, sorted by output then instance, against the current hash of each output. */
  list(current: (output: string) => string | undefined, nowMs: number): AgentView[] {
    this.prune(nowMs);
    return [...this.#agents.values()]
      .map((a) => ({
        instance: a.instance,
        node: a.node,
        output: a.output,
        proxy: a.proxy ?? null,
        state: this.stateOf(a, current(a.output), nowMs),
        applied: a.applied ?? null,
        lastSeen: new Date(a.lastSeenMs).toISOString(),
        error: a.error ?? null,
        address: a.address ?? null,
      }))
      .sort((x, y) => (x.output === y.output ? (x.instance < y.instance ? -1 : 1) : x.output < y.output ? -1 : 1));
  }

  /** Agents per output and state (every state of every output present, zero included). */
  counts(
    outputs: readonly string[],
    current: (output: string) => string | undefined,
    nowMs: number,
  ): { output: string; state: AgentState; count: number }[] {
    const views = this.list(current, nowMs);
    const names = [...new Set([...outputs, ...views.map((v) => v.output)])].sort();
    return names.flatMap((output) =>
      AGENT_STATES.map((state) => ({
        output,
        state,
        count: views.filter((v) => v.output === output && v.state === state).length,
      })),
    );
  }
}
