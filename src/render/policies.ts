/**
 * Traffic policies (issue 14) as proxy directives, for both renderers: the lines of an HAProxy
 * backend and of an Nginx location. Pure. Every value here was parsed (routes/spec.ts): CIDRs,
 * numbers, header names (letters, digits, `-`) and header values (printable ASCII without `"`,
 * `\` and `$`), so quoting is all that is left; each proxy's escaping is done here.
 *
 * Where the proxies differ (see README, Traffic policies):
 * - rate limit: HAProxy counts a client's requests over the last second (a stick-table) and
 *   answers 429 above rate + burst; Nginx's leaky bucket (limit_req, nodelay) lets a burst through
 *   at once and then the rate. Both answer 429, and a client within the rate never gets one.
 * - compression: Nginx always compresses text/html once gzip is on; HAProxy only the listed types.
 * - X-Request-Id: HAProxy sends a UUID, Nginx 32 hex digits ($request_id).
 */
import { hstsHeader, parseCidr } from '../parse/policy-fields.ts';
import type { HeaderRule, Route, RoutePolicies } from '../routes/types.ts';
import { RenderError } from './types.ts';

/** A header value as an HAProxy double-quoted log-format string: `%` is doubled (it starts a sample). */
function haproxyValue(value: string): string {
  return `"${value.replaceAll('%', '%%')}"`;
}

/** A header value as an Nginx double-quoted string (`"`, `\` and `$` cannot occur: the parser refused them). */
function nginxValue(value: string): string {
  return `"${value}"`;
}

/** The route's policies when it has any and the proxy terminates its HTTP. */
export function policiesOf(route: Route): RoutePolicies | undefined {
  return route.mode === 'http' && !route.sslPassthrough ? route.policies : undefined;
}

/** The HSTS value an SSL-only route sends: its own when set, else `fallback`. */
export function hstsValue(route: Route, fallback: string): string {
  const hsts = route.policies?.hsts;
  return hsts ? hstsHeader(hsts) : fallback;
}

// ---------- HAProxy ----------

/** The files a route's policies need next to the proxy config (`<base>.<route>.<kind>`), by kind. */
export interface PolicyFileNames {
  /** The error / maintenance page (HTML). */
  page?: string;
  /** Nginx: the htpasswd file; HAProxy: the userlist's name. */
  users?: string;
}

