/**
 * The hand-written spec shape check (plainSpec in src/routes/spec.ts) is never looser than the zod
 * schema it stands in for: a spec it passes, the schema passes too, with the same values. The
 * label dialects' specs (every feature of the generated snapshot) take the fast path; specs with a
 * field replaced by a value of any shape may go to zod more often, never less.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { syntheticSnapshot } from '../../bench/lib/synthetic.ts';
import type { SnapshotDocument } from '../../src/cluster/snapshot.ts';
import { mapSnapshot } from '../../src/cluster/snapshot-map.ts';
import { dockerLbDialect } from '../../src/routes/dialect-docker-lb.ts';
import { interlockDialect } from '../../src/routes/dialect-interlock.ts';
import { plainSpec, specSchema } from '../../src/routes/spec.ts';
import { everyField } from '../fixtures/routes/every-field.ts';

const state = mapSnapshot(syntheticSnapshot({ services: 60 }) as SnapshotDocument, { cluster: 'c' }).state;
const specs = state.services.flatMap((service) => [
  ...interlockDialect(service, { cluster: 'c', allowRawDirectives: true }).specs,
  ...dockerLbDialect(service, { cluster: 'c', allowRawDirectives: true }).specs,
]);

/** Every field set (the spec tests' fixture). */
const FULL = everyField;

describe('plainSpec', () => {
  it('passes every spec of the label dialects, and the schema reads them the same', () => {
    expect(specs.length).toBeGreaterThan(50);
    for (const { spec } of specs) {
      expect(plainSpec(spec)).toBe(true);
      const parsed = specSchema().safeParse(spec);
      expect(parsed.success).toBe(true);
      expect(parsed.data).toEqual(spec);
    }
    expect(plainSpec(FULL)).toBe(true);
    expect(specSchema().safeParse(FULL).data).toEqual(FULL);
  });

  it('is never looser than the schema: any field replaced by any value, or an extra one', () => {
    const keys = Object.keys(FULL);
    fc.assert(
      fc.property(
        fc.constantFrom(...keys, 'extra', '__proto__', 'constructor'),
        fc.oneof(fc.anything(), fc.constant(Number.NaN), fc.constant(Number.POSITIVE_INFINITY)),
        (key, value) => {
          const spec: Record<string, unknown> = { ...FULL };
          Object.defineProperty(spec, key, { value, enumerable: true, configurable: true, writable: true });
          if (plainSpec(spec)) expect(specSchema().safeParse(spec).success).toBe(true);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('is never looser than the schema on nested values', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('healthCheck', 'backendTls', 'redirects', 'rateLimit', 'requestHeaders', 'hsts', 'basicAuth'),
        fc.dictionary(
          fc.constantFrom(
            'path',
            'intervalMs',
            'verify',
            'from',
            'to',
            'perSecond',
            'burst',
            'action',
            'name',
            'value',
            'maxAge',
            'preload',
            'usersFile',
            'realm',
            'x',
          ),
          fc.anything(),
        ),
        fc.boolean(),
        (key, inner, list) => {
          const spec = { ...FULL, [key]: list ? [inner] : inner };
          if (plainSpec(spec)) expect(specSchema().safeParse(spec).success).toBe(true);
        },
      ),
      { numRuns: 3000 },
    );
  });
});
