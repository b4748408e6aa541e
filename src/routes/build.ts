/**
 * Cluster states + rules → routes. Every rule runs on every service (a service two rules match
 * gets routes from both); custom rules run guarded, and their output is checked like labels are.
 *
 * Conflicts: when routes (from any cluster, service or rule) claim the same host and path, the
 * same TCP listen port, the default backend, or a host one of them passes through as TLS, the
 * route that was there first keeps the claim: the oldest service (by creation time, then
 * cluster, service and rule name). Every newcomer loses that claim with an error naming the
 * holder, and the holder gets a warning naming the newcomers. So a deploy that reuses a host by
 * mistake (or on purpose) can neither take the host over nor take it offline, and the result
 * does not depend on the order of services or rules. Only the contested host is taken away (a
 * route keeps its other hosts); a route left with nothing to answer is dropped.
 */
import type { ClusterState, ServiceState } from '../cluster/model.ts';
import type { RuleConfig, RuleFunction } from '../config/schema.ts';
import type { Diagnostic } from '../diagnostics.ts';
import { describeThrown, threw } from '../errors.ts';
import { parseRedirectSource } from '../parse/fields.ts';
import { dockerLbDialect } from './dialect-docker-lb.ts';
import { interlockDialect } from './dialect-interlock.ts';
import type { DialectOptions, DialectResult, SourcedSpec } from './labels.ts';
import { resolveRoute } from './resolve.ts';
import type { Backend, CanaryShare, PolicyFiles, Route } from './types.ts';

export interface SkippedService {
  cluster: string;
  service: string;
  reason: string;
}

export interface BuildResult {
  routes: Route[];
  diagnostics: Diagnostic[];
  /** Services with a route that were left out for a reason that is not a problem (scaled to zero). */
  skipped: SkippedService[];
}

export const DEFAULT_RULES: readonly RuleConfig[] = [{ kind: 'interlock', allowRawDirectives: false }];

function ruleName(rule: RuleConfig): string {
  return rule.kind === 'custom' ? rule.name : rule.kind;
}

function runCustom(
  name: string,
  fn: RuleFunction,
  service: ServiceState,
  cluster: string,
): { specs: SourcedSpec[]; diagnostics: Diagnostic[] } {
  const fail = (message: string, fix: string) => ({
    specs: [],
    diagnostics: [
      {
        severity: 'error' as const,
        code: 'rule-failed',
        message: `rule ${name} ${message}; the service is left out`,
        fix,
        cluster,
        service: service.name,
      },
    ],
  });
  let result: unknown;
  try {
    // A copy: a rule that mutates its argument must not change what later rules see.
    result = fn(structuredClone(service), { cluster });
  } catch (error) {
    return fail(threw(error), `fix the rule's \`routes\` function in the config`);
  }
  // What a rule returns may still run its code when read (a getter, a Proxy): read it once, here,
  // into plain data, so a throw is this rule's failure and nothing later runs the rule's code.
  let specs: unknown[];
  try {
    if (result === null || result === undefined) return { specs: [], diagnostics: [] };
    if (typeof (result as { then?: unknown }).then === 'function') {
      return fail('returned a Promise', 'rules run synchronously: return the RouteSpec itself');
    }
    specs = (Array.isArray(result) ? result : [result]).map((spec) => plainData(spec, 0));
  } catch (error) {
    return fail(
      `returned a route spec that cannot be read: ${describeThrown(error)}`,
      'return plain data: a RouteSpec object (or a list of them) without getters or Proxies',
    );
  }
  // Checked field by field like labels, later (resolveRoute).
  return { specs: specs.map((spec) => ({ spec: spec as SourcedSpec['spec'] })), diagnostics: [] };
}

/**
 * A deep copy as plain data (objects, arrays, primitives). Reading it runs every getter once:
 * own enumerable properties, and the getters of a class the value is an instance of (as reading
 * the spec field by field would).
 */
function plainData(value: unknown, depth: number): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (depth > 8) throw new Error('it is nested too deeply');
  if (Array.isArray(value)) return Array.from(value, (v) => plainData(v, depth + 1));
  const keys = new Set(Object.keys(value));
  for (let p = Object.getPrototypeOf(value); p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    for (const [key, d] of Object.entries(Object.getOwnPropertyDescriptors(p))) if (d.get) keys.add(key);
  }
  return Object.fromEntries([...keys].map((k) => [k, plainData((value as Record<string, unknown>)[k], depth + 1)]));
}

