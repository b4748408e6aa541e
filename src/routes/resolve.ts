/**
 * RouteSpec → Route: checks every field of a spec again with the field parsers (whoever produced
 * it: a label dialect or a custom rule in the user's config), then finds the backends.
 *
 * Backends, by mode:
 * - `task`: each running task's address on the route's network, at `port`.
 * - `vip`: the service's virtual IP on the network, at `port` (one backend; no stickiness).
 * - `published`: each task's host-mode published port on its node's address; failing that, the
 *   ingress-published port on every ready node (or once on the cluster's `nodeAddress` override).
 * Default mode: `task` when a network is named or the service is on exactly one network;
 * `published` for a Swarm service on no network and for a container that publishes ports. A
 * missing or ambiguous port or network leaves the service out with a diagnostic: no guessing.
 */
import { z } from 'zod';
import type { ClusterState, ServiceState, TaskState } from '../cluster/model.ts';
import type { Diagnostic } from '../diagnostics.ts';
import {
  checkIntervalMs,
  type FieldResult,
  isUnderPath,
  parseAddress,
  parseCookieName,
  parseFileName,
  parseHostname,
  parseIdentifier,
  parseNetworkName,
  parsePath,
  parsePort,
  parseRawDirective,
  parseRedirectCode,
  parseRedirectSource,
  parseRedirectTarget,
  printable,
  quoteValue,
} from '../parse/fields.ts';
import type { SourcedSpec, SpecField } from './labels.ts';
import { BALANCE_ALGORITHMS, type Backend, type Route, type RouteSpec } from './types.ts';

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

/** Whose spec is checked: for diagnostics (labels absent for custom rules). */
export interface SpecWhere {
  cluster: string;
  service: string;
  rule: string;
  labels: Partial<Record<SpecField, string>> | undefined;
  /** The rule accepts wildcards on a public suffix or a single label. */
  allowBroadWildcards?: boolean;
}

// The shape a custom rule must return; values are then checked one by one with the field parsers.
const specSchema = z.strictObject({
  hosts: z.array(z.string()).optional(),
  port: z.number().optional(),
  network: z.string().optional(),
  backendMode: z.enum(['task', 'vip', 'published']).optional(),
  path: z.string().optional(),
  stripPath: z.boolean().optional(),
  mode: z.enum(['http', 'tcp']).optional(),
  listenPort: z.number().optional(),
  balance: z.enum(BALANCE_ALGORITHMS).optional(),
  healthCheck: z.strictObject({ path: z.string(), intervalMs: z.number().optional() }).optional(),
  stickyCookie: z.string().optional(),
  ipHash: z.boolean().optional(),
  websocketPaths: z.array(z.string()).optional(),
  sslOnly: z.boolean().optional(),
  sslCert: z.string().optional(),
  sslKey: z.string().optional(),
  backendTls: z.strictObject({ verify: z.boolean().optional() }).optional(),
  sslPassthrough: z.boolean().optional(),
  redirects: z.array(z.strictObject({ from: z.string(), to: z.string() })).optional(),
  redirectCode: z.number().optional(),
  defaultBackend: z.boolean().optional(),
  rawBackendOptions: z.array(z.string()).optional(),
});

class Problems {
  readonly diagnostics: Diagnostic[] = [];
  private readonly where: SpecWhere;
  constructor(where: SpecWhere) {
    this.where = where;
  }

  label(field: SpecField): string | undefined {
    return this.where.labels?.[field];
  }

  /** The thing to change, for a fix text: the label, or the custom rule's field. */
  setter(field: SpecField): string {
    const label = this.label(field);
    return label ? `label ${label}` : `\`${field}\` in rule ${this.where.rule}`;
  }

  add(code: string, field: SpecField | undefined, message: string, fix?: string): void {
    const label = field ? this.label(field) : undefined;
    const fromRule = this.where.labels ? '' : `rule ${this.where.rule}: `;
    this.diagnostics.push({
      severity: 'error',
      code,
      message: `${fromRule}${message}; the service is left out`,
      ...(fix ? { fix } : {}),
      cluster: this.where.cluster,
      service: this.where.service,
      ...(label ? { label } : {}),
    });
  }

  get failed(): boolean {
    return this.diagnostics.length > 0;
  }
}

