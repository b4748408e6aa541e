/**
 * Routes → one Nginx configuration file. Pure: the same routes and output give the same bytes, in
 * any input order.
 *
 * Shape: an upstream per route; a server block per group of hosts whose blocks would be identical
 * (a host with its aliases, usually), one for plain HTTP and one for TLS when the output has an
 * HTTPS listener; a default server answering 503 (or the routes marked `defaultBackend`).
 * Nginx picks the server by host (exact, then the longest `*.` wildcard) and then the location by
 * the longest prefix, as the HAProxy map does. A path `/api` becomes `location /api/` plus
 * `location = /api`, so `/apix` is not under it.
 *
 * What open-source Nginx 1.22 cannot do, and what is done instead:
 * - Cookie stickiness (no `sticky`): the application's cookie is never written, only read.
 *   `hash <key> consistent`, the key being the proxy's own `interlock_sticky` cookie when the
 *   request has it, else the application's cookie, else `$request_id`. A request with neither
 *   gets `interlock_sticky` set to that `$request_id`, so its next requests hash to the server
 *   that answered the first one: the one that created the application's session. (Hashing on
 *   the application's cookie alone would move a new session to another server on its second
 *   request, with (n-1)/n probability.) A client that only has the application's cookie keeps
 *   hashing on it.
 * - Active health checks: passive ones (`max_fails=3 fail_timeout=<interval>`); the check path is
 *   not requested.
 * TCP routes and TLS passthrough go into a `stream` block (the stream module is loaded with
 * `load_module` from `streamModule`, only when such routes exist). Passthrough works like HAProxy's
 * `https_sni` frontend: a stream server on the HTTPS port reads the SNI name (`ssl_preread`) and
 * sends passthrough hosts to an internal stream server, everything else to Nginx's own TLS servers,
 * which then listen on a unix socket in `runDir`. Both hops carry the client address in the PROXY
 * protocol (read back with realip), so `$remote_addr`, X-Forwarded-For and `ip_hash` see the client.
 * The internal hop exists because `proxy_protocol` is per server in Nginx: the passthrough
 * backends must not receive a PROXY header.
 */
import path from 'node:path';
import { policyFileBase } from '../config/paths.ts';
import type { NginxOutput } from '../config/schema.ts';
import { DEFAULT_REDIRECT_CODE, type Route } from '../routes/types.ts';
import { nginxAccessLogFormat } from './access-log.ts';
import { NGINX_FAST, VIEW_SOURCE, type ViewSource } from './fast-sections.ts';
import { renderTemplate } from './mustache.ts';
import {
  hstsValue,
  htpasswdContent,
  nginxPageUri,
  nginxPolicyLines,
  nginxRateZone,
  type PolicyFileNames,
  pageContent,
  trustedSources,
} from './policies.ts';
import {
  ACME_CHALLENGE_PATH,
  type AcmeRender,
  certificatePath,
  compareStrings,
  GENERATED_NOTICE,
  hostPort,
  joinPath,
  listenAddress,
  type NamedRoute,
  nameRoutes,
  nginxWord,
  type RenderedFile,
  redirectHasPath,
  redirectSource,
} from './types.ts';

const HSTS = 'max-age=31536000';
const KEEPALIVE = 16;
const PASSIVE_MAX_FAILS = 3;
/** Where Debian's libnginx-mod-stream installs the stream module. */
export const DEBIAN_STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so';
/** Upstream names of the two internal TLS hops (route upstreams are `<service>__<cluster>__<n>`). */
export const TLS_TERMINATE_UPSTREAM = 'interlock_tls_terminate';
export const TLS_PASSTHROUGH_UPSTREAM = 'interlock_tls_passthrough';
/** Debian, Ubuntu and Alpine keep the system CA bundle here. */
const SYSTEM_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

// ---------- the view: what templates/nginx.conf.mustache receives ----------

export interface NginxLocationView {
  /** What follows `location`: `/`, `/api/`, `= /api`. */
  match: string;
  /** `cluster/service`, for a comment; empty for the 503 fallback. */
  about: string;
  /** `return 301 <target>` (SSL-only route on plain HTTP), or false. */
  redirect: false | string;
  /** `return 503`: no route here, or the route has no running backend. */
  unavailable: boolean;
  /** An internal location serving a route's error / maintenance page file (absolute path), or absent. */
  internalPage?: { file: string };
  proxy:
    | false
    | {
        /** `proxy_pass` target, with the URI that strips the prefix when asked. */
        pass: string;
        websocket: boolean;
        /** Verify the backend certificate against the requested host name. */
        verifyTls: false | { trustedCertificate: string };
        hsts: false | string;
        /** Variable holding the sticky cookie to set (empty when the request has it), or false. */
        setCookie: false | string;
        /** Traffic policy lines (render/policies.ts), each ending with `;`; empty without policies. */
        policyLines: string[];
      };
}

