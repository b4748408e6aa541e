/**
 * Typed routes: what every rule (built-in label dialect or custom function) produces, and what the
 * renderers consume. Every string here has been parsed and checked: no label text reaches a
 * template unparsed.
 */

export type BalanceAlgorithm = 'roundrobin' | 'leastconn' | 'source' | 'first' | 'random';
export const BALANCE_ALGORITHMS: readonly BalanceAlgorithm[] = ['roundrobin', 'leastconn', 'source', 'first', 'random'];

export interface Backend {
  /** Stable server name: `<service>-<slot or task id prefix>`; identifier characters only. */
  name: string;
  /** IPv4/IPv6 address or RFC 1123 host name. */
  address: string;
  port: number;
  /** Server weight (1 to 256) in a weighted canary group; absent: the proxies' default. */
  weight?: number;
}

export interface HealthCheck {
  path: string;
  intervalMs: number;
}

/** HTTP status of a redirect (`redirects`); 302 unless a rule says otherwise, as in Interlock 2. */
export type RedirectCode = 301 | 302 | 303 | 307 | 308;
export const REDIRECT_CODES: readonly RedirectCode[] = [301, 302, 303, 307, 308];
/** A 301 is cached by browsers for good, so a temporary one is the default. */
export const DEFAULT_REDIRECT_CODE: RedirectCode = 302;

export interface Redirect {
  /** Host (or scheme://host) requests come in on. */
  from: string;
  /** Absolute URL they are sent to. */
  to: string;
}

export interface Route {
  cluster: string;
  service: string;
  /** When the service was created (ISO); the oldest claim on a host keeps it. */
  createdAt?: string;
  /** Name of the rule that produced it (`interlock`, `docker-lb`, or a custom rule's name). */
  rule: string;
  mode: 'http' | 'tcp';
  /** For HTTP routes: host names, primary first, then aliases. May hold `*.` wildcards. */
  hosts: string[];
  /** Path prefix this route answers on; `/` for the whole host. */
  path: string;
  /** Remove `path` from the request before it reaches the backend. */
  stripPath: boolean;
  /** For TCP routes: the port the proxy listens on. */
  listenPort?: number;
  backends: Backend[];
  balance: BalanceAlgorithm;
  healthCheck?: HealthCheck;
  /** Cookie name for sticky sessions (needs task addresses, not a VIP). */
  stickyCookie?: string;
  ipHash: boolean;
  /** Paths that carry websockets (long tunnel timeout, Upgrade headers). */
  websocketPaths: string[];
  /** HTTPS only: plain HTTP is redirected, HSTS is sent. */
  sslOnly: boolean;
  /** TLS certificate file name (inside the output's certificate directory). */
  sslCert?: string;
  /** TLS key file name, when it is not in the certificate file (Nginx `ssl_certificate_key`). */
  sslKey?: string;
  /** Connect to the backend with TLS. */
  backendTls?: { verify: boolean };
  /** TLS passthrough: the proxy routes on SNI and does not terminate. */
  sslPassthrough: boolean;
  redirects: Redirect[];
  /** Status of the `redirects`; absent means {@link DEFAULT_REDIRECT_CODE}. */
  redirectCode?: RedirectCode;
  /** This route also answers requests that match no host. */
  defaultBackend: boolean;
  /** Raw HAProxy backend lines; only present when the config opted in. Single-line, checked. */
  rawBackendOptions: string[];
  /** The hosts of this route want ACME certificates (the `acme` label); absent when not. */
  acme?: true;
  /** Traffic policies (README, Traffic policies); absent when the route has none. */
  policies?: RoutePolicies;
  /** A canary group's shared route (README, Traffic policies): the members whose backends it holds. */
  canary?: CanaryShare;
}

/** How a canary group's route shares its traffic between its services. */
export interface CanaryShare {
  group: string;
  /** `weight`: by each member's weight; `replicas`: by running tasks (no member set a weight). */
  split: 'weight' | 'replicas';
  /** Every member, the route's own service first; `share` in percent of the requests (rounded). */
  members: Array<{ service: string; weight?: number; backends: number; share: number }>;
}

// ---------- traffic policies (issue 14) ----------

/** A header change: `set` replaces (or adds), `add` adds another, `remove` deletes. */
export interface HeaderRule {
  action: 'set' | 'add' | 'remove';
  /** A header name (letters, digits, inner `-`); never one interlock manages itself. */
  name: string;
  /** For set and add: printable ASCII without `"`, `\` and `$`; the renderers escape the rest. */
  value?: string;
}

export interface Hsts {
  maxAge: number;
  includeSubDomains?: boolean;
  preload?: boolean;
}

