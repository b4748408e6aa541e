/**
 * The watch daemon's cluster state, kept up to date one service at a time (issue 12): after an
 * event about one service, that service's entries are read again (./read.ts readServiceLists),
 * mapped exactly as a full read maps them, and put in place of the old ones. Services that did
 * not change keep their objects, so the routes built from them are reused (RouteCache).
 * Pure: no I/O.
 */
import type { Config } from '../config/schema.ts';
import type { Diagnostic } from '../diagnostics.ts';
import type { ClusterState, ServiceState } from './model.ts';
import type { SnapshotDocument } from './snapshot.ts';
import { mapSnapshots } from './sources.ts';

/** A cluster's last good state, with what a one-service update needs of the last full read. */
export interface HeldState {
  state: ClusterState;
  diagnostics: Diagnostic[];
  /** The last full read's networks and nodes (small lists): a service is mapped against them. */
  raw?: Pick<SnapshotDocument, 'networks' | 'nodes'>;
}

/** One service's entries, as read after an event about it. */
export interface ServiceEntries {
  services: unknown[];
  tasks: unknown[];
  containers: unknown[];
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function diagnosticKey(d: Diagnostic): string {
  return JSON.stringify([d.severity, d.code, d.cluster, d.service, d.label, d.path, d.message]);
}

/**
 * `held` with the given services read again. Undefined when a one-service update cannot give
 * what a full read would (the caller reads everything then): no full read's lists held, not a
 * Swarm, or a service whose name another service (or a standalone container) holds.
 * `changed` is false when every service read maps to what is held.
 */
export function patchServices(
  held: HeldState,
  updates: ReadonlyMap<string, ServiceEntries>,
  config: Config,
): { held: HeldState; changed: boolean } | undefined {
  const { state } = held;
  if (!held.raw || !state.swarm) return undefined;
  const cluster = state.cluster;
  // A few updates (a label change, a task event) look their service up; a storm's many, by an index.
  let index: Map<string, number> | undefined;
  const indexOf = (id: string): number | undefined => {
    if (updates.size <= 8) {
      const at = state.services.findIndex((s) => s.id === id && s.mode !== 'container');
      return at === -1 ? undefined : at;
    }
    if (index === undefined) {
      index = new Map();
      for (let i = 0; i < state.services.length; i++) {
        const s = state.services[i] as ServiceState;
        if (s.mode !== 'container') index.set(s.id, i);
      }
    }
    return index.get(id);
  };
  const replaced = new Map<number, ServiceState | undefined>();
  const added: ServiceState[] = [];
  const goneNames = new Set<string>();
  const fresh: Diagnostic[] = [];
  for (const [id, entries] of updates) {
    const mapped = mapSnapshots(
      [
        {
          cluster,
          doc: {
            services: entries.services,
            tasks: entries.tasks,
            containers: entries.containers,
            ...(held.raw.networks ? { networks: held.raw.networks } : {}),
            ...(held.raw.nodes ? { nodes: held.raw.nodes } : {}),
          },
        },
      ],
      config,
    );
    const mini = mapped.states[0];
    if (!mini?.swarm) return undefined;
    const next = mini.services.find((s) => s.id === id && s.mode !== 'container');
    const at = indexOf(id);
    const old = at === undefined ? undefined : state.services[at];
    if (old) goneNames.add(old.name);
    if (next) goneNames.add(next.name);
    for (const d of mapped.diagnostics) fresh.push(d);
    if (old && next && JSON.stringify(old) === JSON.stringify(next)) continue;
    if (at === undefined) {
      if (next) added.push(next);
    } else replaced.set(at, next);
  }
  // Names must stay unique among the services kept and added (a full read leaves one of two out),
  // and the list sorted by name. When every service read kept its name and none is new, both
  // still hold: no check, no sort (a label change at 10,000 services).
  const services: ServiceState[] = [];
  state.services.forEach((s, i) => {
    const r = replaced.has(i) ? replaced.get(i) : s;
    if (r) services.push(r);
  });
  services.push(...added);
  const renamed =
    added.length > 0 || [...replaced].some(([i, r]) => r !== undefined && r.name !== state.services[i]?.name);
  if (renamed) {
    const names = new Set<string>();
    for (const s of services) {
      if (names.has(s.name)) return undefined;
      names.add(s.name);
    }
  }
  const changed = replaced.size > 0 || added.length > 0;
  if (renamed) services.sort((a, b) => cmp(a.name, b.name));

  // The diagnostics about the services read are theirs now; the others stay.
  const kept = held.diagnostics.filter((d) => !(d.cluster === cluster && d.service && goneNames.has(d.service)));
  const keys = new Set(kept.map(diagnosticKey));
  const diagnostics = [...kept];
  for (const d of fresh) {
    const key = diagnosticKey(d);
    if (keys.has(key)) continue;
    keys.add(key);
    diagnostics.push(d);
  }
  const diagnosticsChanged =
    diagnostics.length !== held.diagnostics.length ||
    diagnostics.some((d, i) => diagnosticKey(d) !== diagnosticKey(held.diagnostics[i] as Diagnostic));
  return {
    held: { state: changed ? { ...state, services } : state, diagnostics, raw: held.raw },
    changed: changed || diagnosticsChanged,
  };
}

/**
 * A full read's state, with the objects of the services that did not change taken from `previous`
 * (so their routes are reused), and whether anything differs from it at all.
 */
export function shareUnchanged(
  previous: HeldState | undefined,
  next: HeldState,
): { held: HeldState; changed: boolean } {
  if (!previous) return { held: next, changed: true };
  const a = previous.state;
  const b = next.state;
  let changed =
    a.cluster !== b.cluster ||
    a.swarm !== b.swarm ||
    a.nodeAddress !== b.nodeAddress ||
    JSON.stringify(a.nodes) !== JSON.stringify(b.nodes) ||
    JSON.stringify(a.networks) !== JSON.stringify(b.networks) ||
    a.services.length !== b.services.length;
  const old = new Map<string, ServiceState>();
  for (const s of a.services) old.set(`${s.mode}\u0000${s.id}`, s);
  const services = b.services.map((s, i) => {
    const o = old.get(`${s.mode}\u0000${s.id}`);
    if (o && JSON.stringify(o) === JSON.stringify(s)) {
      if (a.services[i] !== o) changed = true;
      return o;
    }
    changed = true;
    return s;
  });
  const diagnosticsChanged =
    previous.diagnostics.length !== next.diagnostics.length ||
    previous.diagnostics.some((d, i) => diagnosticKey(d) !== diagnosticKey(next.diagnostics[i] as Diagnostic));
  return {
    held: { ...next, state: { ...b, services } },
    changed: changed || diagnosticsChanged,
  };
}
