/**
 * The config's durations as milliseconds, with their defaults: parsed here once, so every
 * runner, check and reader reads the same numbers (the schema has already refused a duration
 * that does not parse).
 */
import { parseDuration } from './duration.ts';
import type { AgentsConfig, CarbonOutput, ClusterConfig, Config } from './schema.ts';

export const DEFAULTS = {
  /** How long to wait for an engine. */
  clusterTimeoutMs: 6_000,
  /** Quiet time after each event before a re-list. */
  debounceMinMs: 100,
  /** Longest wait from the first event of a burst. */
  debounceMaxMs: 1_000,
  /** Full re-list interval (Swarm emits no task events). */
  reconcileMs: 5_000,
  /** Carbon collection interval. */
  carbonIntervalMs: 10_000,
  /** Longest long-poll of an agent. */
  agentsWaitMs: 30_000,
  /** An agent not heard from for this long is stale. */
  agentsStaleMs: 90_000,
} as const;

/** Carbon stores whole seconds: a shorter interval puts several points in one slot. */
export const MIN_CARBON_INTERVAL_MS = 1_000;

function ms(value: Parameters<typeof parseDuration>[0] | undefined, fallback: number): number {
  return value === undefined ? fallback : (parseDuration(value) ?? fallback);
}

export function clusterTimeoutMs(cluster: ClusterConfig): number {
  return ms(cluster.timeout, DEFAULTS.clusterTimeoutMs);
}

export function watchWaits(config: Config): { minMs: number; maxMs: number; reconcileMs: number } {
  const w = config.watch;
  return {
    minMs: ms(w?.debounce.min, DEFAULTS.debounceMinMs),
    maxMs: ms(w?.debounce.max, DEFAULTS.debounceMaxMs),
    reconcileMs: ms(w?.reconcile, DEFAULTS.reconcileMs),
  };
}

/** As written (for `validate`), and as the runner uses it (never under a second). */
export function carbonIntervalMs(output: CarbonOutput): { written: number; used: number } {
  const written = ms(output.interval, DEFAULTS.carbonIntervalMs);
  return { written, used: Math.max(MIN_CARBON_INTERVAL_MS, written) };
}

/** The agents listener's waits: the longest long-poll, and when an agent is stale (forgotten at 10x). */
export function agentsWaits(agents: AgentsConfig): { waitMs: number; staleMs: number } {
  return { waitMs: ms(agents.wait, DEFAULTS.agentsWaitMs), staleMs: ms(agents.staleAfter, DEFAULTS.agentsStaleMs) };
}
