/**
 * The `interlock.*` labels of interlock 1.x, with the meanings their users rely on and the old
 * mistakes fixed: booleans are parsed (`ssl_only=false` is off), `health_check` is a path (not a
 * raw HAProxy line), multi-value labels are `name` / `name.N` exactly, `backend_option` is refused
 * unless the config opted in, and a service with interlock labels but no hostname is reported.
 *
 * `interlock.ssl` is accepted and checked for compatibility; HTTPS itself is served by an output's
 * `https` listener for every routed host, so `ssl_only` is the label that changes routing.
 */
import type { ServiceState } from '../cluster/model.ts';
import {
  type FieldResult,
  parseBoolean,
  parseDurationMs,
  parseEnum,
  parseFileName,
  parseHostname,
  parseNetworkName,
  parsePath,
  parsePort,
  parseRawDirective,
} from '../parse/fields.ts';
import { type DialectOptions, type DialectResult, LabelReader, sharedSources } from './labels.ts';
import { INTERLOCK_POLICY_LABELS, policyLabelLists, readPolicyLabels } from './policy-labels.ts';
import { BALANCE_ALGORITHMS, type RouteSpec } from './types.ts';

export const INTERLOCK_PREFIX = 'interlock';

export const INTERLOCK_LABELS = {
  single: [
    'hostname',
    'domain',
    'port',
    'network',
    'ssl',
    'ssl_only',
    'ssl_backend',
    'ssl_backend_tls_verify',
    'ssl_cert',
    'ssl_cert_key',
    'health_check',
    'health_check_interval',
    'balance_algorithm',
    'ip_hash',
    'context_root',
    'context_root_rewrite',
    ...policyLabelLists(INTERLOCK_POLICY_LABELS).single,
    'acme',
  ],
  multi: ['alias_domain', 'websocket_endpoint', 'backend_option', ...policyLabelLists(INTERLOCK_POLICY_LABELS).multi],
  // Marks interlock 1.x's own proxy containers, not a route: a migrated proxy service keeps it.
  ignore: ['ext.name'],
} as const;

/** interlock 1.x wrote HAProxy's `verify` words; booleans are accepted too. */
function parseTlsVerify(raw: string): FieldResult<boolean> {
  const word = parseEnum(raw, ['required', 'none'] as const);
  if (word.ok) return { ok: true, value: word.value === 'required' };
  const bool = parseBoolean(raw);
  return bool.ok ? bool : { ok: false, error: 'not a verify mode', fix: 'write required or none (or true / false)' };
}

/** A path, with a hint for interlock 1.x users who wrote the HAProxy line (`httpchk GET /health`). */
function parseHealthCheck(raw: string): FieldResult<string> {
  const r = parsePath(raw);
  if (r.ok || !/^httpchk\b/i.test(raw)) return r;
  return {
    ok: false,
    error: 'health_check is the path to check, not an HAProxy line',
    fix: 'write only the path, e.g. /healthz',
  };
}

/**
 * interlock 1.x pasted each value after `option ` (`backend_option=forwardfor` → `option forwardfor`);
 * a value already starting with `option ` is taken as the whole line.
 */
function parseBackendOption(raw: string): FieldResult<string> {
  return parseRawDirective(raw.startsWith('option ') ? raw : `option ${raw}`);
}

/** A host label of interlock 1.x holds one host: a comma list gets a hint to use `alias_domain.N`. */
function oneHost(prefix: string, parse: (raw: string) => FieldResult<string>): (raw: string) => FieldResult<string> {
  return (raw) => {
    const r = parse(raw);
    if (r.ok || !raw.includes(',')) return r;
    return {
      ok: false,
      error: r.error,
      fix: `one host per label: put the others in ${prefix}.alias_domain, ${prefix}.alias_domain.1, ...`,
    };
  };
}

const NO_WILDCARD = { wildcard: false };
const parseDomain = (v: string) => parseHostname(v, NO_WILDCARD);
const parseBalance = (v: string) => parseEnum(v, BALANCE_ALGORITHMS);

/** The host parser of each prefix and wildcard setting: made once, not per service (issue 12). */
const HOST_PARSERS = {
  narrow: new Map<string, (raw: string) => FieldResult<string>>(),
  broad: new Map<string, (raw: string) => FieldResult<string>>(),
};

function hostParser(prefix: string, broadWildcards: boolean): (raw: string) => FieldResult<string> {
  const parsers = broadWildcards ? HOST_PARSERS.broad : HOST_PARSERS.narrow;
  let parser = parsers.get(prefix);
  if (parser === undefined) {
    const options = { broadWildcards };
    parser = oneHost(prefix, (v) => parseHostname(v, options));
    parsers.set(prefix, parser);
  }
  return parser;
}

