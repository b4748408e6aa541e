/**
 * Checking a RouteSpec from any rule (a label dialect or a custom rule in the user's config): its
 * shape, every value with the field parsers (normalizing them), and the combinations that cannot
 * work. The shape's type is RouteSpec's exactly (checked at compile time), and each field has its
 * checker in one record whose type needs all of them: a field added to RouteSpec and forgotten in
 * the schema or in the checks does not compile, so none can be dropped silently.
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
import {
  hstsHeader,
  MAX_COMPRESS_TYPES,
  parseBurst,
  parseCidr,
  parseGroupName,
  parseHeaderName,
  parseHeaderValue,
  parseHsts,
  parseMediaType,
  parsePolicyFileName,
  parseRatePerSecond,
  parseRealm,
  parseWeight,
} from '../parse/policy-fields.ts';
import type { SpecField } from './labels.ts';
import { BALANCE_ALGORITHMS, type HeaderRule, type Redirect, type RedirectCode, type RouteSpec } from './types.ts';

/** Whose spec is checked: for diagnostics (labels absent for custom rules). */
export interface SpecWhere {
  cluster: string;
  service: string;
  rule: string;
  labels: Partial<Record<SpecField, string>> | undefined;
  /** The rule accepts wildcards on a public suffix or a single label. */
  allowBroadWildcards?: boolean;
}

const headerRuleSchema = () =>
  z.strictObject({
    action: z.enum(['set', 'add', 'remove']),
    name: z.string(),
    value: z.string().optional(),
  });

const buildSpecSchema = () =>
  z.strictObject({
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
    // Any number passes the shape (a .js config is not type-checked); its checker says which are allowed.
    redirectCode: z.custom<RedirectCode>((v) => typeof v === 'number').optional(),
    defaultBackend: z.boolean().optional(),
    rawBackendOptions: z.array(z.string()).optional(),
    // Traffic policies (issue 14).
    allowIps: z.array(z.string()).optional(),
    denyIps: z.array(z.string()).optional(),
    rateLimit: z.strictObject({ perSecond: z.number(), burst: z.number().optional() }).optional(),
    requestHeaders: z.array(headerRuleSchema()).optional(),
    responseHeaders: z.array(headerRuleSchema()).optional(),
    hsts: z
      .strictObject({ maxAge: z.number(), includeSubDomains: z.boolean().optional(), preload: z.boolean().optional() })
      .optional(),
    requestId: z.boolean().optional(),
    compress: z.array(z.string()).optional(),
    basicAuth: z.strictObject({ usersFile: z.string(), realm: z.string().optional() }).optional(),
    errorPage: z.string().optional(),
    maintenance: z.boolean().optional(),
    canaryGroup: z.string().optional(),
    weight: z.number().optional(),
    acme: z.boolean().optional(),
  });

let builtSpecSchema: ReturnType<typeof buildSpecSchema> | undefined;

/**
 * The shape a custom rule must return; values are then checked one by one with the field parsers.
 * Built on first use: a spec that passes the hand-written check (plainSpec) never needs it
 * (start-up, issue 12). @internal Exported for the test that holds plainSpec to it.
 */
export function specSchema(): ReturnType<typeof buildSpecSchema> {
  builtSpecSchema ??= buildSpecSchema();
  return builtSpecSchema;
}

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

type SpecShape = z.infer<ReturnType<typeof buildSpecSchema>>;
type SpecKey = keyof SpecShape;
/** Checks (and normalizes) one field's value; undefined when it is wrong (then `p` says why). */
type FieldCheck<K extends SpecKey> = (
  value: NonNullable<SpecShape[K]>,
  p: Problems,
  where: SpecWhere,
) => RouteSpec[K] | undefined;
const same = <T>(value: T): T => value;
const BROAD_HOSTS = { broadWildcards: true };
const NARROW_HOSTS = { broadWildcards: false };