/** Per rule, its dialect options for the last cluster: the same object for every service. */
type DialectRule = Exclude<RuleConfig, { kind: 'custom' }>;
const DIALECT_OPTIONS = new WeakMap<DialectRule, DialectOptions>();

function dialectOptions(rule: DialectRule, cluster: string): DialectOptions {
  const allowBroadWildcards = rule.allowBroadWildcards ?? false;
  // Rules are parsed config (not changed after), but every field read is compared, to be sure.
  const held = DIALECT_OPTIONS.get(rule);
  if (
    held &&
    held.cluster === cluster &&
    held.prefix === rule.prefix &&
    held.allowRawDirectives === (rule.allowRawDirectives ?? false) &&
    held.allowBroadWildcards === allowBroadWildcards
  ) {
    return held;
  }
  const built = { cluster, ...options(rule), allowBroadWildcards };
  DIALECT_OPTIONS.set(rule, built);
  return built;
}

function runRule(rule: RuleConfig, service: ServiceState, cluster: string): DialectResult {
  switch (rule.kind) {
    case 'interlock':
      return interlockDialect(service, dialectOptions(rule, cluster));
    case 'docker-lb':
      return dockerLbDialect(service, dialectOptions(rule, cluster));
    case 'custom': {
      const r = runCustom(rule.name, rule.routes, service, cluster);
      return { matched: r.specs.length > 0, ...r };
    }
  }
}

function options(rule: { prefix?: string | undefined; allowRawDirectives?: boolean }): {
  prefix?: string;
  allowRawDirectives: boolean;
} {
  return {
    ...(rule.prefix !== undefined ? { prefix: rule.prefix } : {}),
    allowRawDirectives: rule.allowRawDirectives ?? false,
  };
}

/** What one service's rules give, before conflicts are settled across services. */
interface ServiceBuild {
  routes: Route[];
  diagnostics: Diagnostic[];
  skipped: SkippedService[];
}

interface CachedService {
  service: ServiceState;
  /** JSON of `service`, made when first compared with a service that is not the same object. */
  json?: string;
  result: ServiceBuild;
}

/**
 * Per-service results kept from one build to the next (the watch daemon, issue 12): a service
 * whose state, cluster context (name, nodes, networks, nodeAddress) and rules are those of the
 * last build is not resolved again. A service counts as the same when it is the same object (the
 * daemon keeps unchanged services' objects) or has the same JSON. Rules are compared by identity:
 * a config reload brings new rules, and everything is resolved again. A custom rule is therefore
 * called again only when its service changed. Conflicts are settled across all services on every
 * build, so who keeps a contested host never depends on the cache.
 */
/** The policyFiles folder's contents as one comparable string ('' without a folder). */
export function policyFilesKey(policyFiles: PolicyFiles | undefined): string {
  return policyFiles ? JSON.stringify([policyFiles.dir, [...policyFiles.files].sort()]) : '';
}

export class RouteCache {
  #rules: readonly RuleConfig[] | undefined;
  /** The policyFiles folder's contents the held routes were resolved with (issue 14). */
  #policyFiles = '';
  readonly #clusters = new Map<string, { context: string; services: Map<string, CachedService> }>();
  /** Services resolved / reused in the last build, for tests and logs. */
  resolved = 0;
  reused = 0;

  /** @internal */
  begin(rules: readonly RuleConfig[], policyFiles: PolicyFiles | undefined): void {
    // The folder is read again for every render: compare its contents, not the object. A changed
    // users file or page resolves every service again (they are few and small).
    const files = policyFilesKey(policyFiles);
    if (rules !== this.#rules || files !== this.#policyFiles) {
      this.#rules = rules;
      this.#policyFiles = files;
      this.#clusters.clear();
    }
    this.resolved = 0;
    this.reused = 0;
  }

  /** @internal The entries of one cluster, or none when its context changed. */
  cluster(state: ClusterState): { context: string; services: Map<string, CachedService> | undefined } {
    const context = JSON.stringify([
      state.cluster,
      state.swarm,
      state.nodeAddress ?? null,
      state.nodes,
      state.networks,
    ]);
    const held = this.#clusters.get(state.cluster);
    return { context, services: held?.context === context ? held.services : undefined };
  }

