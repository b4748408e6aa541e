/**
 * What both renderers share: the file type they return, the error they throw for config values
 * that cannot be written into a proxy file, and the one canonical order and naming of routes, so
 * the HAProxy backend and the Nginx upstream of a route carry the same name, whatever order the
 * routes came in.
 */
import { InterlockError } from '../errors.ts';
import type { Route } from '../routes/types.ts';

/** The built-in templates, by the name of the file they render. */
export type TemplateName = 'haproxy.cfg' | 'nginx.conf';

export interface RenderedFile {
  /** File name relative to the directory of the output's `file`, e.g. `haproxy.cfg`, `haproxy.hosts.map`. */
  name: string;
  content: string;
  /** Holds secrets (password hashes): written 0640 rather than 0644. */
  private?: true;
}

/** A config value (listen address, path) that cannot be written safely into the proxy file. */
export class RenderError extends InterlockError {
  override name = 'RenderError';
}

/** Code-unit order: unlike localeCompare it does not change with the machine's locale. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const IDENTIFIER = /^[A-Za-z0-9_.-]+$/;

/** Characters HAProxy proxy names and Nginx upstream names both accept. */
export function safeIdentifier(raw: string): string {
  if (IDENTIFIER.test(raw)) return raw;
  const s = raw.replace(/[^A-Za-z0-9_.-]/g, '-');
  return s.length > 0 ? s : '-';
}

export interface NamedServer {
  /** Unique within its route. */
  name: string;
  address: string;
  port: number;
  /** Canary weight (1..256); absent: the proxy's default. */
  weight?: number;
}

/**
 * A string built by concatenation is a tree of its pieces (~0.9 KB of them for a 240-character
 * backend); V8 makes it one flat string, in place, when it is converted to a number. The kept
 * texts then hold only their characters (10,000 backends: 2.6 MB instead of 8.8 MB), and a rendered
 * file is searched (indexOf, includes) without each search flattening a copy of it again.
 */
export function flattened(text: string): string {
  return Number.isNaN(Number(text)) ? text : text;
}

export interface NamedRoute {
  route: Route;
  /** `<cluster>__<service>__<n>`: unique, stable under reordering of the input. */
  name: string;
  /** The route's backends, sorted, with unique names. */
  servers: NamedServer[];
}

function serverOrder(a: NamedServer, b: NamedServer): number {
  return compareStrings(a.name, b.name) || compareStrings(a.address, b.address) || a.port - b.port;
}

function namedServers(route: Route): NamedServer[] {
  const backends = route.backends;
  // Usually the names are already safe, unique and sorted: then the backends serve as they are.
  let clean = true;
  for (let i = 0; i < backends.length && clean; i++) {
    const b = backends[i] as NamedServer;
    const prev = backends[i - 1];
    clean = IDENTIFIER.test(b.name) && (prev === undefined || compareStrings(prev.name, b.name) < 0);
  }
  if (clean) return backends;
  const sorted = backends
    .map((b) => ({
      name: safeIdentifier(b.name),
      address: b.address,
      port: b.port,
      ...(b.weight !== undefined ? { weight: b.weight } : {}),
    }))
    .sort(serverOrder);
  const used = new Set<string>();
  return sorted.map((s) => {
    let name = s.name;
    for (let n = 2; used.has(name); n++) name = `${s.name}-${n}`;
    used.add(name);
    return { ...s, name };
  });
}

/**
 * Canonical route order: cluster and service first (the naming relies on it), then what they
 * claim, then, for routes equal in all that, everything else. Compares fields in place: building
 * a key string per route would allocate on the hot path of a 10,000-route render.
 */
function compareRoutes(a: Keyed, b: Keyed): number {
  const x = a.route;
  const y = b.route;
  const byFields =
    compareStrings(x.cluster, y.cluster) ||
    compareStrings(x.service, y.service) ||
    compareStrings(x.mode, y.mode) ||
    (x.listenPort ?? 0) - (y.listenPort ?? 0) ||
    compareStrings(x.path, y.path) ||
    compareStrings(x.rule, y.rule);
  if (byFields !== 0) return byFields;
  a.hosts ??= x.hosts.join(',');
  b.hosts ??= y.hosts.join(',');
  if (a.hosts !== b.hosts) return compareStrings(a.hosts, b.hosts);
  a.tie ??= JSON.stringify({ ...x, backends: a.servers.map((s) => `${s.name} ${s.address} ${s.port}`) });
  b.tie ??= JSON.stringify({ ...y, backends: b.servers.map((s) => `${s.name} ${s.address} ${s.port}`) });
  return compareStrings(a.tie, b.tie);
}

