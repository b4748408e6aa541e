/**
 * patchServices puts the services read again after events in place of the held ones: the state
 * must be what a full read of the same cluster gives (same services, same order, same objects
 * for the services that did not change), whether an update relabels, renames, removes or adds.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { syntheticSnapshot } from '../../bench/lib/synthetic.ts';
import type { SnapshotDocument } from '../../src/cluster/snapshot.ts';
import { type HeldState, patchServices, type ServiceEntries } from '../../src/cluster/snapshot-patch.ts';
import { mapSnapshots } from '../../src/cluster/sources.ts';
import { configSchema } from '../../src/config/schema.ts';

const config = configSchema.parse({ clusters: { c: {} }, outputs: [{ kind: 'log' }] });
type Raw = { ID: string; Spec: { Name: string; Labels?: Record<string, string> } };
type RawTask = { ServiceID: string };

const full = (doc: SnapshotDocument) => mapSnapshots([{ cluster: 'c', doc }], config);

/** What the daemon reads of one service after an event about it. */
function entries(doc: SnapshotDocument, id: string): ServiceEntries {
  return {
    services: (doc.services as Raw[]).filter((s) => s.ID === id),
    tasks: (doc.tasks as RawTask[]).filter((t) => t.ServiceID === id),
    containers: [],
  };
}

describe('patchServices', () => {
  const base = syntheticSnapshot({ services: 12 });
  const doc0: SnapshotDocument = { ...base, containers: [] };
  const ids = (doc0.services as Raw[]).map((s) => s.ID);
  const edit = fc.record({
    at: fc.nat({ max: ids.length - 1 }),
    kind: fc.constantFrom('label', 'rename', 'remove', 'same'),
    name: fc.constantFrom('aaa', 'svc-5x', 'zzz', 'svc-0'),
  });

  it('gives what a full read gives, keeping the objects of services that did not change', () => {
    fc.assert(
      fc.property(fc.uniqueArray(edit, { maxLength: 4, selector: (e) => e.at }), (edits) => {
        const mapped = full(doc0);
        const held: HeldState = {
          state: mapped.states[0] as HeldState['state'],
          diagnostics: mapped.diagnostics,
          raw: { networks: doc0.networks, nodes: doc0.nodes },
        };
        const services = structuredClone(doc0.services) as Raw[];
        for (const e of edits) {
          const s = services.find((x) => x.ID === ids[e.at]) as Raw;
          if (e.kind === 'label') s.Spec.Labels = { ...s.Spec.Labels, 'interlock.hostname': `h${e.at}.test` };
          if (e.kind === 'rename') s.Spec.Name = e.name;
        }
        const removed = new Set(edits.filter((e) => e.kind === 'remove').map((e) => ids[e.at]));
        const doc1: SnapshotDocument = { ...doc0, services: services.filter((s) => !removed.has(s.ID)) };
        const updates = new Map(edits.map((e) => [ids[e.at] as string, entries(doc1, ids[e.at] as string)]));
        const patched = patchServices(held, updates, config);
        const names = (doc1.services as Raw[]).map((s) => s.Spec.Name);
        if (new Set(names).size !== names.length) {
          // Two services with one name: only a full read can say which is left out.
          expect(patched).toBeUndefined();
          return;
        }
        const expected = full(doc1).states[0];
        expect(patched?.held.state.services).toEqual(expected?.services);
        const before = new Map(held.state.services.map((s) => [s.id, s]));
        const touched = new Set(edits.filter((e) => e.kind !== 'same').map((e) => ids[e.at]));
        for (const s of patched?.held.state.services ?? []) if (!touched.has(s.id)) expect(s).toBe(before.get(s.id));
        expect(patched?.changed).toBe(touched.size > 0);
      }),
      { numRuns: 200 },
    );
  });
});