  /** @internal */
  keep(cluster: string, context: string, services: Map<string, CachedService>): void {
    this.#clusters.set(cluster, { context, services });
  }
}

function buildService(
  state: ClusterState,
  service: ServiceState,
  activeRules: readonly RuleConfig[],
  policyFiles: PolicyFiles | undefined,
): ServiceBuild {
  const diagnostics: Diagnostic[] = [];
  const skipped: SkippedService[] = [];
  const routes: Route[] = [];
  let reasons: Set<string> | undefined;
  for (const rule of activeRules) {
    const result = runRule(rule, service, state.cluster);
    for (const d of result.diagnostics) diagnostics.push(d);
    if (result.skip) {
      reasons ??= new Set();
      reasons.add(result.skip);
    }
    for (const spec of result.specs) {
      const resolved = resolveRoute(spec, ruleName(rule), service, state, resolveOptions(rule, policyFiles));
      for (const d of resolved.diagnostics) diagnostics.push(d);
      if (resolved.skipped) {
        reasons ??= new Set();
        reasons.add(resolved.skipped);
      }
      if (resolved.route) routes.push(resolved.route);
    }
  }
  if (routes.length === 0 && reasons) {
    for (const reason of [...reasons].sort()) skipped.push({ cluster: state.cluster, service: service.name, reason });
  }
  return { routes, diagnostics, skipped };
}

/** Per rule, the options of its last resolve: the same object for every service (issue 12). */
const RESOLVE_OPTIONS = new WeakMap<
  RuleConfig,
  { policyFiles: PolicyFiles | undefined; options: { allowBroadWildcards: boolean; policyFiles?: PolicyFiles } }
>();

function resolveOptions(
  rule: RuleConfig,
  policyFiles: PolicyFiles | undefined,
): { allowBroadWildcards: boolean; policyFiles?: PolicyFiles } {
  const held = RESOLVE_OPTIONS.get(rule);
  if (
    held &&
    held.policyFiles === policyFiles &&
    held.options.allowBroadWildcards === (rule.allowBroadWildcards ?? false)
  )
    return held.options;
  const options = { allowBroadWildcards: rule.allowBroadWildcards ?? false, ...(policyFiles ? { policyFiles } : {}) };
  RESOLVE_OPTIONS.set(rule, { policyFiles, options });
  return options;
}

function cachedBuild(
  held: Map<string, CachedService> | undefined,
  next: Map<string, CachedService>,
  state: ClusterState,
  service: ServiceState,
  activeRules: readonly RuleConfig[],
  cache: RouteCache,
  policyFiles: PolicyFiles | undefined,
): ServiceBuild {
  const entry = held?.get(service.id);
  if (entry) {
    if (entry.service !== service) {
      entry.json ??= JSON.stringify(entry.service);
      const json = JSON.stringify(service);
      if (json === entry.json) entry.service = service;
      else entry.json = undefined;
    }
    if (entry.service === service) {
      // Two services with one id (a hand-made snapshot): the second is resolved on its own.
      if (!next.has(service.id)) {
        next.set(service.id, entry);
        cache.reused++;
        return entry.result;
      }
    }
  }
  const result = buildService(state, service, activeRules, policyFiles);
  cache.resolved++;
  if (!next.has(service.id)) next.set(service.id, { service, result });
  return result;
}

export function buildRoutes(
  states: readonly ClusterState[],
  rules: readonly RuleConfig[] | undefined,
  options: { policyFiles?: PolicyFiles; cache?: RouteCache } = {},
): BuildResult {
  const diagnostics: Diagnostic[] = [];
  const skipped: SkippedService[] = [];
  let routes: Route[] = [];
  const activeRules = rules && rules.length > 0 ? rules : DEFAULT_RULES;
  const { policyFiles, cache } = options;
  cache?.begin(activeRules, policyFiles);

  for (const state of states) {
    const held = cache?.cluster(state);
    const next = new Map<string, CachedService>();
    for (const service of state.services) {
      const built = cache
        ? cachedBuild(held?.services, next, state, service, activeRules, cache, policyFiles)
        : buildService(state, service, activeRules, policyFiles);
      for (const r of built.routes) routes.push(r);
      for (const d of built.diagnostics) diagnostics.push(d);
      for (const s of built.skipped) skipped.push(s);
    }
    if (cache && held) cache.keep(state.cluster, held.context, next);
  }

  routes = mergeCanaries(routes, diagnostics);
  routes = settleConflicts(routes, diagnostics);
  routes.sort(compareRoutes);
  return { routes, diagnostics, skipped };
}