/** One checker per field, none optional: the order is the order diagnostics come in. */
const FIELD_CHECKS: { [K in SpecKey]-?: FieldCheck<K> } = {
  hosts: (hosts, p, where) => {
    const options = where.allowBroadWildcards ? BROAD_HOSTS : NARROW_HOSTS;
    // Once each, in order. A plain loop: this runs once per service (issue 12).
    const out: string[] = [];
    const seen = hosts.length > 16 ? new Set<string>() : undefined;
    for (let i = 0; i < hosts.length; i++) {
      const h = hosts[i] as string;
      const r = parseHostname(h, options);
      const host = r.ok ? r.value : check<string>(p, 'hosts', `host ${i + 1}`, h, r);
      if (host === undefined || (seen ? seen.has(host) : out.includes(host))) continue;
      seen?.add(host);
      out.push(host);
    }
    return out;
  },
  port: (port, p) => check(p, 'port', 'port', String(port), parsePort(String(port))),
  listenPort: (port, p) => check(p, 'listenPort', 'listen port', String(port), parsePort(String(port))),
  network: (network, p) => check(p, 'network', 'network', network, parseNetworkName(network)),
  path: (path, p) => check(p, 'path', 'path', path, parsePath(path)),
  healthCheck: (hc, p) => {
    const path = check(p, 'healthCheck', 'health check path', hc.path, parsePath(hc.path));
    const ms = hc.intervalMs;
    const interval =
      ms === undefined ? undefined : check(p, 'healthCheck', 'health check interval', String(ms), checkIntervalMs(ms));
    if (path === undefined) return undefined;
    return interval === undefined ? { path } : { path, intervalMs: interval };
  },
  stickyCookie: (cookie, p) => check(p, 'stickyCookie', 'cookie name', cookie, parseCookieName(cookie)),
  websocketPaths: (paths, p) => {
    const out = paths.map((w) => check(p, 'websocketPaths', 'websocket path', w, parsePath(w)));
    return [...new Set(out.filter((w): w is string => w !== undefined))].sort();
  },
  sslCert: (cert, p) => check(p, 'sslCert', 'certificate', cert, parseFileName(cert)),
  sslKey: (key, p) => check(p, 'sslKey', 'key', key, parseFileName(key)),
  redirects: (redirects, p) => {
    const out: Redirect[] = [];
    for (const r of redirects) {
      const from = check(p, 'redirects', 'redirect source', r.from, parseRedirectSource(r.from));
      const to = check(p, 'redirects', 'redirect target', r.to, parseRedirectTarget(r.to));
      if (from !== undefined && to !== undefined) out.push({ from: from.text, to });
    }
    return out;
  },
  redirectCode: (code, p) => {
    const raw = String(code);
    return check(p, 'redirectCode', 'redirect status', raw, parseRedirectCode(raw));
  },
  rawBackendOptions: (options, p) => {
    const lines = options.map((o) => check(p, 'rawBackendOptions', 'backend option', o, parseRawDirective(o)));
    return lines.filter((o): o is string => o !== undefined);
  },
  // Enums and booleans: the schema has checked them already.
  backendMode: same,
  stripPath: same,
  mode: same,
  balance: same,
  ipHash: same,
  sslOnly: same,
  sslPassthrough: same,
  defaultBackend: same,
  acme: same,
  backendTls: (tls) => ({ verify: tls.verify ?? false }),
  // Traffic policies (issue 14).
  allowIps: (cidrs, p) => checkCidrs(p, 'allowIps', cidrs),
  denyIps: (cidrs, p) => checkCidrs(p, 'denyIps', cidrs),
  rateLimit: (limit, p) => {
    const rate = check(
      p,
      'rateLimit',
      'rate limit',
      String(limit.perSecond),
      parseRatePerSecond(String(limit.perSecond)),
    );
    const rawBurst = String(limit.burst ?? 0);
    const burst = check(p, 'rateLimit', 'burst', rawBurst, parseBurst(rawBurst));
    return rate === undefined || burst === undefined ? undefined : { perSecond: rate, burst };
  },
  requestHeaders: (rules, p) => checkHeaderRules(p, 'requestHeaders', rules),
  responseHeaders: (rules, p) => checkHeaderRules(p, 'responseHeaders', rules),
  hsts: (h, p) => {
    const raw = hstsHeader(h);
    return check(p, 'hsts', 'HSTS', raw, Number.isInteger(h.maxAge) ? parseHsts(raw) : parseHsts(String(h.maxAge)));
  },
  requestId: same,
  compress: (types, p) => {
    const out = types.map((t) => check(p, 'compress', 'content type', t, parseMediaType(t)));
    if (types.length > MAX_COMPRESS_TYPES) {
      p.add('route-invalid', 'compress', `at most ${MAX_COMPRESS_TYPES} content types can be compressed`, 'list fewer');
    }
    return [...new Set(out.filter((t): t is string => t !== undefined))];
  },
  // The files are read at the edge and looked up when the route is resolved (resolve.ts).
  basicAuth: (auth, p) => {
    const file = check(p, 'basicAuth', 'users file', auth.usersFile, parsePolicyFileName(auth.usersFile));
    const realm =
      auth.realm === undefined ? undefined : check(p, 'basicAuth', 'realm', auth.realm, parseRealm(auth.realm));
    if (file === undefined || (auth.realm !== undefined && realm === undefined)) return undefined;
    return realm === undefined ? { usersFile: file } : { usersFile: file, realm };
  },
  errorPage: (file, p) => check(p, 'errorPage', 'error page file', file, parsePolicyFileName(file)),
  maintenance: same,
  canaryGroup: (group, p) => check(p, 'canaryGroup', 'canary group', group, parseGroupName(group)),
  weight: (weight, p) => check(p, 'weight', 'weight', String(weight), parseWeight(String(weight))),
};