export interface RateLimit {
  /** Requests per second per client address. */
  perSecond: number;
  /** Requests above the rate a client may send at once. */
  burst: number;
}

/** Every traffic policy of a route, checked; a field is absent when the policy is off. */
export interface RoutePolicies {
  /** CIDRs (normalized, prefix always written) a client must be in; others get 403. */
  allowIps?: string[];
  /** CIDRs refused with 403 (before the allow list). */
  denyIps?: string[];
  rateLimit?: RateLimit;
  /** Request header changes, in order; `set` and `remove` only. */
  requestHeaders?: HeaderRule[];
  /** Response header changes, in order. */
  responseHeaders?: HeaderRule[];
  hsts?: Hsts;
  /** Send an `X-Request-Id` to the backend. */
  requestId?: boolean;
  /** Content types compressed with gzip. */
  compress?: string[];
  /** Basic auth: the users of an htpasswd file from the policyFiles folder, parsed. */
  basicAuth?: BasicAuth;
  /** The page the proxy answers its own 502, 503 and 504 with (and the maintenance 503). */
  errorPage?: PolicyPage;
  /** Every request is answered 503 with the error page (or a built-in one); the route stays. */
  maintenance?: true;
}

export interface BasicAuth {
  /** The file's name in the policyFiles folder (for comments and diagnostics). */
  file: string;
  realm: string;
  /** bcrypt or SHA-crypt hashes only (parse/policy-fields.ts). */
  users: Array<{ name: string; hash: string }>;
}

export interface PolicyPage {
  /** The file's name in the policyFiles folder. */
  file: string;
  /** UTF-8 HTML, at most 10 KiB; written to its own file next to the proxy config, never into it. */
  content: string;
}

/**
 * What a rule says about one service before backends are resolved. Built-in dialects produce it
 * from labels; custom rules in a `.ts` config return it. Every field is parsed and checked again
 * before it becomes a {@link Route}, whoever produced it.
 */
export interface RouteSpec {
  /** Host names, primary first. Required for HTTP routes. */
  hosts?: string[];
  /** Port the service listens on inside its tasks. */
  port?: number;
  /** Network whose task addresses are the backends. */
  network?: string;
  /**
   * How backends are addressed: `task` (task addresses on `network`), `vip` (the service VIP on
   * `network`), or `published` (the published port on each node). Default: `task` when a network
   * is given, else `published`.
   */
  backendMode?: 'task' | 'vip' | 'published';
  path?: string;
  stripPath?: boolean;
  mode?: 'http' | 'tcp';
  listenPort?: number;
  balance?: BalanceAlgorithm;
  healthCheck?: { path: string; intervalMs?: number };
  stickyCookie?: string;
  ipHash?: boolean;
  websocketPaths?: string[];
  sslOnly?: boolean;
  sslCert?: string;
  sslKey?: string;
  backendTls?: { verify?: boolean };
  sslPassthrough?: boolean;
  redirects?: Redirect[];
  /** Status of the redirects: 301, 302 (default), 303, 307 or 308. */
  redirectCode?: RedirectCode;
  defaultBackend?: boolean;
  rawBackendOptions?: string[];
  // Traffic policies (HTTP routes only); see RoutePolicies.
  allowIps?: string[];
  denyIps?: string[];
  /** Requests per second per client address, and the burst above it (default 0). */
  rateLimit?: { perSecond: number; burst?: number };
  requestHeaders?: HeaderRule[];
  responseHeaders?: HeaderRule[];
  hsts?: Hsts;
  requestId?: boolean;
  compress?: string[];
  /** Basic auth: the htpasswd file (a name in the config's policyFiles folder) and the realm. */
  basicAuth?: { usersFile: string; realm?: string };
  /** An error page: a file name in the config's policyFiles folder. */
  errorPage?: string;
  /** Answer 503 with the error page (or a built-in one) while keeping the route. */
  maintenance?: boolean;
  /** Share the hosts and path with the other services of this canary group (same cluster). */
  canaryGroup?: string;
  /** This service's weight in its canary group (1 to 256); without: split by running replicas. */
  weight?: number;
  /** Get certificates for the hosts from the config's `acme` issuer (HTTP-01). */
  acme?: boolean;
}

/**
 * The files of the config's `policyFiles` folder (basic-auth users, error pages), read at the edge
 * before routes are built: file name → its text, or why it could not be read. Absent: no folder
 * in the config. Labels only name a file here; they never give a path.
 */
export interface PolicyFiles {
  /** The folder, absolute, for diagnostics. */
  dir: string;
  files: ReadonlyMap<string, string | { error: string }>;
}
