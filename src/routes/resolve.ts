/**
 * RouteSpec → Route: checks every field of a spec again with the field parsers (spec.ts), then
 * finds the backends (backends.ts).
 */
import type { ClusterState, ServiceState } from '../cluster/model.ts';
import type { Diagnostic } from '../diagnostics.ts';
import { parseIdentifier, quoteValue } from '../parse/fields.ts';
import { parseHtpasswd, parsePage } from '../parse/policy-fields.ts';
import { defaultMode, publishedBackends, taskBackends, vipBackends } from './backends.ts';
import type { SourcedSpec } from './labels.ts';
import { checkSpec, Problems, type SpecWhere } from './spec.ts';
import type { Backend, BasicAuth, PolicyFiles, PolicyPage, Route, RoutePolicies, RouteSpec } from './types.ts';

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
  options: { allowBroadWildcards?: boolean; policyFiles?: PolicyFiles } = {},
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
  const files = readPolicyFiles(spec, p, options.policyFiles);
  if (!files) return { diagnostics: p.diagnostics };
  if (service.tasks.length === 0) return { diagnostics: [], skipped: NO_RUNNING_TASKS };

  const mode = defaultMode(spec, service);
  let backends: Backend[] | undefined;
  if (mode === 'vip') backends = vipBackends(spec, service, p);
  else if (mode === 'published') backends = publishedBackends(spec, service, state, p);
  else backends = taskBackends(spec, service, p);
  if (!backends) return { diagnostics: p.diagnostics };

  const path = spec.path ?? '/';
  // One fixed key order, optional keys in place, so a dumped route reads the same every time.
  // Assigned one by one rather than spread from small objects: this runs once per service.
  const route = { cluster: state.cluster, service: service.name } as Route;
  if (service.createdAt) route.createdAt = service.createdAt;
  route.rule = rule;
  route.mode = spec.mode ?? 'http';
  route.hosts = spec.hosts ?? [];
  route.path = path;
  route.stripPath = (spec.stripPath ?? false) && path !== '/';
  if (spec.listenPort !== undefined) route.listenPort = spec.listenPort;
  route.backends = backends;
  // ip hash is HAProxy's `balance source`; set it so a renderer cannot miss it.
  route.balance = spec.ipHash && spec.balance === undefined ? 'source' : (spec.balance ?? 'roundrobin');
  if (spec.healthCheck) {
    route.healthCheck = {
      path: spec.healthCheck.path,
      intervalMs: spec.healthCheck.intervalMs ?? DEFAULT_HEALTH_CHECK_INTERVAL_MS,
    };
  }
  if (spec.stickyCookie !== undefined) route.stickyCookie = spec.stickyCookie;
  route.ipHash = spec.ipHash ?? false;
  route.websocketPaths = spec.websocketPaths ?? [];
  route.sslOnly = spec.sslOnly ?? false;
  if (spec.sslCert !== undefined) route.sslCert = spec.sslCert;
  if (spec.sslKey !== undefined) route.sslKey = spec.sslKey;
  if (spec.backendTls) route.backendTls = { verify: spec.backendTls.verify ?? false };
  route.sslPassthrough = spec.sslPassthrough ?? false;
  route.redirects = spec.redirects ?? [];
  if (spec.redirectCode !== undefined) route.redirectCode = spec.redirectCode;
  route.defaultBackend = spec.defaultBackend ?? false;
  route.rawBackendOptions = spec.rawBackendOptions ?? [];
  const policies = policiesOf(spec, files);
  if (policies) route.policies = policies;
  if (spec.acme) route.acme = true;
  if (spec.canaryGroup !== undefined) {
    const member: NonNullable<Route['canary']>['members'][number] = {
      service: service.name,
      ...(spec.weight !== undefined ? { weight: spec.weight } : {}),
      backends: backends.length,
      share: 100,
    };
    route.canary = {
      group: spec.canaryGroup,
      split: spec.weight !== undefined ? 'weight' : 'replicas',
      members: [member],
    };
  }
  return { route, diagnostics: [] };
}