// ---------- canary groups ----------

/**
 * Services that opt in to one canary group (same cluster, same group name) share one route: the
 * oldest member's, with every member's backends in it, weighted by each member's weight, or all
 * alike (split by running replicas) when no member sets one. Only members with the same hosts and
 * path as the oldest, and the same way of splitting (all weighted or none), join; the others are
 * told why and keep their own route, which then loses the contested hosts like any newcomer
 * (settleConflicts). A service outside the group gains nothing: the merged route carries the
 * oldest member's age, so the hijack protection is unchanged for everyone else.
 */
function mergeCanaries(routes: Route[], diagnostics: Diagnostic[]): Route[] {
  const groups = new Map<string, Route[]>();
  for (const r of routes) {
    if (!r.canary) continue;
    const key = `${r.cluster}\u0000${r.canary.group}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const replaced = new Map<Route, Route | null>();
  for (const key of [...groups.keys()].sort()) {
    const members = [...(groups.get(key) ?? [])].sort(compareSeniority);
    const holder = members[0] as Route;
    const group = holder.canary?.group ?? '';
    const split = holder.canary?.split ?? 'replicas';
    const joined: Route[] = [holder];
    const where = (r: Route) => `${r.hosts.join(', ')}${r.path === '/' ? '' : ` path ${r.path}`}`;
    for (const r of members.slice(1)) {
      let problem: string | undefined;
      if (
        r.mode !== holder.mode ||
        r.path !== holder.path ||
        [...r.hosts].sort().join() !== [...holder.hosts].sort().join()
      ) {
        problem = `answers ${where(r)}, not ${where(holder)} as ${holder.service} (the group's oldest member) does`;
      } else if ((r.canary?.split ?? 'replicas') !== split) {
        problem =
          split === 'weight'
            ? `sets no weight, while ${holder.service} (the group's oldest member) does`
            : `sets a weight, while ${holder.service} (the group's oldest member) does not`;
      }
      if (problem !== undefined) {
        diagnostics.push({
          severity: 'error',
          code: 'canary-group',
          message: `service ${r.service} is in canary group ${group} but ${problem}; it does not join the group`,
          fix: 'give every member of a canary group the same hosts and path, and a weight on all of them or on none',
          cluster: r.cluster,
          service: r.service,
        });
        continue;
      }
      joined.push(r);
    }
    if (joined.length < 2) continue;
    const merged = weighted(joined, split);
    for (const r of joined.slice(1)) {
      replaced.set(r, null);
      const differs = sameSettings(r, holder) ? undefined : r.service;
      if (differs !== undefined) {
        diagnostics.push({
          severity: 'warning',
          code: 'canary-group',
          message: `service ${r.service} shares canary group ${group}'s route, which has the settings (policies, health check, balance) of ${holder.service}, the oldest member; its own differ and are not used`,
          fix: `give ${r.service} the same labels as ${holder.service}, or leave the group`,
          cluster: r.cluster,
          service: r.service,
        });
      }
    }
    replaced.set(holder, { ...holder, backends: merged.backends, canary: merged.canary });
  }
  if (replaced.size === 0) return routes;
  const out: Route[] = [];
  for (const r of routes) {
    const next = replaced.get(r);
    if (next === undefined) out.push(r);
    else if (next !== null) out.push(next);
  }
  return out;
}

/** What a member brings besides its backends: it must match the holder's for its labels to count. */
function sameSettings(a: Route, b: Route): boolean {
  const strip = ({ cluster, service, createdAt, rule, backends, canary, ...rest }: Route) => rest;
  return JSON.stringify(strip(a)) === JSON.stringify(strip(b));
}

/**
 * The group's backends with server weights: each member's weight spread over its tasks (exact
 * when every member's weight divides by its task count, else scaled to HAProxy's 1..256), or no
 * weights at all when split by replicas.
 */
