/**
 * RouteSpec → Route: checks every field of a spec again with the field parsers (spec.ts), then
 * finds the backends (backends.ts).
 */
import type { ClusterState, ServiceState } from '../cluster/model.ts';
import type { Diagnostic } from '../diagnostics.ts';
import { parseIdentifier, quoteValue } from '../parse/fields.ts';
import { defaultMode, publishedBackends, taskBackends, vipBackends } from './backends.ts';
import type { SourcedSpec } from './labels.ts';
import { checkSpec, Problems, type SpecWhere } from './spec.ts';
import type { Backend, Route, RoutePolicies, RouteSpec } from './types.ts';

export { backendNames } from './backends.ts';
export { checkSpec, type SpecWhere } from './spec.ts';

/** interlock 1.x's default check interval. */
export const DEFAULT_HEALTH_CHECK_INTERVAL_MS = 5000;
/** Why a service with a route but nothing to route to is left out (not a problem to report). */
export const NO_RUNNING_TASKS = 'no running tasks';

export interface ResolveResult {
  route?: Route;
  diagnostics: Diagnostic[];
  /** Set when the service is left out for a reason that is not a problem (e.g. scaled to zero). */
  skipped?: string;
}

/**
 * Turns one rule's spec for one service into a route. A spec that does not check, or backends that
 * cannot be found, leave the service out with diagnostics; a service with no running task is left
 * out as `skipped` (scaled to zero is not a mistake).
 */
export function resolveRoute(
  input: SourcedSpec,
  rule: string,
  service: ServiceState,
  state: ClusterState,
  options: { allowBroadWildcards?: boolean } = {},
): ResolveResult {
  const where: SpecWhere = {
    cluster: state.cluster,
    service: service.name,
    rule,
    labels: input.labels,
    allowBroadWildcards: options.allowBroadWildcards ?? false,
  };
  const p = new Problems(where);
  if (!parseIdentifier(service.name).ok) {
    p.add(
      'service-invalid',
      undefined,
      `service name ${quoteValue(service.name)} cannot name a proxy backend`,
      'rename the service',
    );
    return { diagnostics: p.diagnostics };
  }
  const { spec, diagnostics } = checkSpec(input.spec, where);
  if (!spec) return { diagnostics };
  if (service.tasks.length === 0) return { diagnostics: [], skipped: NO_RUNNING_TASKS };

  const mode = defaultMode(spec, service);
  let backends: Backend[] | undefined;
  if (mode === 'vip') backends = vipBackends(spec, service, p);
  else if (mode === 'published') backends = publishedBackends(spec, service, state, p);
  else backends = taskBackends(spec, service, p);
  if (!backends) return { diagnostics: p.diagnostics };

  const path = spec.path ?? '/';
  // One fixed key order, optional keys in place, so a dumped route reads the same every time.
  const route: Route = {
    cluster: state.cluster,
    service: service.name,
    ...(service.createdAt ? { createdAt: service.createdAt } : {}),
    rule,
    mode: spec.mode ?? 'http',
    hosts: spec.hosts ?? [],
    path,
    stripPath: (spec.stripPath ?? false) && path !== '/',
    ...(spec.listenPort !== undefined ? { listenPort: spec.listenPort } : {}),
    backends,
    // ip hash is HAProxy's `balance source`; set it so a renderer cannot miss it.
    balance: spec.ipHash && spec.balance === undefined ? 'source' : (spec.balance ?? 'roundrobin'),
    ...(spec.healthCheck
      ? {
          healthCheck: {
            path: spec.healthCheck.path,
            intervalMs: spec.healthCheck.intervalMs ?? DEFAULT_HEALTH_CHECK_INTERVAL_MS,
          },
        }
      : {}),
    ...(spec.stickyCookie !== undefined ? { stickyCookie: spec.stickyCookie } : {}),
    ipHash: spec.ipHash ?? false,
    websocketPaths: spec.websocketPaths ?? [],
    sslOnly: spec.sslOnly ?? false,
    ...(spec.sslCert !== undefined ? { sslCert: spec.sslCert } : {}),
    ...(spec.sslKey !== undefined ? { sslKey: spec.sslKey } : {}),
    ...(spec.backendTls ? { backendTls: { verify: spec.backendTls.verify ?? false } } : {}),
    sslPassthrough: spec.sslPassthrough ?? false,
    redirects: spec.redirects ?? [],
    ...(spec.redirectCode !== undefined ? { redirectCode: spec.redirectCode } : {}),
    defaultBackend: spec.defaultBackend ?? false,
    rawBackendOptions: spec.rawBackendOptions ?? [],
    ...policiesOf(spec),
    ...(spec.acme ? { acme: true as const } : {}),
  };
  return { route, diagnostics: [] };
}

/** The route's traffic policies, when it has any: absent otherwise, so routes without stay as they were. */
function policiesOf(spec: RouteSpec): { policies?: RoutePolicies } {
  const p: RoutePolicies = {};
  if (spec.denyIps && spec.denyIps.length > 0) p.denyIps = spec.denyIps;
  if (spec.allowIps && spec.allowIps.length > 0) p.allowIps = spec.allowIps;
  if (spec.rateLimit) p.rateLimit = { perSecond: spec.rateLimit.perSecond, burst: spec.rateLimit.burst ?? 0 };
  if (spec.requestHeaders && spec.requestHeaders.length > 0) p.requestHeaders = spec.requestHeaders;
  if (spec.responseHeaders && spec.responseHeaders.length > 0) p.responseHeaders = spec.responseHeaders;
  if (spec.hsts) p.hsts = spec.hsts;
  if (spec.requestId) p.requestId = true;
  if (spec.compress && spec.compress.length > 0) p.compress = spec.compress;
  return Object.keys(p).length > 0 ? { policies: p } : {};
}