/** The built-in realm of basic auth. */
export const DEFAULT_REALM = 'Restricted';

/**
 * The files the spec names (users, error page), from the policyFiles folder read at the edge, each
 * parsed. Undefined when one is missing or wrong: then `p` names the label and the fix.
 */
function readPolicyFiles(
  spec: RouteSpec,
  p: Problems,
  folder: PolicyFiles | undefined,
): { basicAuth?: BasicAuth; errorPage?: PolicyPage } | undefined {
  const out: { basicAuth?: BasicAuth; errorPage?: PolicyPage } = {};
  const text = (field: 'basicAuth' | 'errorPage', name: string, what: string): string | undefined => {
    if (!folder) {
      p.add(
        'policy-file',
        field,
        `the ${what} ${name} cannot be read: the config has no policyFiles folder`,
        'set `policyFiles` in the config to the folder holding it (e.g. /run/secrets for Docker secrets)',
      );
      return undefined;
    }
    const found = folder.files.get(name);
    if (found === undefined) {
      p.add(
        'policy-file',
        field,
        `the ${what} ${name} is not in the policyFiles folder ${folder.dir}`,
        `put it there (as a Docker secret: docker service update --secret-add ${name} <interlock service>), or correct ${p.setter(field)}`,
      );
      return undefined;
    }
    if (typeof found !== 'string') {
      p.add('policy-file', field, `the ${what} ${folder.dir}/${name} cannot be read: ${found.error}`, 'fix the file');
      return undefined;
    }
    return found;
  };
  if (spec.basicAuth) {
    const { usersFile } = spec.basicAuth;
    const content = text('basicAuth', usersFile, 'basic auth users file');
    if (content !== undefined) {
      const users = parseHtpasswd(content);
      if (users.ok)
        out.basicAuth = { file: usersFile, realm: spec.basicAuth.realm ?? DEFAULT_REALM, users: users.value };
      else p.add('policy-file', 'basicAuth', `basic auth users file ${usersFile}: ${users.error}`, users.fix);
    }
  }
  if (spec.errorPage !== undefined) {
    const content = text('errorPage', spec.errorPage, 'error page');
    if (content !== undefined) {
      const page = parsePage(content);
      if (page.ok) out.errorPage = { file: spec.errorPage, content: page.value };
      else p.add('policy-file', 'errorPage', `error page ${spec.errorPage}: ${page.error}`, page.fix);
    }
  }
  return p.failed ? undefined : out;
}

/** The route's traffic policies, when it has any: absent otherwise, so routes without stay as they were. */
function policiesOf(
  spec: RouteSpec,
  files: { basicAuth?: BasicAuth; errorPage?: PolicyPage },
): RoutePolicies | undefined {
  const p: RoutePolicies = {};
  if (spec.denyIps && spec.denyIps.length > 0) p.denyIps = spec.denyIps;
  if (spec.allowIps && spec.allowIps.length > 0) p.allowIps = spec.allowIps;
  if (spec.rateLimit) p.rateLimit = { perSecond: spec.rateLimit.perSecond, burst: spec.rateLimit.burst ?? 0 };
  if (spec.requestHeaders && spec.requestHeaders.length > 0) p.requestHeaders = spec.requestHeaders;
  if (spec.responseHeaders && spec.responseHeaders.length > 0) p.responseHeaders = spec.responseHeaders;
  if (spec.hsts) p.hsts = spec.hsts;
  if (spec.requestId) p.requestId = true;
  if (spec.compress && spec.compress.length > 0) p.compress = spec.compress;
  if (files.basicAuth) p.basicAuth = files.basicAuth;
  if (files.errorPage) p.errorPage = files.errorPage;
  if (spec.maintenance) p.maintenance = true;
  return Object.keys(p).length > 0 ? p : undefined;
}