/** FIELD_CHECKS' keys, in order: listed once, not per spec. */
const FIELD_KEYS = Object.keys(FIELD_CHECKS) as SpecKey[];

function checkCidrs(p: Problems, field: 'allowIps' | 'denyIps', cidrs: string[]): string[] {
  const out = cidrs.map((c) => check(p, field, 'address or network', c, parseCidr(c)));
  if (cidrs.length === 0 && field === 'allowIps') {
    p.add(
      'route-invalid',
      field,
      'an empty allow list would refuse every client',
      `remove ${p.setter(field)} or list networks`,
    );
  }
  return [...new Set(out.filter((c): c is string => c !== undefined))];
}

function checkHeaderRules(p: Problems, field: 'requestHeaders' | 'responseHeaders', rules: HeaderRule[]): HeaderRule[] {
  const out: HeaderRule[] = [];
  for (const r of rules) {
    const name = check(p, field, 'header name', r.name, parseHeaderName(r.name));
    if (name === undefined) continue;
    if (r.action === 'remove') {
      if (r.value !== undefined) p.add('route-invalid', field, `removing ${name} takes no value`, 'drop the value');
      else out.push({ action: 'remove', name });
      continue;
    }
    if (r.action === 'add' && field === 'requestHeaders') {
      // Nginx's proxy_set_header replaces the client's header: it cannot send a second one.
      p.add(
        'route-invalid',
        field,
        `request header ${name} cannot be added, only set (Nginx cannot send a second request header of a name)`,
        'set it instead (replacing what the client sent)',
      );
      continue;
    }
    if (r.value === undefined) {
      p.add('route-invalid', field, `header ${name} needs a value`, `write ${name}: VALUE`);
      continue;
    }
    const value = check(p, field, `header ${name} value`, r.value, parseHeaderValue(r.value));
    if (value !== undefined) out.push({ action: r.action, name, value });
  }
  // Only `add` may repeat a name: a set or remove next to another rule of the same header would
  // depend on the proxy's order of evaluation.
  const seen = new Map<string, HeaderRule['action'][]>();
  for (const r of out) seen.set(r.name.toLowerCase(), [...(seen.get(r.name.toLowerCase()) ?? []), r.action]);
  for (const [name, actions] of seen) {
    if (actions.length > 1 && actions.some((a) => a !== 'add')) {
      p.add(
        'route-invalid',
        field,
        `header ${name} is changed twice (${actions.join(', ')})`,
        'keep one rule per header',
      );
    }
  }
  return out;
}

/**
 * zod compiles a parser for an object shape on its first parse (`new Function`): worth it over
 * the thousands of specs of a large cluster, not for the few of a small one, where it was ~10 ms
 * of a demo render (start-up, issue 12). The first specs of a process are parsed without it; the
 * result is the same either way.
 */
const SPEC_PARSES_INTERPRETED = 64;
const INTERPRETED = { jitless: true } as const;
let specParses = 0;

/**
 * Checks a spec from any rule: its shape, every value with the field parsers (normalizing them),
 * and the combinations that cannot work. Returns the normalized spec, or diagnostics.
 */
export function checkSpec(raw: unknown, where: SpecWhere): { spec?: RouteSpec; diagnostics: Diagnostic[] } {
  const p = new Problems(where);
  // A spec from a label dialect (or a plain one from a custom rule) passes the hand-written shape
  // check and is read as it is; anything else goes through the schema, which says what is wrong.
  if (plainSpec(raw)) return checkFields(raw, p, where);
  specParses += 1;
  const shape = specSchema().safeParse(raw, specParses > SPEC_PARSES_INTERPRETED ? undefined : INTERPRETED);
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
  return checkFields(shape.data, p, where);
}

function checkFields(s: SpecShape, p: Problems, where: SpecWhere): { spec?: RouteSpec; diagnostics: Diagnostic[] } {
  const out: RouteSpec = {};
  // Every field goes through its checker, in FIELD_CHECKS' order; FIELD_CHECKS' type needs one
  // for each field, so a field added to RouteSpec and not checked here does not compile.
  for (const key of FIELD_KEYS) {
    const value = s[key];
    if (value === undefined) continue;
    const checked = (FIELD_CHECKS[key] as FieldCheck<typeof key>)(value as never, p, where);
    if (checked !== undefined) (out as Record<SpecKey, unknown>)[key] = checked;
  }
  if (p.failed) return { diagnostics: p.diagnostics };

  checkCombinations(out, p);
  return p.failed ? { diagnostics: p.diagnostics } : { spec: out, diagnostics: [] };
}