function check<T>(p: Problems, field: SpecField, what: string, raw: string, r: FieldResult<T>): T | undefined {
  if (r.ok) return r.value;
  p.add('route-invalid', field, `${what} ${quoteValue(raw)}: ${r.error}`, r.fix);
  return undefined;
}

/**
 * Checks a spec from any rule: its shape, every value with the field parsers (normalizing them),
 * and the combinations that cannot work. Returns the normalized spec, or diagnostics.
 */
export function checkSpec(raw: unknown, where: SpecWhere): { spec?: RouteSpec; diagnostics: Diagnostic[] } {
  const p = new Problems(where);
  const shape = specSchema.safeParse(raw);
  if (!shape.success) {
    for (const issue of shape.error.issues.slice(0, 5)) {
      const at = issue.path.map((k) => (typeof k === 'number' ? `[${k}]` : `.${String(k)}`)).join('');
      p.add(
        'route-invalid',
        undefined,
        printable(`returned a route spec with ${at ? `\`${at.replace(/^\./, '')}\` ` : ''}wrong: ${issue.message}`),
        'return a RouteSpec (see the RouteSpec type) or null',
      );
    }
    return { diagnostics: p.diagnostics };
  }
  const s = shape.data;
  const out: RouteSpec = {};

  if (s.hosts !== undefined) {
    const broadWildcards = where.allowBroadWildcards ?? false;
    const hosts = s.hosts.map((h, i) => check(p, 'hosts', `host ${i + 1}`, h, parseHostname(h, { broadWildcards })));
    out.hosts = [...new Set(hosts.filter((h): h is string => h !== undefined))];
  }
  if (s.port !== undefined) {
    const port = check(p, 'port', 'port', String(s.port), parsePort(String(s.port)));
    if (port !== undefined) out.port = port;
  }
  if (s.listenPort !== undefined) {
    const port = check(p, 'listenPort', 'listen port', String(s.listenPort), parsePort(String(s.listenPort)));
    if (port !== undefined) out.listenPort = port;
  }
  if (s.network !== undefined) {
    const network = check(p, 'network', 'network', s.network, parseNetworkName(s.network));
    if (network !== undefined) out.network = network;
  }
  if (s.path !== undefined) {
    const path = check(p, 'path', 'path', s.path, parsePath(s.path));
    if (path !== undefined) out.path = path;
  }
  if (s.healthCheck !== undefined) {
    const path = check(p, 'healthCheck', 'health check path', s.healthCheck.path, parsePath(s.healthCheck.path));
    const ms = s.healthCheck.intervalMs;
    const interval =
      ms === undefined ? undefined : check(p, 'healthCheck', 'health check interval', String(ms), checkIntervalMs(ms));
    if (path !== undefined) out.healthCheck = interval === undefined ? { path } : { path, intervalMs: interval };
  }
  if (s.stickyCookie !== undefined) {
    const cookie = check(p, 'stickyCookie', 'cookie name', s.stickyCookie, parseCookieName(s.stickyCookie));
    if (cookie !== undefined) out.stickyCookie = cookie;
  }
  if (s.websocketPaths !== undefined) {
    const paths = s.websocketPaths.map((w) => check(p, 'websocketPaths', 'websocket path', w, parsePath(w)));
    out.websocketPaths = [...new Set(paths.filter((w): w is string => w !== undefined))].sort();
  }
  if (s.sslCert !== undefined) {
    const cert = check(p, 'sslCert', 'certificate', s.sslCert, parseFileName(s.sslCert));
    if (cert !== undefined) out.sslCert = cert;
  }
  if (s.sslKey !== undefined) {
    const key = check(p, 'sslKey', 'key', s.sslKey, parseFileName(s.sslKey));
    if (key !== undefined) out.sslKey = key;
  }
  if (s.redirects !== undefined) {
    out.redirects = [];
    for (const r of s.redirects) {
      const from = check(p, 'redirects', 'redirect source', r.from, parseRedirectSource(r.from));
      const to = check(p, 'redirects', 'redirect target', r.to, parseRedirectTarget(r.to));
      if (from !== undefined && to !== undefined) out.redirects.push({ from: from.text, to });
    }
  }
  if (s.redirectCode !== undefined) {
    const raw = String(s.redirectCode);
    const code = check(p, 'redirectCode', 'redirect status', raw, parseRedirectCode(raw));
    if (code !== undefined) out.redirectCode = code;
  }
  if (s.rawBackendOptions !== undefined) {
    const lines = s.rawBackendOptions.map((o) =>
      check(p, 'rawBackendOptions', 'backend option', o, parseRawDirective(o)),
    );
    out.rawBackendOptions = lines.filter((o): o is string => o !== undefined);
  }
  for (const key of [
    'backendMode',
    'stripPath',
    'mode',
    'balance',
    'ipHash',
    'sslOnly',
    'sslPassthrough',
    'defaultBackend',
  ] as const) {
    if (s[key] !== undefined) Object.assign(out, { [key]: s[key] });
  }
  if (s.backendTls !== undefined) out.backendTls = { verify: s.backendTls.verify ?? false };
  if (p.failed) return { diagnostics: p.diagnostics };

  checkCombinations(out, p);
  return p.failed ? { diagnostics: p.diagnostics } : { spec: out, diagnostics: [] };
}

/** Settings that each parse but cannot work together. */
function checkCombinations(s: RouteSpec, p: Problems): void {
  const path = s.path ?? '/';
  // The fields among `fields` that are set (path counts when it is not `/`).
  const used = (fields: readonly SpecField[]): SpecField[] =>
    fields.filter((field) => {
      if (field === 'path') return path !== '/';
      const v = s[field];
      return v !== undefined && v !== false && !(Array.isArray(v) && v.length === 0);
    });
  if (s.mode === 'tcp') {
    if (s.listenPort === undefined) {
      p.add('route-invalid', 'listenPort', 'a tcp route needs a listen port', `set ${p.setter('listenPort')}`);
    }
    const httpOnly = used([
      'hosts',
      'path',
      'stripPath',
      'stickyCookie',
      'websocketPaths',
      'sslOnly',
      'sslPassthrough',
      'redirects',
      'defaultBackend',
    ]);
    if (httpOnly.length > 0) {
      p.add(
        'route-invalid',
        httpOnly[0],
        `a tcp route cannot use ${httpOnly.join(', ')}`,
        'remove them or make it an http route',
      );
    }
    return;
  }
  if (s.listenPort !== undefined) {
    p.add('route-invalid', 'listenPort', 'a listen port is for tcp routes', 'remove it or set `mode: "tcp"`');
  }
  if ((s.hosts ?? []).length === 0 && !s.defaultBackend) {
    p.add('route-invalid', 'hosts', 'an http route needs at least one host', `set ${p.setter('hosts')}`);
  }
  if (s.sslPassthrough) {
    const bad = used(['path', 'stripPath', 'stickyCookie', 'websocketPaths', 'redirects', 'sslCert', 'sslKey']);
    if (bad.length > 0) {
      p.add(
        'route-invalid',
        'sslPassthrough',
        `with TLS passthrough the proxy never sees the request, so ${bad.join(', ')} cannot apply`,
        `remove them or remove ${p.setter('sslPassthrough')}`,
      );
    }
  }
  if (s.stickyCookie && s.ipHash) {
    p.add(
      'route-invalid',
      'ipHash',
      'sticky cookie and ip hash are two ways of pinning clients; pick one',
      `remove ${p.setter('ipHash')} or ${p.setter('stickyCookie')}`,
    );
  }
  if (s.stickyCookie && s.backendMode === 'vip') {
    p.add(
      'route-invalid',
      'stickyCookie',
      'sticky sessions need task addresses; through the service VIP every request may land on another task',
      `remove ${p.setter('stickyCookie')} or use task backends instead of ${p.setter('backendMode')}`,
    );
  }
  if (s.ipHash && s.balance !== undefined && s.balance !== 'source') {
    p.add(
      'route-invalid',
      'ipHash',
      `ip hash replaces the balance algorithm (${s.balance})`,
      `remove ${p.setter('balance')} or ${p.setter('ipHash')}`,
    );
  }
  if (s.sslKey && !s.sslCert) {
    p.add('route-invalid', 'sslKey', 'a key without a certificate', `set ${p.setter('sslCert')} too`);
  }
  for (const ws of s.websocketPaths ?? []) {
    if (!isUnderPath(ws, path)) {
      p.add(
        'route-invalid',
        'websocketPaths',
        `websocket path ${ws} is outside the route's path ${path}`,
        `use a path under ${path}, or route ${ws} with its own context root`,
      );
    }
  }
  const hosts = new Set(s.hosts ?? []);
  const sources = new Set<string>();
  for (const r of s.redirects ?? []) {
    const from = parseRedirectSource(r.from);
    if (from.ok && !hosts.has(from.value.host)) {
      // Otherwise a service could redirect, and so take over, a host that belongs to another.
      p.add(
        'route-invalid',
        'redirects',
        `redirect source ${r.from} is not one of the service's own hosts (${[...hosts].join(', ') || 'none'})`,
        `add ${from.ok ? from.value.host : 'the host'} to ${p.setter('hosts')} or drop the redirect`,
      );
    }
    if (sources.has(r.from)) p.add('route-invalid', 'redirects', `two redirects from ${r.from}`, 'keep one');
    sources.add(r.from);
  }
}

