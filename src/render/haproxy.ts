/**
 * Routes → HAProxy configuration plus its host map. Pure: the same routes and output give the same
 * bytes, in any input order.
 *
 * Routing scales with a map, not with ACLs: the frontend has a fixed number of rules whatever the
 * number of hosts, and every host and path lives in `<name>.hosts.<hash>.map` next to the config. Each
 * lookup is `map_beg`, which HAProxy indexes in a prefix tree and answers with the longest
 * matching key, so a request costs O(key length) with 10,000 routes as with one.
 *
 * Map keys (one file, several namespaces that no lookup of another kind can reach):
 * - `host/path/` → backend: exact hosts and aliases. The lookup is `host + path + "/"`, so the
 *   trailing `/` keeps `/api` from matching `/apix` and longest-prefix gives longest-path-first.
 *   A host without a `/` route gets `host/` → the 503 backend, so a known host never falls
 *   through to a wildcard (as in Nginx, where the host picks the server before the path).
 * - `*.suffix/path/` → backend: wildcards. One lookup per distinct wildcard depth present, deepest
 *   (longest suffix) first, on the request host's last labels; the host must have more labels
 *   than the suffix, so `*.example.com` matches `a.example.com` and `a.b.example.com`, not
 *   `example.com`.
 * - `/path/` → backend: routes that also answer requests for no known host (`defaultBackend`).
 * - `http://host/`, `https://host/` → `CODE:TARGET`, the redirect status and target URL
 *   (`302:https://new.example.com`). A lookup string of a route starts with the Host header cut at
 *   its first `:`, so it never holds `:` before its first `/`, and no route lookup can reach these
 *   keys (nor they a route key). HAProxy needs the status as a constant, so there are two rules
 *   per status in use (at most five statuses), whatever the number of redirects.
 * - `sni:host/`, `sni:*.suffix/` → backend: TLS passthrough, looked up on the SNI name.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { haproxyCrtListFile, haproxyMapFile, MAP_HASH_LENGTH, policyFileBase } from '../config/paths.ts';
import type { HaproxyOutput } from '../config/schema.ts';
import { DEFAULT_REDIRECT_CODE, type RedirectCode, type Route } from '../routes/types.ts';
import { haproxyAccessLogLines } from './access-log.ts';
import { HAPROXY_FAST, VIEW_SOURCE, type ViewSource } from './fast-sections.ts';
import { renderTemplate } from './mustache.ts';
import {
  haproxyPolicyLines,
  haproxyUserLines,
  hstsValue,
  type PolicyFileNames,
  pageContent,
  trustedSources,
} from './policies.ts';
import { updateText } from './text-hash.ts';
import {
  ACME_CHALLENGE_PATH,
  type AcmeRender,
  certificatePath,
  compareStrings,
  flattened,
  GENERATED_NOTICE,
  haproxyWord,
  hostPort,
  listenAddress,
  type NamedRoute,
  nameRoutes,
  RenderError,
  type RenderedFile,
  redirectSource,
  wildcardDepth,
} from './types.ts';

/** Answers 503 for requests no route claims. */
export const NO_ROUTE_BACKEND = 'interlock_no_route';
/** Sends HTTP-01 validation requests to the controller's ACME challenge responder. */
export const ACME_BACKEND = 'interlock_acme';
/** With TLS passthrough: hands TLS that is not passed through to the terminating frontend. */
export const TLS_TERMINATE_BACKEND = 'interlock_tls_terminate';
const HSTS = 'max-age=31536000';
const WEBSOCKET_TUNNEL_TIMEOUT = '1h';

// ---------- the view: what templates/haproxy.cfg.mustache receives ----------

export interface HaproxyServerView {
  name: string;
  /** `address:port`, IPv6 in brackets. */
  address: string;
  /** Everything after the address: `check inter 5000ms cookie web-1 ssl verify none`; may be empty. */
  params: string;
}

