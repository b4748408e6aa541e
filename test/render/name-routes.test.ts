/**
 * nameRoutes keeps the last call's sorted routes and reuses them when the same route objects come
 * back (the watch daemon's unchanged services). Whatever came before, a call must name and order
 * routes exactly as a call on fresh copies of them does.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nameRoutes } from '../../src/render/types.ts';
import type { Route } from '../../src/routes/types.ts';
import { route } from '../fixtures/routes/base.ts';
import { shuffled } from './scale.ts';

/** Routes whose services collide after sanitizing (`a.b` and `a_b`), share names, and repeat. */
function pool(): Route[] {
  const services = ['a.b', 'a_b', 'web', 'api', 'web__x', 'web', 'z'];
  return services.flatMap((service, i) =>
    [0, 1].map((k) =>
      route({
        service,
        cluster: k === 0 ? 'local' : 'x__local',
        hosts: [`h${i}-${k}.test`],
        path: k === 0 ? '/' : `/p${i}`,
        backends: [{ name: `${service}-${k}`, address: `10.0.${i}.${k + 1}`, port: 80 }],
      }),
    ),
  );
}

const plain = (named: ReturnType<typeof nameRoutes>) =>
  named.map((n) => ({ name: n.name, route: n.route, servers: n.servers }));

describe('nameRoutes across calls', () => {
  it('names a sequence of overlapping route sets as fresh calls do', () => {
    const routes = pool();
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.subarray(routes.map((_, i) => i)), fc.nat(), fc.boolean()), {
          minLength: 1,
          maxLength: 6,
        }),
        (steps) => {
          const lists = steps.map(([picked, seed, twice]) => {
            const list = shuffled(
              picked.map((i) => routes[i] as Route),
              seed,
            );
            if (twice && list.length > 0) list.push(list[0] as Route);
            return list;
          });
          // First the answers for objects nameRoutes has never seen (fresh copies)...
          const expected = lists.map((list) => plain(nameRoutes(list.map((r) => structuredClone(r)))));
          // ...then the same lists one after the other, each sharing objects with the one before.
          lists.forEach((list, i) => {
            const got = plain(nameRoutes(list));
            expect(got).toEqual(expected[i]);
            // Every route listed is named once per listing.
            expect(got.length).toBe(list.length);
            expect(new Set(got.map((n) => n.name)).size).toBe(got.length);
          });
        },
      ),
      { numRuns: 300 },
    );
  });

  it('hands out the same objects for routes that kept their names', () => {
    const routes = pool();
    const first = nameRoutes(routes);
    const second = nameRoutes(routes.slice(1));
    const byRoute = new Map(first.map((n) => [n.route, n]));
    const kept = second.filter((n) => byRoute.get(n.route)?.name === n.name);
    expect(kept.length).toBeGreaterThan(0);
    for (const n of kept) expect(byRoute.get(n.route)).toBe(n);
  });
});