// ---------- backends ----------

type Mode = 'task' | 'vip' | 'published';

function firstAddress(task: TaskState, network: string): string | undefined {
  return task.addresses.find((a) => a.network === network)?.address;
}

/** `<service>-<slot>` or `<service>-<first 12 characters of the task id>`; unique within the route. */
export function backendNames(service: string, tasks: readonly TaskState[]): Map<TaskState, string> {
  const slots = new Map<number, number>();
  for (const t of tasks) if (t.slot !== undefined) slots.set(t.slot, (slots.get(t.slot) ?? 0) + 1);
  const names = new Map<TaskState, string>();
  for (const t of tasks) {
    const id = t.id.slice(0, 12);
    // During a start-first rolling update two running tasks share a slot.
    if (t.slot === undefined) names.set(t, `${service}-${id}`);
    else names.set(t, (slots.get(t.slot) ?? 0) > 1 ? `${service}-${t.slot}-${id}` : `${service}-${t.slot}`);
  }
  return names;
}

function networkFor(spec: RouteSpec, service: ServiceState, p: Problems, why: string): string | undefined {
  if (spec.network !== undefined) {
    const attached =
      service.networks.includes(spec.network) ||
      service.tasks.some((t) => firstAddress(t, spec.network ?? '') !== undefined);
    if (attached) return spec.network;
    p.add(
      'network-unknown',
      'network',
      `the service is not attached to network ${spec.network} (attached to: ${service.networks.join(', ') || 'none'})`,
      service.networks.length > 0
        ? `set ${p.setter('network')} to one of: ${service.networks.join(', ')}`
        : `attach the service to ${spec.network} (docker service update --network-add ${spec.network})`,
    );
    return undefined;
  }
  if (service.networks.length === 1) return service.networks[0];
  if (service.networks.length === 0) {
    p.add(
      'network-missing',
      'network',
      `${why}, and the service is on no network`,
      `attach the service to a network and set ${p.setter('network')}`,
    );
  } else {
    p.add(
      'network-ambiguous',
      'network',
      `the service is on ${service.networks.length} networks (${service.networks.join(', ')}) and no network is named`,
      `set ${p.setter('network')} to the one the proxy reaches it on`,
    );
  }
  return undefined;
}