export interface HaproxyBackendView {
  name: string;
  mode: 'http' | 'tcp';
  /** `cluster local, service web, rule interlock`: for a comment. */
  about: string;
  balance: string;
  /**
   * `consistent` for hashing algorithms (`source`): the map-based default is static, and a
   * static backend takes no servers through the runtime API (`add server` refuses it).
   */
  hashType: false | 'consistent';
  /** HTTP health check: `http-check send` arguments and the expected status range. */
  healthCheck: false | { send: string; expectStatus: string };
  /**
   * Cookie stickiness on the application's own cookie (`cookie NAME prefix`): HAProxy prefixes the
   * value the server sets with the server's `cookie` name (`web-1~abc`), routes on that prefix and
   * strips it before the request reaches the server, which sees its own `abc`. No cookie of its
   * own. Each server line needs its `cookie <name>`; the runtime API's `add server` refuses
   * that keyword, so servers of sticky backends cannot be added at run time.
   */
  cookie: false | { name: string };
  /** `timeout tunnel` for websocket routes. */
  tunnelTimeout: false | string;
  /** SSL-only route: plain HTTP is redirected here, HSTS is sent over TLS. */
  sslOnly: false | { location: string; hsts: string };
  /** Prefix stripping with `http-request replace-path <regex> <replacement>`. */
  stripPath: false | { regex: string; replacement: string };
  /** Raw backend lines, only present when the config opted in; single checked lines. */
  rawOptions: string[];
  servers: HaproxyServerView[];
  /** Traffic policy lines (render/policies.ts); empty for a route without policies. */
  policyLines: string[];
}

export interface HaproxyView {
  notice: string;
  summary: string;
  /** Map file name, relative to the config (resolved through `default-path config`). */
  mapFile: string;
  maxconn: number;
  /** Stats socket path with `expose-fd listeners`, or false. */
  masterSocket: false | string;
  /** HTTPS: look for the separate key of `NAME.crt` at `NAME.key` (`ssl-load-extra-del-ext`). */
  sslLoadExtraDelExt: boolean;
  noRouteBackend: string;
  http: {
    /** `bind` arguments, one line each. */
    binds: string[];
    /** True when an HTTPS listener feeds this frontend. */
    https: boolean;
    /** Routing rules (`http-request ...`), in order; their count does not grow with hosts. */
    rules: string[];
    /** PROXY protocol on the plain HTTP listener: the trusted sources and the port, or false. */
    expectProxy: false | { sources: string; port: number };
    /** The access log (output option `accessLog`): log target, captures and log-format lines; or false. */
    accessLog: false | string[];
  };
  /** The TLS listener when some routes are passed through on SNI. */
  sni:
    | false
    | { bind: string; rules: string[]; defaultBackend: string; terminateBackend: string; terminateAddress: string };
  stats: false | { bind: string; uri: string };
  tcp: Array<{ name: string; bind: string; backend: string }>;
  backends: HaproxyBackendView[];
  /** Explanations for routes that cannot be served by this output, one comment line each. */
  notes: string[];
  /** Basic-auth users of the routes that have them: `userlist` sections ({ name, about, users[] }). */
  userlists: Array<{ name: string; about: string; users: string[] }>;
  /** With an `acme` config: HTTP-01 requests go to the controller's responder. Absent otherwise. */
  acme?: { backend: string; path: string; server: string };
}

export interface HaproxyRenderOptions {
  /** Template text: templates/haproxy.cfg.mustache (loaded at the edge) or an override. */
  template: string;
  /** With an `acme` config: the responder and the hosts' ACME certificates. */
  acme?: AcmeRender;
}

// ---------- certificates ----------

/**
 * Where HAProxy 2.6 looks for the key of a certificate file that holds none: `NAME.key` for
 * `NAME.crt` (the global `ssl-load-extra-del-ext` is set), else `<file>.key`. 2.6 has no way to
 * name a key file (no `key` in crt-lists, no `crt-store`), so another key name cannot be loaded.
 */
export function haproxyKeyFileFor(cert: string): string {
  return cert.endsWith('.crt') ? `${cert.slice(0, -'.crt'.length)}.key` : `${cert}.key`;
}

/** True when HAProxy 2.6 finds the route's key: in the certificate file, or by its name. */
export function haproxyLoadsKey(cert: string, key: string | undefined): boolean {
  return key === undefined || key === cert || key === haproxyKeyFileFor(cert);
}

