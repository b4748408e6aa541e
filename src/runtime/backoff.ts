/**
 * Capped exponential backoff for reconnecting to an engine: 250 ms, 500 ms, 1 s, ... up to 10 s,
 * with a little jitter so several daemons do not knock on a restarted engine in step.
 */
export interface BackoffOptions {
  initialMs?: number;
  maxMs?: number;
  factor?: number;
  /** Fraction of the delay to randomise, ±; 0 for none. */
  jitter?: number;
  /** Returns a number in [0, 1). Injected so tests are deterministic. */
  random?: () => number;
}

export class Backoff {
  readonly #initial: number;
  readonly #max: number;
  readonly #factor: number;
  readonly #jitter: number;
  readonly #random: () => number;
  /** Delays handed out since the last reset. */
  attempts = 0;

  constructor(options: BackoffOptions = {}) {
    this.#initial = options.initialMs ?? 250;
    this.#max = Math.max(options.maxMs ?? 10_000, this.#initial);
    this.#factor = options.factor ?? 2;
    this.#jitter = options.jitter ?? 0.1;
    this.#random = options.random ?? Math.random;
  }

  /** The next delay, in ms. */
  next(): number {
    const base = Math.min(this.#initial * this.#factor ** this.attempts, this.#max);
    this.attempts++;
    const spread = base * this.#jitter * (2 * this.#random() - 1);
    return Math.max(0, Math.min(Math.round(base + spread), this.#max));
  }

  reset(): void {
    this.attempts = 0;
  }
}