export interface NginxServerView {
  /** `listen` arguments. */
  listen: string;
  /** `server_name` arguments. */
  serverNames: string;
  certificate: false | { cert: string; key: string };
  /** TLS default server without a default certificate: refuse unknown names. */
  rejectHandshake: boolean;
  /** Server-wide `return <status> <target>` (a redirect label), e.g. `302 https://x`, or false. */
  redirect: false | string;
  locations: NginxLocationView[];
  /** With an `acme` config, on the plain HTTP listener: HTTP-01 requests go to the controller. */
  acme?: { path: string; pass: string };
}

export interface NginxUpstreamView {
  name: string;
  about: string;
  /** Balancing directive (`least_conn`, `ip_hash`, `random`, `hash ... consistent`), or false for round robin. */
  balance: false | string;
  servers: Array<{ address: string; params: string }>;
  keepalive: number;
}

export interface NginxStickyView {
  /** The application's cookie. */
  cookie: string;
  /** Variable (without `$`) holding the hash key: the pin cookie, the application's, or `$request_id`. */
  keyVariable: string;
  /** Variable (without `$`) holding the pin Set-Cookie value, empty when the request has either cookie. */
  setVariable: string;
  /** Regexes (map source `$http_cookie`) capturing the pin cookie's value, then the application's, as $1. */
  capturePin: string;
  capture: string;
  /** Regexes matching a request that already has the pin cookie, or the application's. */
  presentPin: string;
  present: string;
  /** The pin cookie set on first contact. */
  setCookie: string;
}

export interface NginxStreamUpstreamView {
  name: string;
  about: string;
  /** `hash ... consistent`, `least_conn`, `random`, or false for round robin. */
  balance: false | string;
  servers: Array<{ address: string; params: string }>;
}

export interface NginxStreamView {
  /** `load_module` path, or false (compiled in). */
  loadModule: false | string;
  upstreams: NginxStreamUpstreamView[];
  /** TLS passthrough on the HTTPS port, or false. */
  sni:
    | false
    | {
        listen: string;
        /** Front map: SNI name → internal hop (`hostnames` map; `default` last). */
        targets: Array<{ key: string; value: string }>;
        /** Internal map: SNI name → route upstream. */
        routes: Array<{ key: string; value: string }>;
        /** `map_hash_*` sizes for the two maps, or false where Nginx's defaults hold them. */
        mapHash: false | { maxSize: number; bucketSize: number };
        terminateUpstream: string;
        terminateSocket: string;
        passthroughUpstream: string;
        passthroughSocket: string;
      };
  /** One server per TCP route: listen address:port and its upstream; `ssl` for TLS to the backend. */
  tcp: Array<{ listen: string; upstream: string; about: string; ssl: boolean }>;
}

/** The proxy's own affinity cookie next to the application's (never the application's name). */
export const NGINX_PIN_COOKIE = 'interlock_sticky';

export interface NginxView {
  notice: string;
  summary: string;
  pidFile: string;
  errorLog: string;
  temp: { clientBody: string; proxy: string; fastcgi: string; uwsgi: string; scgi: string };
  workerConnections: number;
  serverNamesHash: { maxSize: number; bucketSize: number };
  sticky: NginxStickyView[];
  upstreams: NginxUpstreamView[];
  servers: NginxServerView[];
  /** TLS arrives over the internal unix socket with a PROXY header: take the client address from it. */
  realIpFromUnix: boolean;
  /** TCP routes and TLS passthrough, or false when there are none. */
  stream: false | NginxStreamView;
  /** Routes this output cannot serve, and why; one comment line each. */
  notes: string[];
  /** `limit_req_zone` arguments, one per route with a rate limit (traffic policies). */
  rateZones: string[];
  /**
   * PROXY protocol on the plain HTTP listener: the trusted networks (`set_real_ip_from`), and
   * whether `real_ip_header proxy_protocol` is still to be written (realIpFromUnix writes it too).
   */
  proxyProtocol: false | { trusted: string[]; header: boolean };
  /** The access log (output option `accessLog`): maps, the log_format and the file; false: `access_log off`. */
  accessLog: false | { maps: string[]; format: string; file: string; name: string };
  /** Files of the routes' policies written next to the config (pages, htpasswd): not for the template. */
  policyFiles: RenderedFile[];
}

export interface NginxRenderOptions {
  /** Template text: templates/nginx.conf.mustache (loaded at the edge) or an override. */
  template: string;
  /**
   * Directory for the pid file, error log and temp paths. Relative paths stay relative: Nginx
   * resolves them against its prefix (`-p`).
   */
  runDir: string;
  /** With an `acme` config: the responder and the hosts' ACME certificates. */
  acme?: AcmeRender;
  /** The absolute folder the files are written to: pages and htpasswd files are named there. */
  dir?: string;
}

