/**
 * Routes → HAProxy configuration plus its host map. Pure: the same routes and output give the same
 * bytes, in any input order.
 *
 * Routing scales with a map, not with ACLs: the frontend has a fixed number of rules whatever the
 * number of hosts, and every host and path lives in `<name>.hosts.map` next to the config. Each
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
import path from 'node:path';
import { haproxyMapFile } from '../config/check.ts';
import type { HaproxyOutput } from '../config/schema.ts';
import { DEFAULT_REDIRECT_CODE, type RedirectCode, type Route } from '../routes/types.ts';
import { renderTemplate } from './mustache.ts';
import { builtInTemplate } from './templates.ts';
import {
  GENERATED_NOTICE,
  haproxyWord,
  hostPort,
  joinPath,
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
}

export interface HaproxyView {
  notice: string;
  summary: string;
  /** Map file name, relative to the config (resolved through `default-path config`). */
  mapFile: string;
  maxconn: number;
  /** Stats socket path with `expose-fd listeners`, or false. */
  masterSocket: false | string;
  noRouteBackend: string;
  http: {
    /** `bind` arguments, one line each. */
    binds: string[];
    /** True when an HTTPS listener feeds this frontend. */
    https: boolean;
    /** Routing rules (`http-request ...`), in order; their count does not grow with hosts. */
    rules: string[];
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
}

export interface HaproxyRenderOptions {
  /** Template text overriding templates/haproxy.cfg.mustache. */
  template?: string;
}

// ---------- helpers ----------

/** A path prefix as a PCRE: only `.` and `+` of the accepted path characters are special. */
function pathRegex(p: string): string {
  return p.replace(/[.+]/g, (c) => `[${c}]`);
}

function pathKey(p: string): string {
  return p === '/' ? '/' : `${p}/`;
}

function mapFileName(file: string): string {
  const name = path.basename(haproxyMapFile(file));
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

  constructor(named: NamedRoute, httpsRedirect: string) {
    this.#named = named;
    this.#httpsRedirect = httpsRedirect;
  }

  get #http(): boolean {
    const r = this.#named.route;
    return r.mode === 'http' && !r.sslPassthrough;
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
    return this.#http && this.#named.route.sslOnly ? { location: this.#httpsRedirect, hsts: HSTS } : false;
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
    return servers.map((s) => ({
      name: s.name,
      address: hostPort(s.address, s.port),
      params: !cookie ? common : common ? `cookie ${s.name} ${common}` : `cookie ${s.name}`,
    }));
  }
}

/** Builds the view and the map in one pass over the routes. */
export function haproxyView(
  routes: readonly Route[],
  output: HaproxyOutput,
): { view: HaproxyView; mapFile: string; map: string } {
  const mapFile = mapFileName(output.file);
  const named = nameRoutes(routes);
  const https = output.https;
  // Map lines, first writer of a key wins; the route builder already reports such conflicts, so
  // this only keeps the output deterministic.
  const keys = new Set<string>();
  const lines: string[] = [];
  const put = (key: string, value: string) => {
    if (keys.has(key)) return;
    keys.add(key);
    lines.push(`${key} ${value}\n`);
  };
  const httpRoutes: NamedRoute[] = [];
  const httpDepths = new Set<number>();
  const sniDepths = new Set<number>();
  const notes: string[] = [];
  const tcpByPort = new Map<number, NamedRoute>();
  const redirectCodes = new Set<RedirectCode>();
  let hasDefault = false;
  let sniDefault: string | undefined;
  let passthroughCount = 0;

  for (const n of named) {
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
    const key = pathKey(r.path);
    for (const h of r.hosts) {
      const depth = wildcardDepth(h);
      if (depth !== undefined) httpDepths.add(depth);
      put(`${h}${key}`, n.name);
    }
    if (r.defaultBackend) {
      hasDefault = true;
      put(key, n.name);
    }
    const code = r.redirectCode ?? DEFAULT_REDIRECT_CODE;
    for (const x of r.redirects) {
      const source = redirectSource(x.from);
      for (const scheme of source.schemes) put(`${scheme}://${source.host}/`, `${code}:${x.to}`);
      redirectCodes.add(code);
    }
  }
  // A known host without a route at `/` answers 503 there rather than falling through to a wildcard.
  for (const n of httpRoutes) {
    if (n.route.path !== '/') for (const h of n.route.hosts) put(`${h}/`, NO_ROUTE_BACKEND);
  }
  if (passthroughCount > 0 && !https) {
    notes.push(
      `${passthroughCount} TLS passthrough route(s) are not routed: passthrough needs the https listener of this output`,
    );
  }

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
  if (https) {
    const certDir = haproxyWord(https.certDir, 'https.certDir');
    // The first certificate named is the one served when no SNI name matches.
    const crt = https.defaultCert
      ? `crt ${haproxyWord(joinPath(https.certDir, https.defaultCert), 'https.defaultCert')} crt ${certDir}`
      : `crt ${certDir}`;
    const httpsBind = listenAddress(https.address, https.port, 'https');
    if (passthroughCount > 0) {
      // Passthrough needs the TLS port in TCP mode; the rest is terminated behind an internal socket.
      const internal = `abns@interlock-https-${https.port}`;
      binds.push(`${internal} accept-proxy ssl ${crt} alpn h2,http/1.1`);
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
    } else {
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
  const backends = named.map((n) => new BackendView(n, httpsRedirect));
  let servers = 0;
  for (const n of named) servers += n.servers.length;
  const summary = `${httpRoutes.length} http route(s), ${passthroughCount} passthrough route(s), ${tcpByPort.size} tcp route(s), ${servers} server(s)`;

  // Keys hold no space and sort above it, so sorting whole lines sorts by key (natively, no callback).
  lines.sort();
  const map = [
    `# ${GENERATED_NOTICE}\n`,
    '# Read by the map_beg() lookups of the HAProxy config next to it (longest key wins).\n',
    '# host/path/ and *.suffix/path/ -> backend; /path/ -> default backend;\n',
    '# http://host/ and https://host/ -> STATUS:redirect target; sni:host/ -> TLS passthrough backend.\n',
    ...lines,
  ].join('');

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
    http: { binds, https: https !== undefined, rules },
    sni,
    stats: output.stats
      ? { bind: listenAddress(output.stats.address, output.stats.port, 'stats'), uri: output.stats.path }
      : false,
    tcp,
    backends,
    notes,
  };
  return { view, mapFile, map };
}

/**
 * Renders the HAProxy config (first) and its host map (second, named after the config:
 * `haproxy.cfg` → `haproxy.hosts.map`). The config finds the map through `default-path config`.
 */
export function renderHaproxy(
  routes: readonly Route[],
  output: HaproxyOutput,
  options: HaproxyRenderOptions = {},
): RenderedFile[] {
  const { view, mapFile, map } = haproxyView(routes, output);
  const template = options.template ?? builtInTemplate('haproxy.cfg');
  const content = renderTemplate(template, view);
  return [
    { name: path.basename(output.file), content },
    { name: mapFile, content: map },
  ];
}