interface Keyed {
  route: Route;
  servers: NamedServer[];
  hosts?: string;
  tie?: string;
}

/**
 * Sorts routes into their canonical order and names them: the n-th route of a service in that
 * order is `<service>__<cluster>__<n>`. Shuffling the input changes nothing. The service comes
 * first because nginx looks upstreams up by name linearly, comparing from the first character:
 * with the distinct part first, `nginx -t` at 10,000 routes took 2 s instead of 5.4 s.
 */
export function nameRoutes(routes: readonly Route[]): readonly NamedRoute[] {
  const held = NAMED.get(routes);
  if (held !== undefined && sameItems(held.input, routes)) return held.named;
  const named = Object.freeze(nameRoutesNow(routes));
  NAMED.set(routes, { input: routes.slice(), named });
  return named;
}

/**
 * The last naming of each routes list: every renderer of a render (HAProxy, Nginx, several
 * outputs) names the same list, and at 10,000 routes each naming sorted and allocated anew
 * (issue 12). Held by the list, checked item by item (a list changed in place is named again);
 * the routes themselves are never changed once built.
 */
const NAMED = new WeakMap<readonly Route[], { input: readonly Route[]; named: readonly NamedRoute[] }>();

function sameItems(a: readonly Route[], b: readonly Route[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function nameRoutesNow(routes: readonly Route[]): NamedRoute[] {
  const keyed: Keyed[] = routes.map((route) => ({ route, servers: namedServers(route) }));
  keyed.sort(compareRoutes);
  if (keyed.every((k) => PLAIN_NAME.test(k.route.service) && PLAIN_NAME.test(k.route.cluster)))
    return plainNames(keyed);
  const perService = new Map<string, number>();
  const used = new Set<string>();
  const out: NamedRoute[] = new Array(keyed.length);
  for (let i = 0; i < keyed.length; i++) {
    const { route, servers } = keyed[i] as Keyed;
    const base = `${safeIdentifier(route.service)}__${safeIdentifier(route.cluster)}`;
    let n = perService.get(base) ?? 0;
    // Only sanitizing can make two services share a base; the counter keeps names apart anyway.
    let name = `${base}__${n}`;
    while (used.has(name)) name = `${base}__${++n}`;
    perService.set(base, n + 1);
    used.add(name);
    out[i] = { route, name, servers };
  }
  return out;
}

/**
 * Identifier characters without `__` and without `_` at either end: `<service>__<cluster>__<n>`
 * of such names splits back into its three parts one way only, so no two routes' names meet.
 */
const PLAIN_NAME = /^[A-Za-z0-9.-]+(?:_[A-Za-z0-9.-]+)*$/;

/**
 * nameRoutes when every service and cluster name is plain (the usual case): the routes of a
 * service are next to each other in canonical order (cluster and service come first), so a
 * counter per run of them gives the names the general case gives, without a map and a set of
 * 10,000 names (issue 12).
 */
function plainNames(keyed: readonly Keyed[]): NamedRoute[] {
  const out: NamedRoute[] = new Array(keyed.length);
  let service: string | undefined;
  let cluster: string | undefined;
  let base = '';
  let n = 0;
  for (let i = 0; i < keyed.length; i++) {
    const { route, servers } = keyed[i] as Keyed;
    if (route.service !== service || route.cluster !== cluster) {
      service = route.service;
      cluster = route.cluster;
      base = `${service}__${cluster}`;
      n = 0;
    }
    out[i] = { route, name: `${base}__${n++}`, servers };
  }
  return out;
}

/** `addr:port`, with IPv6 addresses in brackets (both proxies accept that form). */
export function hostPort(address: string, port: number): string {
  return address.includes(':') && !address.startsWith('[') ? `[${address}]:${port}` : `${address}:${port}`;
}

const LISTEN_ADDRESS = /^(\*|[A-Za-z0-9._-]+|\[?[0-9A-Fa-f:.]+\]?)$/;

/** A listen address from the config (`0.0.0.0`, `::`, `127.0.0.1`, a host name) with its port. */
export function listenAddress(address: string, port: number, what: string): string {
  if (!LISTEN_ADDRESS.test(address)) {
    throw new RenderError(
      `${what} address ${JSON.stringify(address)} is not an IP address, host name or *; it cannot go into the proxy file`,
    );
  }
  return hostPort(address, port);
}

const SAFE_WORD = /^[A-Za-z0-9_.,:@+=~/-]+$/;

function checkPathText(value: string, what: string): void {
  // Control characters would end the directive; nothing can quote them.
  if (/\p{Cc}/u.test(value)) {
    throw new RenderError(`${what} ${JSON.stringify(value)} holds a control character; it cannot go into a proxy file`);
  }
}

/**
 * A file path from the config as one HAProxy word: bare when it is plain, else single-quoted
 * (no escapes and no environment expansion inside single quotes; a `'` is closed, escaped, reopened).
 */
export function haproxyWord(value: string, what: string): string {
  checkPathText(value, what);
  if (SAFE_WORD.test(value)) return value;
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/**
 * A file path from the config as one Nginx word: bare when it is plain, else double-quoted. `$`
 * is refused: some directives (ssl_certificate) expand variables, and Nginx has no escape for it.
 */
export function nginxWord(value: string, what: string): string {
  checkPathText(value, what);
  if (SAFE_WORD.test(value)) return value;
  if (value.includes('$')) {
    throw new RenderError(`${what} ${JSON.stringify(value)} holds a \`$\`, which Nginx would read as a variable`);
  }
  return `"${value.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}

/** Joins a config directory and a file name the way the proxy reads them (always `/`). */
export function joinPath(dir: string, file: string): string {
  if (dir === '.' || dir === '') return file;
  return dir.endsWith('/') ? `${dir}${file}` : `${dir}/${file}`;
}

/**
 * A certificate file of an output: `https.defaultCert` and label file names are inside `certDir`;
 * an absolute path (the pipeline makes `defaultCert` absolute) is used as it is.
 */
export function certificatePath(certDir: string, file: string): string {
  return file.startsWith('/') ? file : joinPath(certDir, file);
}

/** True when a redirect target names a path; without one, the request's own path is kept. */
export function redirectHasPath(to: string): boolean {
  return /^[a-z]+:\/\/[^/]+\/./.test(to);
}

/** Splits a redirect source (`host`, `http://host`, `https://host`) into the schemes it covers and its host. */
export function redirectSource(from: string): { schemes: Array<'http' | 'https'>; host: string } {
  const m = /^(https?):\/\/([^/]+)\/?$/.exec(from);
  if (m) return { schemes: [m[1] as 'http' | 'https'], host: (m[2] ?? '').toLowerCase() };
  return { schemes: ['http', 'https'], host: from.toLowerCase() };
}

/** Number of dot-separated labels after a leading `*.`, e.g. 2 for `*.example.com`. */
export function wildcardDepth(host: string): number | undefined {
  return host.startsWith('*.') ? host.slice(2).split('.').length : undefined;
}

/** Every renderer writes this first: where the file came from, and that edits are overwritten. */
export const GENERATED_NOTICE = 'Generated by interlock. Do not edit: the next render overwrites this file.';

/**
 * ACME as a renderer sees it (only when the config has an `acme` section): where the controller's
 * HTTP-01 responder is, and the certificate of each host that wants one.
 */
export interface AcmeRender {
  /** HOST:PORT of the controller's challenge responder, as every proxy reaches it. */
  responder: string;
  /**
   * Host → absolute path of its certificate file (chain and key in one PEM), or null while none
   * is issued yet (the host is then served with the default certificate, if any).
   */
  certificates: ReadonlyMap<string, string | null>;
}

/** The path HTTP-01 validation requests use (RFC 8555, 8.3). */
export const ACME_CHALLENGE_PATH = '/.well-known/acme-challenge/';
