/**
 * What changed between two renders, in words an operator reads in a log line: hosts added,
 * removed, or with other backends; and which diagnostics are new or gone, so a bad label is
 * reported once when it appears, not on every re-list.
 */
import type { Diagnostic } from '../diagnostics.ts';
import type { Route } from '../routes/types.ts';

/** One entry per host (and path, and TCP port): who serves it and on what. */
export type RouteSummary = ReadonlyMap<string, string>;

function routeKeys(route: Route): string[] {
  if (route.mode === 'tcp') return [`tcp:${route.listenPort ?? '?'}`];
  const path = route.path === '/' ? '' : route.path;
  return route.hosts.map((h) => `${h}${path}`);
}

export function summarizeRoutes(routes: readonly Route[]): RouteSummary {
  const out = new Map<string, string>();
  for (const r of routes) {
    const backends = r.backends
      .map((b) => `${b.address}:${b.port}`)
      .sort()
      .join(',');
    for (const key of routeKeys(r)) out.set(key, `${r.cluster}/${r.service}|${backends}`);
  }
  return out;
}

export interface RouteDiff {
  added: string[];
  removed: string[];
  /** Same host, other service or other backends. */
  changed: string[];
}

export function diffRoutes(before: RouteSummary, after: RouteSummary): RouteDiff {
  const added: string[] = [];
  const removed: string[] = [];
  const changed: string[] = [];
  for (const [key, value] of after) {
    const old = before.get(key);
    if (old === undefined) added.push(key);
    else if (old !== value) changed.push(key);
  }
  for (const key of before.keys()) if (!after.has(key)) removed.push(key);
  return { added: added.sort(), removed: removed.sort(), changed: changed.sort() };
}

export function isEmptyDiff(d: RouteDiff): boolean {
  return d.added.length === 0 && d.removed.length === 0 && d.changed.length === 0;
}

/** A list for one log field, cut after `max` names so a log line stays a line. */
export function listField(items: readonly string[], max = 10): string | undefined {
  if (items.length === 0) return undefined;
  const shown = items.slice(0, max).join(',');
  return items.length > max ? `${shown},+${items.length - max} more` : shown;
}

export function diagnosticKey(d: Diagnostic): string {
  return JSON.stringify([d.severity, d.code, d.cluster, d.service, d.label, d.path, d.message]);
}

/** Diagnostics not in `previous` (by key), and the keys of those gone since. */
export function diffDiagnostics(
  previous: ReadonlySet<string>,
  current: readonly Diagnostic[],
): { fresh: Diagnostic[]; resolved: string[]; keys: Set<string> } {
  const keys = new Set<string>();
  const fresh: Diagnostic[] = [];
  for (const d of current) {
    const key = diagnosticKey(d);
    if (keys.has(key)) continue;
    keys.add(key);
    if (!previous.has(key)) fresh.push(d);
  }
  const resolved = [...previous].filter((k) => !keys.has(k));
  return { fresh, resolved, keys };
}