// ---------- helpers ----------

interface Listener {
  kind: 'http' | 'https';
  /** `https://$host[:port]$request_uri`: where SSL-only routes send plain HTTP. */
  httpsRedirect: string;
}

interface Context {
  /** The upstream of an http route: its name, when it has servers. */
  upstreamOf: (named: NamedRoute) => string | undefined;
  stickyOf: Map<string, NginxStickyView>;
  /** The policy files of the routes that have some (absolute paths, as Nginx words). */
  filesOf: Map<NamedRoute, PolicyFileNames>;
}

interface LocationEntry {
  /** The path the location is about, for ordering. */
  path: string;
  exact: boolean;
  /** A route's own path (true) or one of its websocket paths under it (false). */
  main: boolean;
  websocket: boolean;
  named: NamedRoute;
}

function proxyTarget(named: NamedRoute, upstream: string, entry: LocationEntry): string {
  const r = named.route;
  const scheme = r.backendTls ? 'https' : 'http';
  if (!r.stripPath || r.path === '/') return `${scheme}://${upstream}`;
  // With a URI in proxy_pass, Nginx replaces the matched location prefix by it.
  const rest = entry.path.slice(r.path.length);
  return entry.exact ? `${scheme}://${upstream}${rest || '/'}` : `${scheme}://${upstream}${rest}/`;
}

/**
 * A location as the template sees it. Fields are getters over the route, so the view keeps one
 * small object per location; the strings are made while the template reads them and die young.
 */
class LocationView implements NginxLocationView {
  readonly #entry: LocationEntry;
  readonly #listener: Listener;
  readonly #ctx: Context;

  constructor(entry: LocationEntry, listener: Listener, ctx: Context) {
    this.#entry = entry;
    this.#listener = listener;
    this.#ctx = ctx;
  }