function defaultMode(spec: RouteSpec, service: ServiceState): Mode | undefined {
  if (spec.backendMode) return spec.backendMode;
  if (spec.network !== undefined) return 'task';
  if (service.mode === 'container') {
    if (service.tasks.some((t) => t.hostPorts.length > 0)) return 'published';
    return 'task';
  }
  return service.networks.length === 0 ? 'published' : 'task';
}

function needPort(spec: RouteSpec, p: Problems): number | undefined {
  if (spec.port !== undefined) return spec.port;
  p.add(
    'port-missing',
    'port',
    'no port: Swarm does not say which port a service listens on',
    `set ${p.setter('port')} to the port the service listens on inside its tasks`,
  );
  return undefined;
}

function checked(p: Problems, backend: Backend): Backend | undefined {
  const address = parseAddress(backend.address);
  const name = parseIdentifier(backend.name);
  if (address.ok && name.ok) return { ...backend, address: address.value };
  p.add(
    'backend-invalid',
    undefined,
    `backend ${quoteValue(backend.name)} has an unusable address ${quoteValue(backend.address)}`,
    'check the snapshot: addresses come from the Docker API',
  );
  return undefined;
}

function taskBackends(spec: RouteSpec, service: ServiceState, p: Problems): Backend[] | undefined {
  const network = networkFor(spec, service, p, 'task backends need a network');
  const port = needPort(spec, p);
  if (network === undefined || port === undefined) return undefined;
  const names = backendNames(service.name, service.tasks);
  const out: Backend[] = [];
  for (const task of service.tasks) {
    const address = firstAddress(task, network);
    if (address === undefined) continue;
    const b = checked(p, { name: names.get(task) ?? task.id, address, port });
    if (b) out.push(b);
  }
  if (out.length === 0 && !p.failed) {
    p.add(
      'no-backends',
      'network',
      `no running task has an address on network ${network}`,
      `check that the tasks are attached to ${network}`,
    );
  }
  return p.failed ? undefined : out;
}

