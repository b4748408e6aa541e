/**
 * The `com.docker.lb.*` service labels of Interlock 2 (Docker EE / MKE layer 7 routing).
 *
 * - `hosts`, `websocket_endpoints`: comma lists (spaces around items allowed, as in Docker's docs).
 * - `redirects`: `SOURCE,TARGET` pairs separated by `;`, as Interlock 2 documents it:
 *   `http://old.example.com,https://new.example.com;old.example.org,https://new.example.org`
 *   (one trailing `;` is ignored, as in Docker's own example). They answer 302, as Interlock 2
 *   did; `redirect_code` (301, 302, 303, 307, 308) changes that for the service.
 *   SOURCE is a host, or `http://HOST` / `https://HOST` for one scheme; TARGET an absolute
 *   http(s) URL. A source host must be one of the service's own hosts, so no service can redirect
 *   a host that belongs to another.
 * - `ssl_cert`, `ssl_key`: Docker secret names; interlock expects files of those names in the
 *   output's certificate directory.
 * - `service_cluster`: in Interlock 2 it picks the proxy group serving the service. Here it must
 *   name the interlock cluster (the key under `clusters` in the config) the service is read from;
 *   otherwise the service is left out of this cluster's routes, listed as skipped with the reason.
 * - `default_backend=true`: the service answers requests for unknown hosts; it needs no `hosts`.
 */
import type { ServiceState } from '../cluster/model.ts';
import {
  type FieldResult,
  parseBoolean,
  parseCookieName,
  parseEnum,
  parseFileName,
  parseHostname,
  parseIdentifier,
  parseNetworkName,
  parsePath,
  parsePort,
  parseRedirectCode,
  parseRedirectSource,
  parseRedirectTarget,
} from '../parse/fields.ts';
import { type DialectOptions, type DialectResult, LabelReader, parseList, sharedSources, splitList } from './labels.ts';
import { DOCKER_LB_POLICY_LABELS, policyLabelLists, readPolicyLabels } from './policy-labels.ts';
import type { Redirect, RouteSpec } from './types.ts';

export const DOCKER_LB_PREFIX = 'com.docker.lb';

export const DOCKER_LB_LABELS = {
  single: [
    'hosts',
    'port',
    'network',
    'context_root',
    'context_root_rewrite',
    'ssl_cert',
    'ssl_key',
    'websocket_endpoints',
    'sticky_session_cookie',
    'redirects',
    'redirect_code',
    'ssl_passthrough',
    'acme',
    'backend_mode',
    'ip_hash',
    'default_backend',
    'service_cluster',
    ...policyLabelLists(DOCKER_LB_POLICY_LABELS).single,
  ],
  multi: [...policyLabelLists(DOCKER_LB_POLICY_LABELS).multi],
} as const;

function parseRedirects(raw: string): FieldResult<Redirect[]> {
  const out: Redirect[] = [];
  for (const [i, pair] of splitList(raw, ';').entries()) {
    // A pair is exactly two items: no trailing `,` is dropped here.
    const parts = pair.split(',').map((item) => item.replace(/^ +| +$/g, ''));
    if (parts.length !== 2 || parts[0] === '' || parts[1] === '') {
      return {
        ok: false,
        error: `redirect ${i + 1} is not a SOURCE,TARGET pair`,
        fix: 'write SOURCE,TARGET pairs separated by `;`, e.g. http://old.example.com,https://new.example.com',
      };
    }
    const from = parseRedirectSource(parts[0] ?? '');
    if (!from.ok)
      return { ok: false, error: `redirect ${i + 1}: ${from.error}`, ...(from.fix ? { fix: from.fix } : {}) };
    const to = parseRedirectTarget(parts[1] ?? '');
    if (!to.ok) return { ok: false, error: `redirect ${i + 1}: ${to.error}`, ...(to.fix ? { fix: to.fix } : {}) };
    out.push({ from: from.value.text, to: to.value });
  }
  return { ok: true, value: out };
}

