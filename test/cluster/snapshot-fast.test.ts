/**
 * The hand-written entry checks (src/cluster/snapshot-fast.ts) are never looser than the zod
 * schemas they stand in for: an entry they pass, the schema passes too, and reads the same. On the
 * demo snapshot and a generated one every entry takes the fast path; on malformed variants (fields
 * replaced by values of every shape) the checks may send more entries to zod, never fewer.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { syntheticSnapshot } from '../../bench/lib/synthetic.ts';
import type { SnapshotDocument } from '../../src/cluster/snapshot.ts';
import {
  containerOk,
  containerPortsOk,
  networkOk,
  nodeOk,
  serviceOk,
  taskOk,
} from '../../src/cluster/snapshot-fast.ts';
import { ENTRY_SCHEMAS, mapSnapshot, parseSnapshotText } from '../../src/cluster/snapshot-map.ts';
import { ROOT } from '../helpers/exec.ts';

type List = keyof typeof ENTRY_SCHEMAS;
const CHECKS: Record<List, (v: Record<string, unknown>) => boolean> = {
  services: serviceOk,
  tasks: taskOk,
  networks: networkOk,
  nodes: nodeOk,
  containers: containerOk,
};
const LISTS = Object.keys(CHECKS) as List[];

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const fastOk = (list: List, v: unknown) => isObj(v) && CHECKS[list](v);

const demo = parseSnapshotText(readFileSync(path.join(ROOT, 'examples/swarm-demo.snapshot.json'), 'utf8'), 'demo');
const generated = syntheticSnapshot({ services: 200 }) as SnapshotDocument;
const published = syntheticSnapshot({ services: 50, backends: 'published', publishedPort: 8000 }) as SnapshotDocument;

/** Every path to a value inside `v` (objects and arrays), the root excluded. */
function paths(v: unknown, at: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  const children: [string | number, unknown][] = Array.isArray(v)
    ? [...v.entries()]
    : isObj(v)
      ? Object.entries(v)
      : [];
  for (const [k, x] of children) paths(x, [...at, k], out).push([...at, k]);
  return out;
}

function replaced(v: unknown, at: readonly (string | number)[], value: unknown): unknown {
  const copy: unknown = structuredClone(v);
  let cur = copy as Record<string | number, unknown>;
  for (const k of at.slice(0, -1)) cur = cur[k] as Record<string | number, unknown>;
  const last = at[at.length - 1] as string | number;
  if (value === undefined) delete cur[last];
  else cur[last] = value;
  return copy;
}

/** A value of every kind a malformed snapshot may hold where another was expected. */
const ODD_VALUES: unknown[] = [
  undefined,
  null,
  true,
  0,
  -1,
  1.5,
  65536,
  70000,
  Number.MAX_SAFE_INTEGER + 2,
  '',
  'x',
  'not an id!',
  '-starts-with-dash',
  'a'.repeat(129),
  [],
  [1],
  ['a'],
  {},
  { Target: 1 },
];

describe('hand-written snapshot checks', () => {
  it('pass every entry of the demo and generated snapshots, which zod passes too', () => {
    for (const doc of [demo, generated, published]) {
      for (const list of LISTS) {
        for (const entry of doc[list] ?? []) {
          expect(fastOk(list, entry), `${list} ${JSON.stringify(entry).slice(0, 200)}`).toBe(true);
          expect(ENTRY_SCHEMAS[list].safeParse(entry).success).toBe(true);
        }
      }
      for (const c of doc.containers ?? []) expect(containerPortsOk((c as { Ports?: unknown }).Ports)).toBe(true);
    }
  });

  it('never pass an entry that zod refuses: every field of every demo entry replaced by odd values', () => {
    let refused = 0;
    for (const list of LISTS) {
      for (const entry of demo[list] ?? []) {
        for (const at of paths(entry)) {
          for (const value of ODD_VALUES) {
            const bad = replaced(entry, at, value);
            const zod = ENTRY_SCHEMAS[list].safeParse(bad).success;
            if (!zod) refused++;
            if (fastOk(list, bad)) expect(zod, `${list} ${at.join('.')} = ${JSON.stringify(value)}`).toBe(true);
          }
        }
      }
    }
    // The variants do exercise refusals (else the property above would hold for nothing).
    expect(refused).toBeGreaterThan(1000);
  });

  it('never pass an entry that zod refuses: random values at random places (property)', () => {
    const entries = LISTS.flatMap((list) => (generated[list] ?? []).slice(0, 5).map((e) => ({ list, e })));
    fc.assert(
      fc.property(
        fc.constantFrom(...entries),
        fc.nat(),
        fc.oneof(fc.jsonValue(), fc.constant(undefined)),
        ({ list, e }, pick, value) => {
          const all = paths(e);
          const at = all[pick % all.length] as (string | number)[];
          const bad = replaced(e, at, value);
          if (fastOk(list, bad)) expect(ENTRY_SCHEMAS[list].safeParse(bad).success).toBe(true);
          const ports = isObj(bad) ? bad.Ports : undefined;
          if (list === 'containers' && containerPortsOk(ports)) {
            expect(ENTRY_SCHEMAS.containers.shape.Ports.safeParse(ports).success).toBe(true);
          }
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('map a snapshot the same whether entries take the fast path or zod', () => {
    // Entries zod copies (JSON round trip: the same data, other objects) against the raw ones.
    for (const doc of [demo, generated]) {
      const viaZod: SnapshotDocument = {};
      for (const list of LISTS) {
        const entries = doc[list];
        if (entries) viaZod[list] = entries.map((e) => ENTRY_SCHEMAS[list].parse(e));
      }
      const a = mapSnapshot(doc, { cluster: 'c' });
      const b = mapSnapshot(viaZod, { cluster: 'c' });
      expect(a).toEqual(b);
    }
  });
});