  get #redirects(): boolean {
    return this.#entry.named.route.sslOnly && this.#listener.kind === 'http';
  }

  get match(): string {
    const e = this.#entry;
    return e.path === '/' ? '/' : e.exact ? `= ${e.path}` : `${e.path}/`;
  }

  get about(): string {
    const r = this.#entry.named.route;
    return `${r.cluster}/${r.service}`;
  }

  get redirect(): false | string {
    return this.#redirects ? this.#listener.httpsRedirect : false;
  }

  get unavailable(): boolean {
    return !this.#redirects && this.#ctx.upstreamOf(this.#entry.named) === undefined;
  }

  get proxy(): NginxLocationView['proxy'] {
    const { named } = this.#entry;
    const upstream = this.#ctx.upstreamOf(named);
    if (this.#redirects || upstream === undefined) return false;
    const r = named.route;
    const sticky = r.stickyCookie === undefined ? undefined : this.#ctx.stickyOf.get(r.stickyCookie);
    return {
      pass: proxyTarget(named, upstream, this.#entry),
      websocket: this.#entry.websocket,
      verifyTls: r.backendTls?.verify ? { trustedCertificate: SYSTEM_CA_BUNDLE } : false,
      hsts: r.sslOnly && this.#listener.kind === 'https' ? hstsValue(r, HSTS) : false,
      setCookie: sticky ? sticky.setVariable : false,
      policyLines: nginxPolicyLines(r, {
        upstream,
        websocket: this.#entry.websocket,
        https: this.#listener.kind === 'https',
        ...(this.#ctx.filesOf.has(named) ? { files: this.#ctx.filesOf.get(named) } : {}),
      }),
    };
  }
}

/** `location /` answering 503, for servers with no route at `/`. */
const UNAVAILABLE_ROOT: NginxLocationView = {
  match: '/',
  about: '',
  redirect: false,
  unavailable: true,
  proxy: false,
};

function entryOrder(a: LocationEntry, b: LocationEntry): number {
  return (
    b.path.length - a.path.length ||
    compareStrings(a.path, b.path) ||
    Number(b.exact) - Number(a.exact) ||
    Number(b.main) - Number(a.main)
  );
}

/** The locations of one server, and the internal ones serving its routes' pages. */
/** The `limit_req_zone` of each served route with a rate limit, in order (a loop: no array per route). */
function rateZones(served: readonly NamedRoute[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < served.length; i++) {
    const n = served[i] as NamedRoute;
    const zone = nginxRateZone(n.route, n.name);
    if (zone !== undefined) out.push(zone);
  }
  return out;
}

/** The upstream of an http route (see Context). */
function httpUpstream(named: NamedRoute): string | undefined {
  return named.servers.length > 0 ? named.name : undefined;
}

function locationsFor(routes: readonly NamedRoute[], listener: Listener, ctx: Context): NginxLocationView[] {
  const views = routeLocations(routes, listener, ctx);
  if (ctx.filesOf.size === 0) return views;
  for (const named of routes) {
    const page = ctx.filesOf.get(named)?.page;
    const upstream = ctx.upstreamOf(named);
    if (page === undefined || upstream === undefined) continue;
    views.push({
      match: `= ${nginxPageUri(upstream)}`,
      about: '',
      redirect: false,
      unavailable: false,
      internalPage: { file: page },
      proxy: false,
    });
  }
  return views;
}

/** The locations of one server: each route's path, its websocket paths, and a 503 fallback at `/`. */
function routeLocations(routes: readonly NamedRoute[], listener: Listener, ctx: Context): NginxLocationView[] {
  const only = routes.length === 1 ? routes[0] : undefined;
  if (only && only.route.websocketPaths.length === 0) {
    // The common case (one route, no websocket path) needs no merging.
    const path = only.route.path;
    const entry = { path, exact: false, main: true, websocket: false, named: only };
    if (path === '/') return [new LocationView(entry, listener, ctx)];
    return [
      new LocationView({ ...entry, exact: true }, listener, ctx),
      new LocationView(entry, listener, ctx),
      UNAVAILABLE_ROOT,
    ];
  }
  const candidates: LocationEntry[] = [];
  for (const named of routes) {
    const r = named.route;
    const ws = new Set(r.websocketPaths);
    const add = (p: string, main: boolean) => {
      if (p === '/') candidates.push({ path: p, exact: false, main, websocket: ws.has(p), named });
      else {
        candidates.push({ path: p, exact: false, main, websocket: ws.has(p), named });
        candidates.push({ path: p, exact: true, main, websocket: ws.has(p), named });
      }
    };
    add(r.path, true);
    for (const w of [...ws].sort()) {
      if (w !== r.path && (r.path === '/' || w.startsWith(`${r.path}/`))) add(w, false);
    }
  }
  // A route's own path beats another route's websocket sub-path; otherwise the first route wins
  // (the route builder reports such conflicts; this only keeps the output deterministic).
  const chosen = new Map<string, LocationEntry>();
  const byPriority = [...candidates.filter((c) => c.main), ...candidates.filter((c) => !c.main)];
  for (const c of byPriority) {
    const key = `${c.exact ? '=' : ''}${c.path}`;
    if (!chosen.has(key)) chosen.set(key, c);
  }
  const entries = [...chosen.values()].sort(entryOrder);
  const views: NginxLocationView[] = entries.map((e) => new LocationView(e, listener, ctx));
  if (!chosen.has('/')) views.push(UNAVAILABLE_ROOT);
  return views;
}

function redirectFor(routes: readonly NamedRoute[], host: string, listener: Listener): false | string {
  for (const { route } of routes) {
    for (const x of route.redirects) {
      const source = redirectSource(x.from);
      if (source.host === host && source.schemes.includes(listener.kind)) {
        const code = route.redirectCode ?? DEFAULT_REDIRECT_CODE;
        return `${code} ${redirectHasPath(x.to) ? x.to : `${x.to}$request_uri`}`;
      }
    }
  }
  return false;
}

/** An upstream as the template sees it: getters over the route, like {@link LocationView}. */
class UpstreamView implements NginxUpstreamView {
  readonly #named: NamedRoute;
  readonly #sticky: NginxStickyView | undefined;
  readonly keepalive = KEEPALIVE;

  constructor(named: NamedRoute, sticky: NginxStickyView | undefined) {
    this.#named = named;
    this.#sticky = sticky;
  }

  get name(): string {
    return this.#named.name;
  }

  /** For the upstreams writer's memo: the route (servers included), the name and the sticky key. */
  get [VIEW_SOURCE](): ViewSource {
    return { of: this.#named.route, tag: `${this.#named.name}\n${this.#sticky?.keyVariable ?? ''}` };
  }

  get about(): string {
    const r = this.#named.route;
    const first =
      r.balance === 'first' && !this.#sticky ? ' (balance first: Nginx has no equivalent, round robin)' : '';
    return `cluster ${r.cluster}, service ${r.service}, rule ${r.rule}${first}`;
  }

  get balance(): false | string {
    return balanceDirective(this.#named.route, this.#sticky);
  }

  get servers(): NginxUpstreamView['servers'] {
    const check = this.#named.route.healthCheck;
    const params = check
      ? `max_fails=${PASSIVE_MAX_FAILS} fail_timeout=${Math.max(1, Math.ceil(check.intervalMs / 1000))}s`
      : '';
    return this.#named.servers.map((s) => ({
      address: hostPort(s.address, s.port),
      // A canary group's share: the weight of each server (only when set).
      params: s.weight === undefined ? params : params ? `weight=${s.weight} ${params}` : `weight=${s.weight}`,
    }));
  }
}

function balanceDirective(route: Route, sticky: NginxStickyView | undefined): false | string {
  if (sticky) return `hash $${sticky.keyVariable} consistent`;
  if (route.ipHash || route.balance === 'source') return 'ip_hash';
  if (route.balance === 'leastconn') return 'least_conn';
  if (route.balance === 'random') return 'random';
  // roundrobin is the default; `first` has no Nginx counterpart.
  return false;
}

function stickyView(cookie: string, index: number): NginxStickyView {
  // Cookie names hold [A-Za-z0-9_.-]: only `.` is special in a regex.
  const name = cookie.replaceAll('.', '[.]');
  return {
    cookie,
    keyVariable: `interlock_sticky_key_${index}`,
    setVariable: `interlock_sticky_set_${index}`,
    capturePin: `~(?:^|;) *${NGINX_PIN_COOKIE}=([^;]+)`,
    capture: `~(?:^|;) *${name}=([^;]+)`,
    presentPin: `~(?:^|;) *${NGINX_PIN_COOKIE}=[^;]`,
    present: `~(?:^|;) *${name}=[^;]`,
    setCookie: `${NGINX_PIN_COOKIE}=$request_id; Path=/; HttpOnly`,
  };
}

function nextPowerOfTwo(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/**
 * Sizes of the server name hash: a bucket must hold the longest name (Nginx needs pointer + name
 * + 2, aligned, plus a terminating pointer), and the table must have room for every name, or
 * `nginx -t` fails with "could not build server_names_hash".
 */
function serverNamesHash(names: number, longest: number): { maxSize: number; bucketSize: number } {
  const element = 8 + Math.ceil((longest + 2) / 8) * 8;
  // Above 10,000 Nginx only tries the last 1,000 sizes below max_size: a table four times the
  // number of names with buckets of 128 bytes leaves every bucket room to spare.
  return {
    bucketSize: Math.max(128, nextPowerOfTwo(element + 8)),
    maxSize: Math.max(1024, nextPowerOfTwo(names * 4)),
  };
}

/**
 * Sizes of the SNI maps' hash (stream block), or false when Nginx's defaults hold them
 * (`map_hash_max_size 2048`, `map_hash_bucket_size 64`): with them a name over 46 characters is
 * refused (`could not build map_hash`), and past about a hundred names the 64-byte buckets (one
 * name each) make a table without collisions unlikely, which Nginx warns about. Written only
 * beyond those, so small configs read as before (issue 12).
 */
function mapHash(names: number, longest: number): false | { maxSize: number; bucketSize: number } {
  const element = 8 + Math.ceil((longest + 2) / 8) * 8;
  if (element + 8 <= 64 && names <= 100) return false;
  return serverNamesHash(names, longest);
}

/** Builds the view in one pass over the routes (plus one over hosts). */
export function nginxView(
  routes: readonly Route[],
  output: NginxOutput,
  runDir: string,
  acme?: AcmeRender,
  filesDir?: string,
): NginxView {
  const named = nameRoutes(routes);
  const https = output.https;
  const notes: string[] = [];
  const http: NamedRoute[] = [];
  const tcp: NamedRoute[] = [];
  const passthrough: NamedRoute[] = [];
  // Indexed loops: this runs once per render, mostly before the optimizing compiler has it, and
  // each for-of step then allocated an iterator result (issue 12).
  for (let i = 0; i < named.length; i++) {
    const n = named[i] as NamedRoute;
    const r = n.route;
    if (r.mode === 'tcp') tcp.push(n);
    else if (r.sslPassthrough) passthrough.push(n);
    else http.push(n);
  }
  const stream = streamView(output, runDir, tcp, passthrough, notes);

  const cookies = [...new Set(http.flatMap((n) => (n.route.stickyCookie === undefined ? [] : [n.route.stickyCookie])))];
  cookies.sort(compareStrings);
  const stickyOf = new Map(cookies.map((c, i) => [c, stickyView(c, i)]));

  // The http routes with an upstream (those with servers), in order.
  const served: NamedRoute[] = [];
  const upstreams: NginxUpstreamView[] = [];
  for (let i = 0; i < http.length; i++) {
    const n = http[i] as NamedRoute;
    if (n.servers.length === 0) continue;
    served.push(n);
    const cookie = n.route.stickyCookie;
    upstreams.push(new UpstreamView(n, cookie === undefined ? undefined : stickyOf.get(cookie)));
  }
  // Files of the routes' policies, next to the config: pages, and htpasswd files (0640).
  // Nginx reads these paths relative to its prefix (-p), not to the config: written absolute.
  const dir = filesDir ?? path.dirname(output.file);
  const base = policyFileBase(output.file);
  const filesOf = new Map<NamedRoute, PolicyFileNames>();
  const policyFiles: RenderedFile[] = [];
  for (let i = 0; i < served.length; i++) {
    const n = served[i] as NamedRoute;
    const page = pageContent(n.route);
    const users = htpasswdContent(n.route);
    if (page === undefined && users === undefined) continue;
    const files: PolicyFileNames = {};
    if (page !== undefined) {
      const name = `${base}.${n.name}.nginx-page.html`;
      files.page = nginxWord(joinPath(dir, name), 'output file');
      policyFiles.push({ name, content: page });
    }
    if (users !== undefined) {
      const name = `${base}.${n.name}.nginx.htpasswd`;
      files.users = nginxWord(joinPath(dir, name), 'output file');
      policyFiles.push({ name, content: users, private: true });
    }
    filesOf.set(n, files);
  }
  const ctx: Context = { upstreamOf: httpUpstream, stickyOf, filesOf };

  // Routes per host, in canonical order.
  const byHost = new Map<string, NamedRoute[]>();
  const defaults: NamedRoute[] = [];
  for (let i = 0; i < http.length; i++) {
    const n = http[i] as NamedRoute;
    const routeHosts = n.route.hosts;
    for (let j = 0; j < routeHosts.length; j++) {
      const h = routeHosts[j] as string;
      const list = byHost.get(h);
      if (list) list.push(n);
      else byHost.set(h, [n]);
    }
    if (n.route.defaultBackend) defaults.push(n);
  }
  // Host names are ASCII: the native sort is code-unit order, like compareStrings, without a callback.
  const hosts = [...byHost.keys()].sort();

  const proxyTrusted = output.http.proxyProtocol?.trusted;
  const httpListen = `${listenAddress(output.http.address, output.http.port, 'http')}${proxyTrusted ? ' proxy_protocol' : ''}`;
  const httpsPort = https?.port ?? 443;
  const httpsRedirect = `https://$host${httpsPort === 443 ? '' : `:${httpsPort}`}$request_uri`;
  const listeners: Array<{ listener: Listener; listen: string }> = [
    { listener: { kind: 'http', httpsRedirect }, listen: httpListen },
  ];
  if (https) {
    const sni = stream ? stream.sni : false;
    listeners.push({
      listener: { kind: 'https', httpsRedirect },
      // With passthrough, the stream server owns the HTTPS port and hands the rest over this socket.
      listen: sni
        ? `${sni.terminateSocket} ssl http2 proxy_protocol`
        : `${listenAddress(https.address, https.port, 'https')} ssl http2`,
    });
  }

  const certificateFor = (routesOfHost: readonly NamedRoute[], host: string): NginxServerView['certificate'] => {
    if (!https) return false;
    const own = routesOfHost.find((n) => n.route.sslCert !== undefined)?.route;
    // An ACME host: its issued certificate; before that, the default one (or no TLS server).
    const issued = own === undefined ? acme?.certificates.get(host) : undefined;
    if (issued === null && https.defaultCert === undefined) return false;
    const file = own?.sslCert ?? issued ?? https.defaultCert ?? `${host}.pem`;
    const key = own?.sslCert !== undefined ? (own.sslKey ?? own.sslCert) : file;
    return {
      cert: nginxWord(certificatePath(https.certDir, file), 'TLS certificate'),
      key: nginxWord(certificatePath(https.certDir, key), 'TLS key'),
    };
  };

  const acmeLocation = acme
    ? { path: ACME_CHALLENGE_PATH, pass: `http://${nginxWord(acme.responder, 'acme.challenge.reachAt')}` }
    : undefined;
  const servers: NginxServerView[] = [];
  for (const { listener, listen } of listeners) {
    const tls = listener.kind === 'https';
    const defaultCert = https?.defaultCert;
    servers.push({
      listen: `${listen} default_server`,
      serverNames: '_',
      certificate:
        tls && defaultCert !== undefined && https
          ? {
              cert: nginxWord(certificatePath(https.certDir, defaultCert), 'https.defaultCert'),
              key: nginxWord(certificatePath(https.certDir, defaultCert), 'https.defaultCert'),
            }
          : false,
      rejectHandshake: tls && defaultCert === undefined,
      redirect: false,
      locations: locationsFor(defaults, listener, ctx),
      ...(acmeLocation && !tls ? { acme: acmeLocation } : {}),
    });
    // Hosts whose server blocks come out the same share one block (a host and its aliases). A
    // block is fixed by the host's routes, its redirect and its certificate, so that is the key,
    // and the locations are built once per set of routes.
    const groups = new Map<string, { names: string[]; server: NginxServerView }>();
    const locationsByRoutes = new Map<string, NginxLocationView[]>();
    // This listener's servers in the order of their first host.
    const ordered: NginxServerView[] = [];
    for (let i = 0; i < hosts.length; i++) {
      const h = hosts[i] as string;
      const routesOfHost = byHost.get(h) ?? [];
      const only = routesOfHost.length === 1 ? (routesOfHost[0] as NamedRoute) : undefined;
      const redirect = redirectFor(routesOfHost, h, listener);
      const certificate = tls ? certificateFor(routesOfHost, h) : false;
      // No certificate for a TLS server yet (an ACME host): the default server refuses it.
      if (tls && certificate === false) continue;
      if (only !== undefined && only.route.hosts.length === 1) {
        // The one host of one route (the usual case): no other host has these routes, so no
        // other shares its block or its locations. Written without the groups' look-ups.
        const server: NginxServerView = {
          listen,
          serverNames: h,
          certificate,
          rejectHandshake: false,
          redirect,
          locations: locationsFor(routesOfHost, listener, ctx),
        };
        if (acmeLocation && !tls) server.acme = acmeLocation;
        ordered.push(server);
        continue;
      }
      const routesKey = only !== undefined ? only.name : routesOfHost.map((n) => n.name).join(' ');
      const key =
        redirect === false && certificate === false
          ? routesKey
          : `${routesKey}\u0000${redirect}\u0000${certificate ? `${certificate.cert} ${certificate.key}` : ''}`;
      const group = groups.get(key);
      if (group) {
        group.names.push(h);
        continue;
      }
      let locations = locationsByRoutes.get(routesKey);
      if (!locations) {
        locations = locationsFor(routesOfHost, listener, ctx);
        locationsByRoutes.set(routesKey, locations);
      }
      const server: NginxServerView = {
        listen,
        serverNames: '',
        certificate,
        rejectHandshake: false,
        redirect,
        locations,
      };
      if (acmeLocation && !tls) server.acme = acmeLocation;
      groups.set(key, { names: [h], server });
      ordered.push(server);
    }
    // Each group's server object is its own: named in place, not copied.
    groups.forEach(({ names, server }) => {
      server.serverNames = names.length === 1 ? (names[0] as string) : names.join(' ');
    });
    for (let i = 0; i < ordered.length; i++) servers.push(ordered[i] as NginxServerView);
  }

  const longest = hosts.reduce((max, h) => Math.max(max, h.length), 1);
  const servedRoutes = http.length;
  let backendCount = 0;
  for (let i = 0; i < served.length; i++) backendCount += (served[i] as NamedRoute).servers.length;
  return {
    notice: GENERATED_NOTICE,
    summary: `${servedRoutes} http route(s), ${hosts.length} host(s), ${backendCount} server(s)`,
    pidFile: nginxWord(joinPath(runDir, 'nginx.pid'), 'runDir'),
    errorLog: nginxWord(joinPath(runDir, 'error.log'), 'runDir'),
    temp: {
      clientBody: nginxWord(joinPath(runDir, 'client_body_temp'), 'runDir'),
      proxy: nginxWord(joinPath(runDir, 'proxy_temp'), 'runDir'),
      fastcgi: nginxWord(joinPath(runDir, 'fastcgi_temp'), 'runDir'),
      uwsgi: nginxWord(joinPath(runDir, 'uwsgi_temp'), 'runDir'),
      scgi: nginxWord(joinPath(runDir, 'scgi_temp'), 'runDir'),
    },
    workerConnections: output.workerConnections,
    serverNamesHash: serverNamesHash(hosts.length, longest),
    sticky: [...stickyOf.values()],
    upstreams,
    servers,
    realIpFromUnix: stream !== false && stream.sni !== false,
    stream,
    notes,
    rateZones: rateZones(served),
    proxyProtocol: proxyTrusted
      ? {
          trusted: trustedSources(proxyTrusted, 'http.proxyProtocol.trusted').split(' '),
          header: !(stream !== false && stream.sni !== false),
        }
      : false,
    policyFiles,
    accessLog: accessLogView(output, runDir),
  };
}

function accessLogView(output: NginxOutput, runDir: string): NginxView['accessLog'] {
  if (!output.accessLog) return false;
  const f = nginxAccessLogFormat(output.accessLog.format);
  return {
    maps: f.maps,
    format: f.definition,
    name: f.name,
    file: nginxWord(joinPath(runDir, 'access.log'), 'runDir'),
  };
}

/** A stream upstream: like the HTTP one, but stream has no `ip_hash` (hash on the client address instead). */
function streamUpstream(n: NamedRoute): NginxStreamUpstreamView {
  const r = n.route;
  const check = r.healthCheck;
  const params = check
    ? `max_fails=${PASSIVE_MAX_FAILS} fail_timeout=${Math.max(1, Math.ceil(check.intervalMs / 1000))}s`
    : '';
  const balance =
    r.ipHash || r.balance === 'source'
      ? 'hash $remote_addr consistent'
      : r.balance === 'leastconn'
        ? 'least_conn'
        : r.balance === 'random'
          ? 'random'
          : false;
  return {
    name: n.name,
    about: `cluster ${r.cluster}, service ${r.service}, rule ${r.rule}`,
    balance,
    servers: n.servers.map((s) => ({ address: hostPort(s.address, s.port), params })),
  };
}

/** The stream block: TCP routes on their ports, TLS passthrough on the HTTPS port. */
function streamView(
  output: NginxOutput,
  runDir: string,
  tcpRoutes: readonly NamedRoute[],
  passthroughRoutes: readonly NamedRoute[],
  notes: string[],
): false | NginxStreamView {
  const upstreams: NginxStreamUpstreamView[] = [];
  const tcp: NginxStreamView['tcp'] = [];
  const ports = new Set<number>();
  for (const n of tcpRoutes) {
    const r = n.route;
    const about = `${r.cluster}/${r.service}`;
    if (r.listenPort === undefined) notes.push(`tcp route ${about} has no listen port; not routed`);
    else if (ports.has(r.listenPort)) notes.push(`tcp port ${r.listenPort} of ${about} is already taken; not routed`);
    else if (n.servers.length === 0)
      notes.push(`tcp route ${about} (port ${r.listenPort}) has no running backend; not routed`);
    else if (r.backendTls?.verify) {
      // Nginx checks a backend certificate against a name, and a TCP route has none to give.
      notes.push(
        `tcp route ${about} (port ${r.listenPort}) is not served: Nginx cannot verify its backend certificate without a host name (turn verification off, or use HAProxy)`,
      );
    } else {
      ports.add(r.listenPort);
      upstreams.push(streamUpstream(n));
      tcp.push({
        listen: listenAddress(output.http.address, r.listenPort, 'tcp route'),
        upstream: n.name,
        about,
        ssl: r.backendTls !== undefined,
      });
    }
  }
  let sni: NginxStreamView['sni'] = false;
  if (passthroughRoutes.length > 0 && !output.https) {
    notes.push(
      `${passthroughRoutes.length} TLS passthrough route(s) are not routed: passthrough needs the https listener of this output`,
    );
  } else if (passthroughRoutes.length > 0 && output.https) {
    const socket = (name: string) => nginxWord(`unix:${joinPath(runDir, name)}`, 'runDir');
    const routes: Array<{ key: string; value: string }> = [];
    const seen = new Set<string>();
    let fallback: string | undefined;
    for (const n of passthroughRoutes) {
      const r = n.route;
      if (n.servers.length === 0) {
        notes.push(`TLS passthrough route ${r.cluster}/${r.service} has no running backend; not routed`);
        continue;
      }
      upstreams.push(streamUpstream(n));
      for (const h of r.hosts) {
        // First claim wins; the route builder already reports conflicts.
        if (seen.has(h)) continue;
        seen.add(h);
        routes.push({ key: h, value: n.name });
      }
      if (r.defaultBackend && fallback === undefined) fallback = n.name;
    }
    routes.sort((a, b) => compareStrings(a.key, b.key));
    const targets = routes.map((e) => ({ key: e.key, value: TLS_PASSTHROUGH_UPSTREAM }));
    targets.push({ key: 'default', value: fallback ? TLS_PASSTHROUGH_UPSTREAM : TLS_TERMINATE_UPSTREAM });
    routes.push({ key: 'default', value: fallback ?? TLS_TERMINATE_UPSTREAM });
    const longest = routes.reduce((max, e) => Math.max(max, e.key.length), 1);
    sni = {
      listen: listenAddress(output.https.address, output.https.port, 'https'),
      targets,
      routes,
      // The `default` entry is not hashed.
      mapHash: mapHash(routes.length - 1, longest),
      terminateUpstream: TLS_TERMINATE_UPSTREAM,
      terminateSocket: socket('interlock-https.sock'),
      passthroughUpstream: TLS_PASSTHROUGH_UPSTREAM,
      passthroughSocket: socket('interlock-passthrough.sock'),
    };
  }
  if (tcp.length === 0 && sni === false) return false;
  const module = output.streamModule ?? DEBIAN_STREAM_MODULE;
  return {
    loadModule: module === false ? false : nginxWord(module, 'streamModule'),
    upstreams,
    sni,
    tcp,
  };
}

/** Renders the Nginx config as one file, named after the output's `file`. */
export function renderNginx(
  routes: readonly Route[],
  output: NginxOutput,
  options: NginxRenderOptions,
): RenderedFile[] {
  const view = nginxView(routes, output, options.runDir, options.acme, options.dir);
  const content = renderTemplate(options.template, view, NGINX_FAST);
  return [{ name: path.basename(output.file), content }, ...view.policyFiles];
}