/** The page a route in maintenance answers with when it names no error page of its own. */
export const BUILT_IN_MAINTENANCE_PAGE = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Down for maintenance</title></head>
<body><h1>Down for maintenance</h1><p>This service is being worked on. Please try again later.</p></body>
</html>
`;

/** The page file of a route, when it needs one: its error page, else the built-in one in maintenance. */
export function pageContent(route: Route): string | undefined {
  const p = policiesOf(route);
  if (!p) return undefined;
  return p.errorPage?.content ?? (p.maintenance ? BUILT_IN_MAINTENANCE_PAGE : undefined);
}

/** The statuses an error page answers: those the proxy itself gives when a backend fails. */
export const ERROR_PAGE_STATUSES = [502, 503, 504] as const;

const PAGE_TYPE = '"text/html; charset=utf-8"';

/** The `user` lines of an HAProxy userlist (hashes are `[./A-Za-z0-9$=]`, plain words outside quotes). */
export function haproxyUserLines(route: Route): string[] {
  return (policiesOf(route)?.basicAuth?.users ?? []).map((u) => `user ${u.name} password ${u.hash}`);
}

/** An Nginx htpasswd file of the route's users. */
export function htpasswdContent(route: Route): string | undefined {
  const users = policiesOf(route)?.basicAuth?.users;
  return users ? users.map((u) => `${u.name}:${u.hash}\n`).join('') : undefined;
}

function haproxyHeader(phase: 'http-request' | 'http-after-response', r: HeaderRule): string {
  if (r.action === 'remove') return `${phase} del-header ${r.name}`;
  return `${phase} ${r.action}-header ${r.name} ${haproxyValue(r.value ?? '')}`;
}

/**
 * Lines of the route's HAProxy backend, in evaluation order: who may come in (deny list, allow
 * list, rate), then what is sent on. Response headers use `http-after-response`, so they are on
 * HAProxy's own answers too, as Nginx's `add_header ... always` is.
 */
export function haproxyPolicyLines(route: Route, files: PolicyFileNames = {}): string[] {
  const p = policiesOf(route);
  if (!p) return [];
  const out: string[] = [];
  if (p.rateLimit) {
    out.push('stick-table type ipv6 size 100k expire 10s store http_req_rate(1s)');
  }
  // Maintenance answers every request first, as Nginx's `return` (rewrite phase, before access).
  if (p.maintenance && files.page) {
    out.push(`http-request return status 503 content-type ${PAGE_TYPE} file ${files.page} hdr Cache-Control no-store`);
  }
  if (p.errorPage && files.page) {
    for (const status of ERROR_PAGE_STATUSES) {
      out.push(`http-error status ${status} content-type ${PAGE_TYPE} file ${files.page} hdr Cache-Control no-store`);
    }
  }
  if (p.denyIps) out.push(`http-request deny deny_status 403 if { src ${p.denyIps.join(' ')} }`);
  if (p.allowIps) out.push(`http-request deny deny_status 403 unless { src ${p.allowIps.join(' ')} }`);
  if (p.rateLimit) {
    out.push('http-request track-sc0 src');
    out.push(
      `http-request deny deny_status 429 if { sc_http_req_rate(0) gt ${p.rateLimit.perSecond + p.rateLimit.burst} }`,
    );
  }
  if (p.basicAuth && files.users) {
    out.push(`http-request auth realm "${p.basicAuth.realm}" unless { http_auth(${files.users}) }`);
  }
  for (const r of p.requestHeaders ?? []) out.push(haproxyHeader('http-request', r));
  if (p.requestId) out.push('http-request set-header X-Request-Id %[uuid()]');
  for (const r of p.responseHeaders ?? []) out.push(haproxyHeader('http-after-response', r));
  // An SSL-only route sends its HSTS with the redirect block already.
  if (p.hsts && !route.sslOnly) {
    out.push(
      `http-after-response set-header Strict-Transport-Security ${haproxyValue(hstsHeader(p.hsts))} if { ssl_fc }`,
    );
  }
  if (p.compress) {
    out.push('compression algo gzip');
    out.push(`compression type ${p.compress.join(' ')}`);
  }
  return out;
}

// ---------- Nginx ----------

/** The limit_req zone of a route, declared once in the http block. */
export function nginxRateZoneName(upstream: string): string {
  return `interlock_rate_${upstream}`;
}

/** The `limit_req_zone` arguments of a route with a rate limit, or undefined. */
export function nginxRateZone(route: Route, upstream: string): string | undefined {
  const rate = policiesOf(route)?.rateLimit;
  return rate ? `$binary_remote_addr zone=${nginxRateZoneName(upstream)}:1m rate=${rate.perSecond}r/s` : undefined;
}

/** What every location sends (the http block's proxy_set_header lines), repeated where a location sets its own. */
const BASE_REQUEST_HEADERS = [
  'proxy_set_header Host $http_host;',
  'proxy_set_header X-Real-IP $remote_addr;',
  'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
  'proxy_set_header X-Forwarded-Proto $scheme;',
  'proxy_set_header Connection "";',
];

export interface NginxPolicyContext {
  upstream: string;
  /** The location sets the proxy headers already (websocket): do not repeat them. */
  websocket: boolean;
  /** The server is the TLS one: HSTS goes there only. */
  https: boolean;
  /** The absolute paths of the route's files next to the config (page, htpasswd). */
  files?: PolicyFileNames;
}

/** The URI of a route's page inside its server: an internal location serves the file. */
export function nginxPageUri(upstream: string): string {
  return `/.interlock-page/${upstream}.html`;
}

/** Lines of one Nginx location of the route (each ends with `;`), or an empty list. */
export function nginxPolicyLines(route: Route, ctx: NginxPolicyContext): string[] {
  const p = policiesOf(route);
  if (!p) return [];
  const out: string[] = [];
  const page = ctx.files?.page;
  // `return` runs in the rewrite phase, before allow lists, rate limits and auth.
  if (p.maintenance && page) out.push('return 503;');
  if (p.maintenance && page) out.push(`error_page 503 ${nginxPageUri(ctx.upstream)};`);
  if (p.errorPage && page && !p.maintenance) {
    out.push(`error_page ${ERROR_PAGE_STATUSES.join(' ')} ${nginxPageUri(ctx.upstream)};`);
  }
  for (const cidr of p.denyIps ?? []) out.push(`deny ${cidr};`);
  for (const cidr of p.allowIps ?? []) out.push(`allow ${cidr};`);
  if (p.allowIps) out.push('deny all;');
  if (p.rateLimit) {
    out.push(`limit_req zone=${nginxRateZoneName(ctx.upstream)} burst=${p.rateLimit.burst} nodelay;`);
    out.push('limit_req_status 429;');
  }
  if (p.basicAuth && ctx.files?.users) {
    out.push(`auth_basic "${p.basicAuth.realm}";`);
    out.push(`auth_basic_user_file ${ctx.files.users};`);
  }
  const request: string[] = [];
  for (const r of p.requestHeaders ?? []) {
    // An empty value is how Nginx leaves a request header out.
    request.push(`proxy_set_header ${r.name} ${r.action === 'remove' ? '""' : nginxValue(r.value ?? '')};`);
  }
  if (p.requestId) request.push('proxy_set_header X-Request-Id $request_id;');
  // A location's own proxy_set_header drops every inherited one: repeat them (a websocket location has).
  if (request.length > 0 && !ctx.websocket) out.push(...BASE_REQUEST_HEADERS);
  out.push(...request);
  for (const r of p.responseHeaders ?? []) {
    if (r.action !== 'add') out.push(`proxy_hide_header ${r.name};`);
    if (r.action !== 'remove') out.push(`add_header ${r.name} ${nginxValue(r.value ?? '')} always;`);
  }
  if (p.hsts && !route.sslOnly && ctx.https) {
    out.push(`add_header Strict-Transport-Security ${nginxValue(hstsHeader(p.hsts))} always;`);
  }
  if (p.compress) {
    out.push('gzip on;');
    out.push('gzip_proxied any;');
    out.push('gzip_vary on;');
    // Nginx compresses text/html whenever gzip is on, and warns when it is listed.
    const types = p.compress.filter((t) => t !== 'text/html');
    if (types.length > 0) out.push(`gzip_types ${types.join(' ')};`);
  }
  return out;
}

// ---------- where the proxies differ ----------

/**
 * Warnings for `validate`: the policies of these routes that HAProxy and Nginx cannot carry out
 * the same way (README, Traffic policies). One per service and policy, whatever the outputs.
 */
export function policyDifferences(
  routes: readonly Route[],
  kinds: ReadonlySet<string>,
): Array<{ cluster: string; service: string; code: string; message: string; fix: string }> {
  const out: Array<{ cluster: string; service: string; code: string; message: string; fix: string }> = [];
  const seen = new Set<string>();
  const push = (r: Route, what: string, message: string, fix: string) => {
    const key = `${r.cluster}/${r.service}/${what}`;
    if (seen.has(key)) return;
    seen.add(key);
    out.push({ cluster: r.cluster, service: r.service, code: 'policy-differs', message, fix });
  };
  for (const r of routes) {
    const p = policiesOf(r);
    if (!p) continue;
    if (p.rateLimit) {
      const { perSecond, burst } = p.rateLimit;
      push(
        r,
        'rate',
        `rate limit ${perSecond}/s with burst ${burst}: HAProxy answers 429 above ${perSecond + burst} requests in any second (refused ones count too); Nginx lets ${burst + 1} through at once, then one every ${Math.round(1000 / perSecond)} ms`,
        'both answer 429 and never refuse a client within the rate; choose the burst with both counts in mind (README, Traffic policies)',
      );
    }
    if (p.compress && !p.compress.includes('text/html') && kinds.has('nginx')) {
      push(
        r,
        'compress',
        'Nginx also compresses text/html, which the compression list leaves out (HAProxy does not)',
        'add text/html to the list to make both proxies the same',
      );
    }
    if (p.requestId && kinds.has('haproxy') && kinds.has('nginx')) {
      push(
        r,
        'request-id',
        'X-Request-Id is a UUID from HAProxy and 32 hex digits from Nginx',
        'treat the id as an opaque string in the application',
      );
    }
  }
  return out;
}

// ---------- listener options ----------

/** The trusted networks of a listener's PROXY protocol option, normalized, space separated. */
export function trustedSources(trusted: readonly string[], what: string): string {
  return trusted
    .map((t) => {
      const r = parseCidr(t);
      if (!r.ok) throw new RenderError(`${what} ${JSON.stringify(t)}: ${r.error}`);
      return r.value;
    })
    .join(' ');
}

/**
 * What `validate` lists besides problems: the services in maintenance (every request answered
 * 503 with their page) and how each canary group splits its traffic. One per service.
 */
export function policyNotices(
  routes: readonly Route[],
): Array<{ cluster: string; service: string; code: string; message: string; fix: string }> {
  const out: Array<{ cluster: string; service: string; code: string; message: string; fix: string }> = [];
  const seen = new Set<string>();
  for (const r of routes) {
    const key = `${r.cluster}/${r.service}`;
    if (seen.has(key)) continue;
    if (policiesOf(r)?.maintenance) {
      seen.add(key);
      out.push({
        cluster: r.cluster,
        service: r.service,
        code: 'maintenance',
        message: `in maintenance: ${r.hosts.join(', ')}${r.path === '/' ? '' : r.path} answer${r.hosts.length === 1 ? 's' : ''} 503 with ${r.policies?.errorPage ? `the page ${r.policies.errorPage.file}` : 'the built-in maintenance page'}; the route is kept`,
        fix: 'remove the maintenance label (or set it to false) to serve again',
      });
    }
    if (r.canary && r.canary.members.length > 1) {
      seen.add(key);
      const split = r.canary.members
        .map(
          (m) =>
            `${m.service} ${m.share} % (${m.backends} task${m.backends === 1 ? '' : 's'}${m.weight !== undefined ? `, weight ${m.weight}` : ''})`,
        )
        .join(', ');
      out.push({
        cluster: r.cluster,
        service: r.service,
        code: 'canary-group',
        message: `canary group ${r.canary.group} shares ${r.hosts.join(', ')}${r.path === '/' ? '' : r.path} by ${r.canary.split === 'weight' ? 'weight' : 'running replicas'}: ${split}`,
        fix: 'change the weights (or replicas) to move traffic; remove the canary_group label from a member to take it out',
      });
    }
  }
  return out;
}
