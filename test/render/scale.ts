/**
 * Synthetic route sets for the scale tests, and small helpers for ordering and timing.
 */
import type { Route } from '../../src/routes/types.ts';
import { route } from '../fixtures/routes/base.ts';

/**
 * `n` services with a host and an alias each and three backends; every third on a stripped path
 * with a health check, every seventh sticky, every eleventh behind a wildcard.
 */
export function manyRoutes(n: number): Route[] {
  return Array.from({ length: n }, (_, i) =>
    route({
      service: `svc-${i}`,
      hosts: i % 11 === 10 ? [`*.tenant-${i}.example.com`] : [`svc-${i}.example.com`, `alias-${i}.example.net`],
      path: i % 3 === 0 ? `/api${i % 7}` : '/',
      stripPath: i % 3 === 0,
      ...(i % 3 === 0 ? { healthCheck: { path: '/healthz', intervalMs: 5000 } } : {}),
      ...(i % 7 === 0 ? { stickyCookie: 'SESSION' } : {}),
      backends: [1, 2, 3].map((k) => ({
        name: `svc-${i}-${k}`,
        address: `10.${(i >> 8) & 255}.${i & 255}.${k + 1}`,
        port: 8080,
      })),
    }),
  );
}

/** A deterministic shuffle (seeded LCG), so a failing order can be replayed. */
export function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let state = seed >>> 0;
  for (let i = out.length - 1; i > 0; i--) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const j = state % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

/** The fastest of `runs` timings of `fn`, in ms: the least disturbed by whatever else runs. */
export function timeMin(fn: () => unknown, runs = 3): number {
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    fn();
    best = Math.min(best, performance.now() - start);
  }
  return best;
}