function weighted(
  members: readonly Route[],
  split: CanaryShare['split'],
): { backends: Backend[]; canary: CanaryShare } {
  const group = members[0]?.canary?.group ?? '';
  const perServer = members.map((m) => (m.canary?.members[0]?.weight ?? 1) / Math.max(1, m.backends.length));
  const exact = split === 'weight' && perServer.every((w) => Number.isInteger(w));
  const top = Math.max(...perServer);
  const serverWeight = (i: number): number =>
    exact ? (perServer[i] as number) : Math.max(1, Math.round(((perServer[i] as number) * 256) / top));
  const backends: Backend[] = [];
  const totals: number[] = [];
  members.forEach((m, i) => {
    const w = split === 'weight' ? serverWeight(i) : 1;
    totals.push(w * m.backends.length);
    for (const b of m.backends) backends.push(split === 'weight' ? { ...b, weight: w } : b);
  });
  const sum = totals.reduce((a, b) => a + b, 0) || 1;
  return {
    backends,
    canary: {
      group,
      split,
      members: members.map((m, i) => {
        const weight = m.canary?.members[0]?.weight;
        return {
          service: m.service,
          ...(weight !== undefined ? { weight } : {}),
          backends: m.backends.length,
          share: Math.round(((totals[i] as number) * 100) / sum),
        };
      }),
    },
  };
}

// ---------- conflicts ----------

function who(r: Route): string {
  return `service ${r.service} (cluster ${r.cluster}, rule ${r.rule})`;
}

/** Claim of a route on hosts no route names, at a path: the default backend at `/`. */
const ANY_HOST = 'any host ';

/**
 * What a route answers: each claim can be held by one route only. A route answering hosts no
 * route names (a default backend, or a context root without hosts) claims its path there, so
 * `/app` and `/shop` without hosts, and a default backend at `/`, live side by side.
 */
function claims(r: Route): string[] {
  if (r.mode === 'tcp') return r.listenPort === undefined ? [] : [`tcp port ${r.listenPort}`];
  const out = r.hosts.map((h) => (r.sslPassthrough ? `tls ${h}` : `${h}${r.path}`));
  if (r.defaultBackend) out.push(r.path === '/' || r.sslPassthrough ? 'default backend' : `${ANY_HOST}${r.path}`);
  return out;
}

function describeClaim(claim: string): string {
  if (claim.startsWith('tls ')) return `TLS for ${claim.slice(4)} (passed through by one of them)`;
  if (claim.startsWith(ANY_HOST)) return `path ${claim.slice(ANY_HOST.length)} on hosts no route names`;
  return claim;
}

/**
 * Adds `route` under `key`: the route itself while it is the only one, a list from the second on
 * (no list per key when most keys have one route). True when `key` just got its second route.
 */
export function gather<K>(map: Map<K, Route | Route[]>, key: K, route: Route): boolean {
  const had = map.get(key);
  if (had === undefined) map.set(key, route);
  else if (Array.isArray(had)) had.push(route);
  else {
    map.set(key, [had, route]);
    return true;
  }
  return false;
}