// ---------- the shape, checked by hand ----------

type Check = (v: unknown) => boolean;
const isString: Check = (v) => typeof v === 'string';
const isBoolean: Check = (v) => typeof v === 'boolean';
const isNumber: Check = (v) => typeof v === 'number' && Number.isFinite(v);
const oneOf =
  (values: readonly string[]): Check =>
  (v) =>
    typeof v === 'string' && values.includes(v);
const listOf =
  (item: Check): Check =>
  (v) => {
    if (!Array.isArray(v)) return false;
    for (let i = 0; i < v.length; i++) if (!item(v[i])) return false;
    return true;
  };
/** A plain object with only the given fields, each absent, undefined, or passing its check. */
function strict(fields: Record<string, Check>, required: readonly string[] = []): Check {
  return (v) => {
    if (!isPlainObject(v)) return false;
    for (const key in v) {
      const value = v[key];
      const check = Object.hasOwn(fields, key) ? fields[key] : undefined;
      if (check === undefined || (value !== undefined && !check(value))) return false;
    }
    for (const key of required) if (v[key] === undefined) return false;
    return true;
  };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

const strings = listOf(isString);
const headerRules = listOf(
  strict({ action: oneOf(['set', 'add', 'remove']), name: isString, value: isString }, ['name', 'action']),
);

/**
 * specSchema as hand-written checks, one per field (the same record type, so none is missing).
 * May be stricter than the schema, never looser: a spec that fails here goes through the schema.
 * Why: the schema copies every spec, and the label dialects give one per service (issue 12).
 */
const SHAPE: { [K in SpecKey]-?: Check } = {
  hosts: strings,
  port: isNumber,
  network: isString,
  backendMode: oneOf(['task', 'vip', 'published']),
  path: isString,
  stripPath: isBoolean,
  mode: oneOf(['http', 'tcp']),
  listenPort: isNumber,
  balance: oneOf(BALANCE_ALGORITHMS),
  healthCheck: strict({ path: isString, intervalMs: isNumber }, ['path']),
  stickyCookie: isString,
  ipHash: isBoolean,
  websocketPaths: strings,
  sslOnly: isBoolean,
  sslCert: isString,
  sslKey: isString,
  backendTls: strict({ verify: isBoolean }),
  sslPassthrough: isBoolean,
  redirects: listOf(strict({ from: isString, to: isString }, ['from', 'to'])),
  redirectCode: isNumber,
  defaultBackend: isBoolean,
  rawBackendOptions: strings,
  allowIps: strings,
  denyIps: strings,
  rateLimit: strict({ perSecond: isNumber, burst: isNumber }, ['perSecond']),
  requestHeaders: headerRules,
  responseHeaders: headerRules,
  hsts: strict({ maxAge: isNumber, includeSubDomains: isBoolean, preload: isBoolean }, ['maxAge']),
  requestId: isBoolean,
  compress: strings,
  basicAuth: strict({ usersFile: isString, realm: isString }, ['usersFile']),
  errorPage: isString,
  maintenance: isBoolean,
  canaryGroup: isString,
  weight: isNumber,
  acme: isBoolean,
};
/** @internal Exported for test/routes/spec-shape.test.ts: never looser than specSchema. */
export const plainSpec = strict(SHAPE) as (v: unknown) => v is SpecShape;

/** The traffic-policy fields: HTTP routes terminated by the proxy only. */
export const POLICY_FIELDS = [
  'allowIps',
  'denyIps',
  'rateLimit',
  'requestHeaders',
  'responseHeaders',
  'hsts',
  'requestId',
  'compress',
  'basicAuth',
  'errorPage',
  'maintenance',
] as const satisfies readonly SpecField[];

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
      ...POLICY_FIELDS,
      'acme',
      'canaryGroup',
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
    const bad = used([
      'path',
      'stripPath',
      'stickyCookie',
      'websocketPaths',
      'redirects',
      'sslCert',
      'sslKey',
      ...POLICY_FIELDS,
      'canaryGroup',
    ]);
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
  if (s.weight !== undefined && s.canaryGroup === undefined) {
    p.add(
      'route-invalid',
      'weight',
      'a weight only applies inside a canary group',
      `set ${p.setter('canaryGroup')} too, or remove ${p.setter('weight')}`,
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
  const redirects = s.redirects;
  if (redirects === undefined || redirects.length === 0) return;
  const hosts = new Set(s.hosts ?? []);
  const sources = new Set<string>();
  for (const r of redirects) {
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

/**
 * Compile-time: the spec schema's type and RouteSpec are the same type (same fields, same value
 * types, same optionality), so a field added to one and not the other does not compile.
 */
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : never;
const specMatchesRouteSpec: Same<SpecShape, RouteSpec> = true;
void specMatchesRouteSpec;