function vipBackends(spec: RouteSpec, service: ServiceState, p: Problems): Backend[] | undefined {
  if (service.mode === 'container') {
    p.add(
      'route-invalid',
      'backendMode',
      'a standalone container has no service VIP',
      `remove ${p.setter('backendMode')}`,
    );
    return undefined;
  }
  const network = networkFor(spec, service, p, 'VIP backends need a network');
  const port = needPort(spec, p);
  if (network === undefined || port === undefined) return undefined;
  const vip = service.vips.find((v) => v.network === network);
  if (!vip) {
    p.add(
      'no-backends',
      'backendMode',
      `the service has no VIP on network ${network} (endpoint mode dnsrr?)`,
      `use task backends or give the service a VIP (--endpoint-mode vip)`,
    );
    return undefined;
  }
  const b = checked(p, { name: `${service.name}-vip`, address: vip.address, port });
  return b ? [b] : undefined;
}

function publishedBackends(
  spec: RouteSpec,
  service: ServiceState,
  state: ClusterState,
  p: Problems,
): Backend[] | undefined {
  const hostTargets = service.tasks.flatMap((t) => t.hostPorts.filter((hp) => hp.protocol === 'tcp'));
  const ingress = service.ingressPorts.filter((ip) => ip.protocol === 'tcp');
  const published = [...hostTargets, ...ingress];
  let port = spec.port;
  if (port === undefined) {
    const targets = [...new Set(published.map((x) => x.target))].sort((a, b) => a - b);
    // One published target is not a guess: it is the only way in.
    if (targets.length === 1) port = targets[0];
    else if (targets.length === 0) {
      p.add(
        'port-not-published',
        'port',
        'the service is on no network and publishes no TCP port: there is no way to reach it',
        `attach it to a network and set ${p.setter('network')} and ${p.setter('port')}, or publish a port`,
      );
      return undefined;
    } else {
      p.add(
        'port-ambiguous',
        'port',
        `no port named and the service publishes ${targets.join(', ')}`,
        `set ${p.setter('port')} to one of: ${targets.join(', ')}`,
      );
      return undefined;
    }
  }
  const names = backendNames(service.name, service.tasks);
  const out: Backend[] = [];
  for (const task of service.tasks) {
    const hp = task.hostPorts.find((x) => x.target === port && x.protocol === 'tcp');
    if (!hp || task.nodeAddress === '') continue;
    const b = checked(p, { name: names.get(task) ?? task.id, address: task.nodeAddress, port: hp.published });
    if (b) out.push(b);
  }
  if (out.length > 0 || p.failed) return p.failed ? undefined : out;

  const mesh = ingress.find((x) => x.target === port);
  if (mesh) {
    if (state.nodeAddress !== undefined) {
      const b = checked(p, { name: `${service.name}-ingress`, address: state.nodeAddress, port: mesh.published });
      return b ? [b] : undefined;
    }
    for (const node of state.nodes) {
      if (!node.ready || node.address === '') continue;
      const b = checked(p, {
        name: `${service.name}-node-${node.id.slice(0, 12)}`,
        address: node.address,
        port: mesh.published,
      });
      if (b) out.push(b);
    }
    if (out.length === 0 && !p.failed) {
      p.add(
        'no-backends',
        'port',
        `port ${port} is published through the routing mesh but no node is ready`,
        'check `docker node ls`',
      );
    }
    return p.failed ? undefined : out;
  }
  // Docker's own notation, PUBLISHED:TARGET.
  const list = [...new Set(published.map((x) => `${x.published}:${x.target}/${x.mode}`))].join(', ');
  p.add(
    'port-not-published',
    'port',
    `port ${port} is not published${list ? ` (published: ${list})` : ''} and no network is named`,
    `publish it (docker service update --publish-add mode=host,target=${port},published=PORT) or set ${p.setter('network')} to reach the tasks directly`,
  );
  return undefined;
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
  };
  return { route, diagnostics: [] };
}