/**
 * The crt-list next to the config, named after its content (`haproxy.cfg` →
 * `haproxy.<12 hex>.crt-list`), so it switches with the config that names it, like the map.
 */
export function crtListFileName(file: string, content: string): string {
  const hash = updateText(createHash('sha256'), content).digest('hex').slice(0, MAP_HASH_LENGTH);
  const name = path.basename(haproxyCrtListFile(file, hash));
  if (!/^[A-Za-z0-9._-]+$/.test(name)) {
    throw new RenderError(
      `the HAProxy crt-list name ${JSON.stringify(name)} (from output file ${JSON.stringify(file)}) may hold only letters, digits, \`.\`, \`_\` and \`-\``,
    );
  }
  return name;
}

/** A crt-list line cannot quote: a path must be one plain word. */
function crtListWord(value: string, what: string): string {
  if (/^[A-Za-z0-9_.,:@+=~/*-]+$/.test(value)) return value;
  throw new RenderError(
    `${what} ${JSON.stringify(value)} cannot go into an HAProxy crt-list, which has no quoting: use a path of letters, digits and \`_ . , : @ + = ~ / -\``,
  );
}

/**
 * The crt-list: which certificate each host gets. A host gets the certificate of its first route
 * (canonical order) that names one (`ssl_cert`); without one, the default certificate (the first
 * `crt` of the bind line) when `https.defaultCert` is set, else `<certDir>/<host>.pem`, as in
 * the Nginx output. Each line carries its hosts as SNI filters. The directory itself is not
 * loaded: one unusable file in it would take every route of the output down.
 */
function certificateList(
  routes: readonly NamedRoute[],
  https: NonNullable<HaproxyOutput['https']>,
  notes: string[],
  acme: AcmeRender | undefined,
): { content: string; entries: number } {
  const certOf = new Map<string, string | null>();
  for (const { route: r } of routes) {
    for (const h of r.hosts) {
      if (r.sslCert === undefined || certOf.get(h)) continue;
      if (haproxyLoadsKey(r.sslCert, r.sslKey)) {
        certOf.set(h, r.sslCert);
      } else if (certOf.get(h) === undefined) {
        certOf.set(h, null);
        notes.push(
          `certificate ${r.sslCert} of ${r.cluster}/${r.service} is not loaded for ${h}: HAProxy 2.6 reads its separate key only from ${haproxyKeyFileFor(r.sslCert)}, not ${r.sslKey}`,
        );
      }
    }
  }
  const hostsOf = new Map<string, string[]>();
  for (const { route: r } of routes) {
    for (const h of r.hosts) {
      const own = certOf.get(h);
      if (own === null) continue;
      // An ACME host without a certificate yet gets the default certificate, never <host>.pem.
      const issued = own === undefined ? acme?.certificates.get(h) : undefined;
      if (issued === null) continue;
      const cert = own ?? issued ?? (https.defaultCert ? undefined : `${h}.pem`);
      if (cert === undefined) continue;
      const file = crtListWord(certificatePath(https.certDir, cert), 'TLS certificate');
      const hosts = hostsOf.get(file);
      if (!hosts) hostsOf.set(file, [h]);
      else if (!hosts.includes(h)) hosts.push(h);
    }
  }
  const lines = [...hostsOf.entries()]
    .sort((a, b) => compareStrings(a[0], b[0]))
    .map(([file, hosts]) => `${file} ${hosts.sort().join(' ')}\n`);
  return {
    content: [
      `# ${GENERATED_NOTICE}\n`,
      '# Read by the https bind of the HAProxy config next to it: certificate file, then the SNI names it serves.\n',
      ...lines,
    ].join(''),
    entries: lines.length,
  };
}

// ---------- helpers ----------

/** A path prefix as a PCRE: only `.` and `+` of the accepted path characters are special. */
function pathRegex(p: string): string {
  return p.replace(/[.+]/g, (c) => `[${c}]`);
}

function pathKey(p: string): string {
  return p === '/' ? '/' : `${p}/`;
}

/** The map's name carries its content hash, so a config and the map it names always change together. */
function mapFileName(file: string, map: string): string {
  const hash = updateText(createHash('sha256'), map).digest('hex').slice(0, MAP_HASH_LENGTH);
  const name = path.basename(haproxyMapFile(file, hash));
  // It is written inside map_beg(...), where `,` `)` and spaces would end the argument.
  if (!/^[A-Za-z0-9._-]+$/.test(name)) {
    throw new RenderError(
      `the HAProxy map file name ${JSON.stringify(name)} (from output file ${JSON.stringify(file)}) may hold only letters, digits, \`.\`, \`_\` and \`-\``,
    );
  }
  return name;
}

function depthsDescending(depths: Set<number>): number[] {
  return [...depths].sort((a, b) => b - a);
}

function wildcardRules(
  prefix: string,
  hostVar: string,
  keyPrefix: string,
  keySuffix: string,
  depths: readonly number[],
  map: string,
): string[] {
  const rules: string[] = [];
  for (const m of depths) {
    // The host needs a label left of the suffix: field(-(m+1)) is that label, empty when absent.
    const cond = `if !{ var(txn.backend) -m found } { var(${hostVar}),field(-${m + 1},.) -m len 1: }`;
    rules.push(
      `${prefix} set-var-fmt(txn.route_key) ${keyPrefix}*.%[var(${hostVar}),field(-1,.,${m})]${keySuffix} ${cond}`,
      `${prefix} set-var(txn.backend) var(txn.route_key),map_beg(${map}) ${cond}`,
    );
  }
  return rules;
}

function healthCheckView(route: Route, checkPath: string): HaproxyBackendView['healthCheck'] {
  // Name a host for virtual-host backends; a wildcard names none, so that check is HTTP/1.0.
  const host = route.hosts.find((h) => !h.startsWith('*.'));
  return {
    send: host ? `meth GET uri ${checkPath} ver HTTP/1.1 hdr Host ${host}` : `meth GET uri ${checkPath} ver HTTP/1.0`,
    expectStatus: '200-399',
  };
}

/**
 * A backend as the template sees it. Fields are getters over the route, so a 10,000-backend view
 * keeps 10,000 small objects rather than every string of the file twice; the strings are made
 * while the template reads them and die young.
 */
class BackendView implements HaproxyBackendView {
  readonly #named: NamedRoute;
  readonly #httpsRedirect: string;
  readonly #files: PolicyFileNames | undefined;

  constructor(named: NamedRoute, httpsRedirect: string, files?: PolicyFileNames) {
    this.#named = named;
    this.#httpsRedirect = httpsRedirect;
    this.#files = files;
  }

  get #http(): boolean {
    const r = this.#named.route;
    return r.mode === 'http' && !r.sslPassthrough;
  }

  /**
   * For the backends writer's memo: the text depends on the route (its servers are named from
   * it), the backend's name, the HTTPS redirect and the policy files' names, nothing else.
   */
  get [VIEW_SOURCE](): ViewSource {
    const files = this.#files;
    return {
      of: this.#named.route,
      tag: `${this.#named.name}\n${this.#httpsRedirect}\n${files?.page ?? ''}\n${files?.users ?? ''}`,
    };
  }

  get name(): string {
    return this.#named.name;
  }

  get mode(): 'http' | 'tcp' {
    return this.#http ? 'http' : 'tcp';
  }

  get about(): string {
    const r = this.#named.route;
    return `cluster ${r.cluster}, service ${r.service}, rule ${r.rule}`;
  }

  get balance(): string {
    const r = this.#named.route;
    return r.ipHash ? 'source' : r.balance;
  }

  get hashType(): HaproxyBackendView['hashType'] {
    return this.balance === 'source' ? 'consistent' : false;
  }

  get healthCheck(): HaproxyBackendView['healthCheck'] {
    const check = this.#named.route.healthCheck;
    return this.#http && check ? healthCheckView(this.#named.route, check.path) : false;
  }

  get cookie(): HaproxyBackendView['cookie'] {
    const name = this.#named.route.stickyCookie;
    return this.#http && name !== undefined ? { name } : false;
  }

  get tunnelTimeout(): HaproxyBackendView['tunnelTimeout'] {
    return this.#http && this.#named.route.websocketPaths.length > 0 ? WEBSOCKET_TUNNEL_TIMEOUT : false;
  }

  get sslOnly(): HaproxyBackendView['sslOnly'] {
    const r = this.#named.route;
    return this.#http && r.sslOnly ? { location: this.#httpsRedirect, hsts: hstsValue(r, HSTS) } : false;
  }

  get stripPath(): HaproxyBackendView['stripPath'] {
    const r = this.#named.route;
    return this.#http && r.stripPath && r.path !== '/'
      ? { regex: `^${pathRegex(r.path)}/?(.*)$`, replacement: '/\\1' }
      : false;
  }

  get rawOptions(): string[] {
    return this.#named.route.rawBackendOptions;
  }

  get policyLines(): string[] {
    return haproxyPolicyLines(this.#named.route, this.#files);
  }

  get servers(): HaproxyServerView[] {
    const { route, servers } = this.#named;
    const http = this.#http;
    // The parameters are the same for every server of the route but the cookie value.
    let common = route.healthCheck ? `check inter ${route.healthCheck.intervalMs}ms` : '';
    if (route.backendTls) {
      // With verification, the certificate is checked against the name the client asked for.
      const tls = !route.backendTls.verify
        ? 'ssl verify none'
        : http
          ? 'ssl verify required ca-file @system-ca sni var(txn.host)'
          : 'ssl verify required ca-file @system-ca';
      common = common ? `${common} ${tls}` : tls;
    }
    const cookie = http && route.stickyCookie !== undefined;
    return servers.map((s) => {
      const params = !cookie ? common : common ? `cookie ${s.name} ${common}` : `cookie ${s.name}`;
      return {
        name: s.name,
        address: hostPort(s.address, s.port),
        // A canary group's share: the weight of each server (render only when set).
        params: s.weight === undefined ? params : params ? `${params} weight ${s.weight}` : `weight ${s.weight}`,
      };
    });
  }
}

/** PROXY protocol on the plain HTTP listener (listener option `http.proxyProtocol`). */
function expectProxyView(output: HaproxyOutput): HaproxyView['http']['expectProxy'] {
  const trusted = output.http.proxyProtocol?.trusted;
  if (!trusted) return false;
  return { sources: trustedSources(trusted, 'http.proxyProtocol.trusted'), port: output.http.port };
}

/**
 * An HTTP route's host-map entries as `[key, line, key, line, ...]` in the order they are put
 * (hosts, then the default, then redirects), its `/` fallbacks (a known host without a route at
 * `/` answers 503 there), the wildcard depths of its hosts and its redirect code when it
 * redirects. They depend on the route and its name only: kept per route object (routes are never
 * changed once built; the watch daemon hands an unchanged service's routes to the next render as
 * the same objects), so a cycle at 10,000 services builds the lines of the services that changed.
 */
interface HttpEntries {
  name: string;
  lines: string[];
  fallback: string[];
  depths: number[];
  redirectCode?: RedirectCode;
}

const keptHttpEntries = new WeakMap<Route, HttpEntries>();

function httpEntries(n: NamedRoute): HttpEntries {
  const r = n.route;
  const kept = keptHttpEntries.get(r);
  if (kept !== undefined && kept.name === n.name) return kept;
  const lines: string[] = [];
  const put = (raw: string, value: string) => {
    const key = flattened(raw);
    lines.push(key, flattened(`${key} ${value}\n`));
  };
  const depths: number[] = [];
  const key = pathKey(r.path);
  for (const h of r.hosts) {
    const depth = wildcardDepth(h);
    if (depth !== undefined) depths.push(depth);
    put(`${h}${key}`, n.name);
  }
  if (r.defaultBackend) put(key, n.name);
  const code = r.redirectCode ?? DEFAULT_REDIRECT_CODE;
  for (const x of r.redirects) {
    const source = redirectSource(x.from);
    for (const scheme of source.schemes) put(`${scheme}://${source.host}/`, `${code}:${x.to}`);
  }
  const fallback: string[] = [];
  if (r.path !== '/')
    for (const h of r.hosts) fallback.push(flattened(`${h}/`), flattened(`${h}/ ${NO_ROUTE_BACKEND}\n`));
  const entries: HttpEntries = {
    name: n.name,
    lines,
    fallback,
    depths,
    ...(r.redirects.length > 0 ? { redirectCode: code } : {}),
  };
  keptHttpEntries.set(r, entries);
  return entries;
}

/** Builds the view and the map in one pass over the routes. */
export function haproxyView(
  routes: readonly Route[],
  output: HaproxyOutput,
  acme?: AcmeRender,
): {
  view: HaproxyView;
  mapFile: string;
  map: string;
  crtList?: { name: string; content: string };
  policyFiles: Array<{ name: string; content: string }>;
} {
  const named = nameRoutes(routes);
  const https = output.https;
  // Map lines, first writer of a key wins; the route builder already reports such conflicts, so
  // this only keeps the output deterministic.
  const keys = new Set<string>();
  const lines: string[] = [];
  const putLine = (key: string, line: string) => {
    if (keys.has(key)) return;
    keys.add(key);
    lines.push(line);
  };
  const put = (key: string, value: string) => putLine(key, `${key} ${value}\n`);
  const httpRoutes: NamedRoute[] = [];
  const httpEntryList: HttpEntries[] = [];
  const httpDepths = new Set<number>();
  const sniDepths = new Set<number>();
  const notes: string[] = [];
  const tcpByPort = new Map<number, NamedRoute>();
  const redirectCodes = new Set<RedirectCode>();
  let hasDefault = false;
  let sniDefault: string | undefined;
  let passthroughCount = 0;

  // Indexed loops: this runs once per render, mostly before the optimizing compiler has it, and
  // each for-of step then allocated an iterator result (issue 12).
  for (let i = 0; i < named.length; i++) {
    const n = named[i] as NamedRoute;
    const r = n.route;
    if (r.mode === 'tcp') {
      if (r.listenPort === undefined) notes.push(`tcp route ${r.cluster}/${r.service} has no listen port; not routed`);
      else if (tcpByPort.has(r.listenPort))
        notes.push(`tcp port ${r.listenPort} of ${r.cluster}/${r.service} is already taken; not routed`);
      else tcpByPort.set(r.listenPort, n);
      continue;
    }
    if (r.sslPassthrough) {
      passthroughCount++;
      if (!https) continue;
      for (const h of r.hosts) {
        const depth = wildcardDepth(h);
        if (depth !== undefined) sniDepths.add(depth);
        put(`sni:${h}/`, n.name);
      }
      if (r.defaultBackend && sniDefault === undefined) sniDefault = n.name;
      continue;
    }
    httpRoutes.push(n);
    const e = httpEntries(n);
    httpEntryList.push(e);
    for (let i = 0; i < e.lines.length; i += 2) putLine(e.lines[i] as string, e.lines[i + 1] as string);
    for (let j = 0; j < e.depths.length; j++) httpDepths.add(e.depths[j] as number);
    if (r.defaultBackend) hasDefault = true;
    if (e.redirectCode !== undefined) redirectCodes.add(e.redirectCode);
  }
  // A known host without a route at `/` answers 503 there rather than falling through to a wildcard.
  for (let k = 0; k < httpEntryList.length; k++) {
    const e = httpEntryList[k] as HttpEntries;
    for (let i = 0; i < e.fallback.length; i += 2) putLine(e.fallback[i] as string, e.fallback[i + 1] as string);
  }
  if (passthroughCount > 0 && !https) {
    notes.push(
      `${passthroughCount} TLS passthrough route(s) are not routed: passthrough needs the https listener of this output`,
    );
  }

  // Keys hold no space and sort above it, so sorting whole lines sorts by key (natively, no callback).
  lines.sort();
  const map = [
    `# ${GENERATED_NOTICE}\n`,
    '# Read by the map_beg() lookups of the HAProxy config next to it (longest key wins).\n',
    '# host/path/ and *.suffix/path/ -> backend; /path/ -> default backend;\n',
    '# http://host/ and https://host/ -> STATUS:redirect target; sni:host/ -> TLS passthrough backend.\n',
    ...lines,
  ].join('');
  const mapFile = mapFileName(output.file, map);

  const hr = 'http-request';
  const rules = [`${hr} set-var(txn.host) req.hdr(host),field(1,:),lower`];
  if (redirectCodes.size > 0) {
    rules.push(
      `${hr} set-var-fmt(txn.redirect_key) %[ssl_fc,iif(https,http)]://%[var(txn.host)]/`,
      `${hr} set-var(txn.redirect) var(txn.redirect_key),map_beg(${mapFile})`,
    );
    for (const code of [...redirectCodes].sort((a, b) => a - b)) {
      // The value is `CODE:TARGET`; bytes(4) is the target. A target without a path keeps the
      // request's path and query; one with a path replaces them.
      rules.push(
        `${hr} redirect location %[var(txn.redirect),bytes(4)]%[pathq] code ${code} if { var(txn.redirect) -m reg ^${code}:[a-z]+://[^/]+$ }`,
        `${hr} redirect location %[var(txn.redirect),bytes(4)] code ${code} if { var(txn.redirect) -m beg ${code}: }`,
      );
    }
  }
  rules.push(
    `${hr} set-var-fmt(txn.route_key) %[var(txn.host)]%[path]/`,
    `${hr} set-var(txn.backend) var(txn.route_key),map_beg(${mapFile})`,
    ...wildcardRules(hr, 'txn.host', '', '%[path]/', depthsDescending(httpDepths), mapFile),
  );
  if (hasDefault) {
    rules.push(
      `${hr} set-var-fmt(txn.route_key) %[path]/ if !{ var(txn.backend) -m found }`,
      `${hr} set-var(txn.backend) var(txn.route_key),map_beg(${mapFile}) if !{ var(txn.backend) -m found }`,
    );
  }

  const httpBind = listenAddress(output.http.address, output.http.port, 'http');
  const binds = [httpBind];
  let sni: HaproxyView['sni'] = false;
  let crtList: { name: string; content: string } | undefined;
  if (https) {
    const certs = certificateList(httpRoutes, https, notes, acme);
    crtList = { name: crtListFileName(output.file, certs.content), content: certs.content };
    // The first certificate named is the one served when no SNI name matches.
    const crt = [
      ...(https.defaultCert
        ? [`crt ${haproxyWord(certificatePath(https.certDir, https.defaultCert), 'https.defaultCert')}`]
        : []),
      ...(certs.entries > 0 ? [`crt-list ${crtList.name}`] : []),
    ].join(' ');
    if (crt === '') {
      notes.push(
        'TLS is not terminated: no certificate to serve (set https.defaultCert, or give the hosts their certificates)',
      );
    }
    const httpsBind = listenAddress(https.address, https.port, 'https');
    if (passthroughCount > 0) {
      // Passthrough needs the TLS port in TCP mode; the rest is terminated behind an internal socket.
      const internal = `abns@interlock-https-${https.port}`;
      if (crt !== '') binds.push(`${internal} accept-proxy ssl ${crt} alpn h2,http/1.1`);
      const tc = 'tcp-request content';
      const hello = 'if { req.ssl_hello_type 1 }';
      sni = {
        bind: httpsBind,
        rules: [
          'tcp-request inspect-delay 5s',
          // The condition waits for the whole ClientHello before any SNI is read.
          `${tc} set-var(txn.sni) req.ssl_sni,lower ${hello}`,
          `${tc} set-var-fmt(txn.route_key) sni:%[var(txn.sni)]/ ${hello}`,
          `${tc} set-var(txn.backend) var(txn.route_key),map_beg(${mapFile}) ${hello}`,
          ...wildcardRules(tc, 'txn.sni', 'sni:', '/', depthsDescending(sniDepths), mapFile),
          `${tc} accept ${hello}`,
        ],
        defaultBackend: sniDefault ?? TLS_TERMINATE_BACKEND,
        terminateBackend: TLS_TERMINATE_BACKEND,
        terminateAddress: internal,
      };
    } else if (crt !== '') {
      binds.push(`${httpsBind} ssl ${crt} alpn h2,http/1.1`);
    }
  }

  const tcp = [...tcpByPort.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([port, n]) => ({
      name: `tcp_${port}`,
      bind: listenAddress(output.http.address, port, 'tcp route'),
      backend: n.name,
    }));

  const httpsPort = https?.port ?? 443;
  const httpsRedirect = `https://%[var(txn.host)]${httpsPort === 443 ? '' : `:${httpsPort}`}%[pathq]`;
  // Files of the routes' policies, next to the config (`default-path config` finds them).
  const base = policyFileBase(output.file);
  const policyFiles: Array<{ name: string; content: string }> = [];
  const userlists: HaproxyView['userlists'] = [];
  const backends = named.map((n) => {
    const page = pageContent(n.route);
    const users = haproxyUserLines(n.route);
    if (page === undefined && users.length === 0) return new BackendView(n, httpsRedirect);
    const files: PolicyFileNames = {};
    if (page !== undefined) {
      files.page = policyFileName(`${base}.${n.name}.haproxy-page.html`);
      policyFiles.push({ name: files.page, content: page });
    }
    if (users.length > 0) {
      files.users = `interlock_users_${n.name}`;
      const r = n.route;
      userlists.push({
        name: files.users,
        about: `cluster ${r.cluster}, service ${r.service}, users file ${r.policies?.basicAuth?.file}`,
        users,
      });
    }
    return new BackendView(n, httpsRedirect, files);
  });
  let servers = 0;
  for (const n of named) servers += n.servers.length;
  const summary = `${httpRoutes.length} http route(s), ${passthroughCount} passthrough route(s), ${tcpByPort.size} tcp route(s), ${servers} server(s)`;

  const view: HaproxyView = {
    notice: GENERATED_NOTICE,
    summary,
    mapFile,
    maxconn: output.maxconn,
    masterSocket: output.masterSocket
      ? // A bare relative path would be read as host:port; unix@ makes it a socket.
        haproxyWord(
          output.masterSocket.startsWith('/') ? output.masterSocket : `unix@${output.masterSocket}`,
          'masterSocket',
        )
      : false,
    noRouteBackend: NO_ROUTE_BACKEND,
    sslLoadExtraDelExt: https !== undefined,
    http: {
      binds,
      https: https !== undefined,
      rules,
      expectProxy: expectProxyView(output),
      accessLog: output.accessLog ? haproxyAccessLogLines(output.accessLog.format) : false,
    },
    sni,
    stats: output.stats
      ? { bind: listenAddress(output.stats.address, output.stats.port, 'stats'), uri: output.stats.path }
      : false,
    tcp,
    backends,
    notes,
    userlists,
    ...(acme
      ? {
          acme: {
            backend: ACME_BACKEND,
            path: ACME_CHALLENGE_PATH,
            server: haproxyWord(acme.responder, 'acme.challenge.reachAt'),
          },
        }
      : {}),
  };
  return { view, mapFile, map, ...(crtList ? { crtList } : {}), policyFiles };
}

/** A policy file's name goes into the config as a bare word. */
function policyFileName(name: string): string {
  if (!/^[A-Za-z0-9._-]+$/.test(name)) {
    throw new RenderError(
      `the policy file name ${JSON.stringify(name)} may hold only letters, digits, \`.\`, \`_\` and \`-\`: rename the output file`,
    );
  }
  return name;
}

/**
 * Renders the HAProxy config (first), its host map (second, named after the config:
 * `haproxy.cfg` → `haproxy.hosts.map`) and, with an HTTPS listener, its certificate list
 * (`haproxy.crt-list`). The config finds both through `default-path config`.
 */
export function renderHaproxy(
  routes: readonly Route[],
  output: HaproxyOutput,
  options: HaproxyRenderOptions,
): RenderedFile[] {
  const { view, mapFile, map, crtList, policyFiles } = haproxyView(routes, output, options.acme);
  const content = renderTemplate(options.template, view, HAPROXY_FAST);
  return [
    // With basic auth the config holds password hashes: written 0640, not 0644.
    { name: path.basename(output.file), content, ...(view.userlists.length > 0 ? { private: true } : {}) },
    { name: mapFile, content: map },
    ...(crtList ? [{ name: crtList.name, content: crtList.content }] : []),
    ...policyFiles,
  ];
}
