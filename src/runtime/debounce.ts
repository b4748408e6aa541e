/**
 * The debounce that works (docker-gen's `-wait min:max`): each event restarts the `min` timer; the
 * first event of a burst starts the `max` timer, which is never extended; whichever fires first
 * triggers one run. Timers are injected so tests drive them with fake time.
 */
export interface Timers {
  setTimeout: (fn: () => void, ms: number) => unknown;
  clearTimeout: (handle: unknown) => void;
}

export const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

export class Debouncer {
  readonly #minMs: number;
  readonly #maxMs: number;
  readonly #fire: () => void;
  readonly #timers: Timers;
  #minTimer: unknown;
  #maxTimer: unknown;
  /** Events seen in the current burst. */
  pending = 0;

  constructor(options: { minMs: number; maxMs: number; fire: () => void; timers?: Timers }) {
    this.#minMs = options.minMs;
    this.#maxMs = Math.max(options.maxMs, options.minMs);
    this.#fire = options.fire;
    this.#timers = options.timers ?? realTimers;
  }

  /** An event arrived. */
  poke(): void {
    this.pending++;
    if (this.#minTimer !== undefined) this.#timers.clearTimeout(this.#minTimer);
    this.#minTimer = this.#timers.setTimeout(() => this.#trigger(), this.#minMs);
    if (this.#maxTimer === undefined) this.#maxTimer = this.#timers.setTimeout(() => this.#trigger(), this.#maxMs);
  }

  /** Fire now if anything is pending (e.g. on shutdown). */
  flush(): void {
    if (this.pending > 0) this.#trigger();
  }

  cancel(): void {
    if (this.#minTimer !== undefined) this.#timers.clearTimeout(this.#minTimer);
    if (this.#maxTimer !== undefined) this.#timers.clearTimeout(this.#maxTimer);
    this.#minTimer = undefined;
    this.#maxTimer = undefined;
    this.pending = 0;
  }

  #trigger(): void {
    this.cancel();
    this.#fire();
  }
}