function settleConflicts(routes: Route[], diagnostics: Diagnostic[]): Route[] {
  // A claim's holder, or its claimants when contested: no list per claim (10,000 services: 20,000 claims).
  const holders = new Map<string, Route | Route[]>();
  const hold = (claim: string, r: Route) => gather(holders, claim, r);
  // The bulk, `HOST/PATH` claims of HTTP routes, are first held by host (the route's own host
  // strings: no claim text is made per route); only a host several routes answer is looked at by
  // path. A host holds no `/`, so HOST + PATH splits one way only: the same claims.
  const byHost = new Map<string, Route | Route[]>();
  const shared: string[] = [];
  for (const r of routes) {
    if (r.mode === 'http' && !r.sslPassthrough) {
      for (const h of r.hosts) if (gather(byHost, h, r)) shared.push(h);
      if (r.defaultBackend) hold(r.path === '/' ? 'default backend' : `${ANY_HOST}${r.path}`, r);
    } else for (const c of claims(r)) hold(c, r);
  }
  for (const h of shared) for (const r of byHost.get(h) as Route[]) hold(`${h}${r.path}`, r);
  // A host passed through as TLS cannot also be terminated by the proxy for another route.
  const passthroughHosts = new Set(routes.filter((r) => r.mode === 'http' && r.sslPassthrough).flatMap((r) => r.hosts));
  for (const r of routes) {
    if (r.mode !== 'http' || r.sslPassthrough) continue;
    for (const h of r.hosts) if (passthroughHosts.has(h)) hold(`tls ${h}`, r);
  }

  const lostHosts = new Map<Route, Set<string>>();
  const lostDefault = new Set<Route>();
  const dropped = new Set<Route>();
  // Only contested claims do anything: sorted (for the order of the diagnostics) without the rest.
  const contested: string[] = [];
  // forEach, not for-of: no [claim, held] array per entry (this runs once per build, mostly unoptimized).
  holders.forEach((held, claim) => {
    if (Array.isArray(held)) contested.push(claim);
  });
  for (const claim of contested.sort()) {
    const list = holders.get(claim) as Route[];
    const sorted = [...list].sort(compareSeniority);
    const holder = sorted[0] as Route;
    const losers = sorted.slice(1);
    const what = describeClaim(claim);
    // One diagnostic per claimant, so each service's owner sees it under their service.
    diagnostics.push({
      severity: 'warning',
      code: 'route-conflict',
      message: `${what} is also claimed by ${losers.map(who).join(' and ')}; ${who(holder)} was first and keeps it`,
      fix: 'remove the claim from the newer service(s), or remove this one if they should have it',
      cluster: holder.cluster,
      service: holder.service,
    });
    for (const r of losers) {
      diagnostics.push({
        severity: 'error',
        code: 'route-conflict',
        message: `${what} already belongs to ${who(holder)}; ${who(r)} does not get it`,
        fix: 'give this service its own host or path, or remove the claim from the older service first',
        cluster: r.cluster,
        service: r.service,
      });
    }
    for (const r of losers) {
      if (claim === 'default backend' || claim.startsWith(ANY_HOST)) lostDefault.add(r);
      else if (claim.startsWith('tcp port ')) dropped.add(r);
      else {
        const host = claim.startsWith('tls ') ? claim.slice(4) : r.hosts.find((h) => claim === `${h}${r.path}`);
        if (host !== undefined) {
          const set = lostHosts.get(r) ?? new Set<string>();
          set.add(host);
          lostHosts.set(r, set);
        }
      }
    }
  }

  // Nothing lost (the usual case): every route as it is, without a look-up per route.
  if (dropped.size === 0 && lostHosts.size === 0 && lostDefault.size === 0) return routes;
  const out: Route[] = [];
  for (const r of routes) {
    if (dropped.has(r)) continue;
    const lost = lostHosts.get(r);
    if (!lost && !lostDefault.has(r)) {
      out.push(r);
      continue;
    }
    const hosts = r.hosts.filter((h) => !lost?.has(h));
    const defaultBackend = r.defaultBackend && !lostDefault.has(r);
    if (hosts.length === 0 && !defaultBackend) continue;
    // A redirect is only kept while its source host still belongs to the route.
    const redirects = r.redirects.filter((x) => {
      const from = parseRedirectSource(x.from);
      return from.ok && hosts.includes(from.value.host);
    });
    out.push({ ...r, hosts, defaultBackend, redirects });
  }
  return out;
}

/** Code-unit order: unlike localeCompare it does not change with the machine's locale. */
function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Oldest first; routes without a creation time count as newest. Ties: cluster, service, rule. */
function compareSeniority(a: Route, b: Route): number {
  const ta = a.createdAt ?? '\uffff';
  const tb = b.createdAt ?? '\uffff';
  return cmp(ta, tb) || compareOwners(a, b);
}

function compareOwners(a: Route, b: Route): number {
  return cmp(a.cluster, b.cluster) || cmp(a.service, b.service) || cmp(a.rule, b.rule);
}

/** Hosts, then the longest path first, then cluster, service and rule; TCP routes by listen port. */
export function compareRoutes(a: Route, b: Route): number {
  const ha = a.hosts[0] ?? '';
  const hb = b.hosts[0] ?? '';
  return (
    cmp(ha, hb) ||
    b.path.length - a.path.length ||
    cmp(a.path, b.path) ||
    (a.listenPort ?? 0) - (b.listenPort ?? 0) ||
    compareOwners(a, b) ||
    cmp(a.hosts.join(','), b.hosts.join(','))
  );
}