export function interlockDialect(service: ServiceState, options: DialectOptions): DialectResult {
  const labels = new LabelReader(service, options.cluster, options.prefix ?? INTERLOCK_PREFIX, INTERLOCK_LABELS);
  if (!labels.any) return { matched: false, specs: [], diagnostics: [] };
  const key = (name: string) => labels.key(name);
  const spec: RouteSpec = {};
  const parseHost = hostParser(labels.prefix, options.allowBroadWildcards ?? false);

  // ---- hosts ----
  const hostname = labels.raw('hostname');
  const domainLabel = labels.raw('domain');
  const domain = hostname && domainLabel ? labels.parse(domainLabel, parseDomain) : undefined;
  if (!hostname && labels.has('context_root')) {
    // interlock 1.x: "a context root instead of a hostname": the path on every host that no route
    // names, which is what a default backend at that path answers (see README, Label dialects).
    spec.defaultBackend = true;
    if (labels.has('alias_domain')) labels.ignored('alias_domain', 'hostname');
    if (domainLabel) labels.ignored('domain', 'hostname');
  } else if (!hostname) {
    labels.error(
      'label-missing',
      key('hostname'),
      `has ${labels.prefix}.* labels but no ${key('hostname')}: the service is left out`,
      `add ${key('hostname')} (and ${key('domain')}), or remove the ${labels.prefix}.* labels`,
    );
  } else if (!domainLabel || domain !== undefined) {
    const host = parseHost(domain ? `${hostname.value}.${domain}` : hostname.value);
    if (host.ok) spec.hosts = [host.value];
    else labels.invalid(hostname, domain ? `${host.error} (with the domain ${domain})` : host.error, host.fix);
  }
  const aliases = labels.getAll('alias_domain', parseHost);
  if (spec.hosts && aliases.length > 0) spec.hosts = [...new Set([...spec.hosts, ...aliases])];

  // ---- backends ----
  const port = labels.get('port', parsePort);
  if (port !== undefined) spec.port = port;
  const network = labels.get('network', parseNetworkName);
  if (network !== undefined) spec.network = network;

  // ---- path ----
  const contextRoot = labels.get('context_root', parsePath);
  if (contextRoot !== undefined) spec.path = contextRoot;
  const rewrite = labels.get('context_root_rewrite', parseBoolean);
  if (rewrite !== undefined) {
    if (labels.has('context_root')) spec.stripPath = rewrite;
    else labels.ignored('context_root_rewrite', 'context_root');
  }
  const websockets = labels.getAll('websocket_endpoint', parsePath);
  if (websockets.length > 0) spec.websocketPaths = websockets;

  // ---- TLS ----
  // Checked so a wrong value is reported, but HTTPS comes from the output's listener (see above).
  labels.get('ssl', parseBoolean);
  const sslOnly = labels.get('ssl_only', parseBoolean);
  if (sslOnly !== undefined) spec.sslOnly = sslOnly;
  const sslCert = labels.get('ssl_cert', parseFileName);
  if (sslCert !== undefined) spec.sslCert = sslCert;
  const sslKey = labels.get('ssl_cert_key', parseFileName);
  if (sslKey !== undefined) {
    if (labels.has('ssl_cert')) spec.sslKey = sslKey;
    else labels.ignored('ssl_cert_key', 'ssl_cert');
  }
  const acme = labels.get('acme', parseBoolean);
  if (acme !== undefined) spec.acme = acme;
  const sslBackend = labels.get('ssl_backend', parseBoolean);
  const verify = labels.get('ssl_backend_tls_verify', parseTlsVerify);
  // interlock 1.x defaulted to `verify none`: backends on overlay networks rarely carry a
  // certificate for their task address.
  if (sslBackend) spec.backendTls = { verify: verify ?? false };
  else if (verify !== undefined && !labels.has('ssl_backend')) labels.ignored('ssl_backend_tls_verify', 'ssl_backend');

  // ---- balancing and health ----
  const healthPath = labels.get('health_check', parseHealthCheck);
  const interval = labels.get('health_check_interval', parseDurationMs);
  if (healthPath !== undefined) {
    spec.healthCheck = interval === undefined ? { path: healthPath } : { path: healthPath, intervalMs: interval };
  } else if (interval !== undefined && !labels.has('health_check')) {
    labels.ignored('health_check_interval', 'health_check');
  }
  const balance = labels.get('balance_algorithm', parseBalance);
  if (balance !== undefined) spec.balance = balance;
  const ipHash = labels.get('ip_hash', parseBoolean);
  if (ipHash !== undefined) spec.ipHash = ipHash;

  // ---- raw directives ----
  const rawOptions = labels.rawAll('backend_option');
  if (rawOptions.length > 0) {
    if (options.allowRawDirectives) {
      spec.rawBackendOptions = labels.getAll('backend_option', parseBackendOption);
    } else {
      for (const label of rawOptions) {
        labels.warn(
          'raw-directive-refused',
          label.key,
          'raw HAProxy lines from labels are refused; the service is routed without it',
          'set `allowRawDirectives: true` on the interlock rule to trust whoever deploys services with raw proxy lines',
        );
      }
    }
  }

  // ---- traffic policies ----
  const policySources = readPolicyLabels(labels, spec, INTERLOCK_POLICY_LABELS);

  if (labels.failed) return { matched: true, specs: [], diagnostics: labels.diagnostics };
  const sources = sharedSources('interlock', labels.prefix, policySources, () => ({
    ...policySources,
    hosts: key('hostname'),
    port: key('port'),
    network: key('network'),
    backendMode: key('network'),
    path: key('context_root'),
    stripPath: key('context_root_rewrite'),
    websocketPaths: key('websocket_endpoint'),
    sslOnly: key('ssl_only'),
    sslCert: key('ssl_cert'),
    sslKey: key('ssl_cert_key'),
    backendTls: key('ssl_backend'),
    healthCheck: key('health_check'),
    balance: key('balance_algorithm'),
    ipHash: key('ip_hash'),
    rawBackendOptions: key('backend_option'),
    acme: key('acme'),
  }));
  return { matched: true, specs: [{ spec, labels: sources }], diagnostics: labels.diagnostics };
}
