/**
 * Checking a RouteSpec from any rule (a label dialect or a custom rule in the user's config): its
 * shape, every value with the field parsers (normalizing them), and the combinations that cannot
 * work. The shape's keys are tied to RouteSpec's at compile time, so a field added to one and not
 * the other does not compile.
 */
import { z } from 'zod';
import type { Diagnostic } from '../diagnostics.ts';
import {
  checkIntervalMs,
  type FieldResult,
  isUnderPath,
  parseCookieName,
  parseFileName,
  parseHostname,
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
import type { SpecField } from './labels.ts';
import { BALANCE_ALGORITHMS, type RouteSpec } from './types.ts';

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
  acme: z.boolean().optional(),
});

export class Problems {
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
    'acme',
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
      'acme',
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

/** Compile-time: the spec schema and RouteSpec name the same fields. */
type SameKeys<A, B> = [Exclude<keyof A, keyof B>, Exclude<keyof B, keyof A>] extends [never, never] ? true : never;
const specMatchesRouteSpec: SameKeys<z.infer<typeof specSchema>, RouteSpec> = true;
void specMatchesRouteSpec;