export function dockerLbDialect(service: ServiceState, options: DialectOptions): DialectResult {
  const labels = new LabelReader(service, options.cluster, options.prefix ?? DOCKER_LB_PREFIX, DOCKER_LB_LABELS);
  if (!labels.any) return { matched: false, specs: [], diagnostics: [] };
  const key = (name: string) => labels.key(name);

  // Decided first: a service meant for another cluster is none of this cluster's business.
  const serviceCluster = labels.get('service_cluster', (v) => {
    const r = parseIdentifier(v);
    return r.ok
      ? r
      : {
          ok: false,
          error: r.error,
          fix: 'write the name of the interlock cluster the service is read from (its key under `clusters` in the config)',
        };
  });
  if (serviceCluster !== undefined && serviceCluster !== options.cluster) {
    return {
      matched: true,
      specs: [],
      diagnostics: labels.diagnostics,
      skip: `${key('service_cluster')} is ${serviceCluster}, not this cluster (${options.cluster})`,
    };
  }

  const spec: RouteSpec = {};
  const hostOptions = { broadWildcards: options.allowBroadWildcards ?? false };
  const hosts = labels.get(
    'hosts',
    parseList(',', (v) => parseHostname(v, hostOptions)),
  );
  if (hosts !== undefined) spec.hosts = [...new Set(hosts)];
  const defaultBackend = labels.get('default_backend', parseBoolean);
  if (defaultBackend !== undefined) spec.defaultBackend = defaultBackend;
  // A context root without hosts answers its path on every host that no route names, like
  // interlock 1.x's "context root instead of a hostname" (a default backend at that path).
  if (!labels.has('hosts') && !labels.has('default_backend') && labels.has('context_root')) {
    spec.defaultBackend = true;
  } else if (!labels.has('hosts') && !defaultBackend) {
    labels.error(
      'label-missing',
      key('hosts'),
      `has ${labels.prefix}.* labels but no ${key('hosts')}: the service is left out`,
      `add ${key('hosts')}=app.example.com (or ${key('default_backend')}=true), or remove the ${labels.prefix}.* labels`,
    );
  }

  const port = labels.get('port', parsePort);
  if (port !== undefined) spec.port = port;
  const network = labels.get('network', parseNetworkName);
  if (network !== undefined) spec.network = network;
  const mode = labels.get('backend_mode', (v) => parseEnum(v, ['task', 'vip'] as const));
  if (mode !== undefined) spec.backendMode = mode;

  const contextRoot = labels.get('context_root', parsePath);
  if (contextRoot !== undefined) spec.path = contextRoot;
  const rewrite = labels.get('context_root_rewrite', parseBoolean);
  if (rewrite !== undefined) {
    if (labels.has('context_root')) spec.stripPath = rewrite;
    else labels.ignored('context_root_rewrite', 'context_root');
  }
  const websockets = labels.get('websocket_endpoints', parseList(',', parsePath));
  if (websockets !== undefined) spec.websocketPaths = websockets;

  const sslCert = labels.get('ssl_cert', parseFileName);
  if (sslCert !== undefined) spec.sslCert = sslCert;
  const sslKey = labels.get('ssl_key', parseFileName);
  if (sslKey !== undefined) {
    if (labels.has('ssl_cert')) spec.sslKey = sslKey;
    else labels.ignored('ssl_key', 'ssl_cert');
  }
  const acme = labels.get('acme', parseBoolean);
  if (acme !== undefined) spec.acme = acme;
  const passthrough = labels.get('ssl_passthrough', parseBoolean);
  if (passthrough !== undefined) spec.sslPassthrough = passthrough;

  const cookie = labels.get('sticky_session_cookie', parseCookieName);
  if (cookie !== undefined) spec.stickyCookie = cookie;
  const ipHash = labels.get('ip_hash', parseBoolean);
  if (ipHash !== undefined) spec.ipHash = ipHash;
  const redirects = labels.get('redirects', parseRedirects);
  if (redirects !== undefined) spec.redirects = redirects;
  const redirectCode = labels.get('redirect_code', parseRedirectCode);
  if (redirectCode !== undefined) {
    if (labels.has('redirects')) spec.redirectCode = redirectCode;
    else labels.ignored('redirect_code', 'redirects');
  }

  const policySources = readPolicyLabels(labels, spec, DOCKER_LB_POLICY_LABELS);

  if (labels.failed) return { matched: true, specs: [], diagnostics: labels.diagnostics };
  const sources = sharedSources('docker-lb', labels.prefix, policySources, () => ({
    ...policySources,
    hosts: key('hosts'),
    port: key('port'),
    network: key('network'),
    backendMode: key('backend_mode'),
    path: key('context_root'),
    stripPath: key('context_root_rewrite'),
    websocketPaths: key('websocket_endpoints'),
    sslCert: key('ssl_cert'),
    sslKey: key('ssl_key'),
    sslPassthrough: key('ssl_passthrough'),
    stickyCookie: key('sticky_session_cookie'),
    ipHash: key('ip_hash'),
    redirects: key('redirects'),
    redirectCode: key('redirect_code'),
    defaultBackend: key('default_backend'),
    acme: key('acme'),
  }));
  return { matched: true, specs: [{ spec, labels: sources }], diagnostics: labels.diagnostics };
}
