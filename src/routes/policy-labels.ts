/**
 * The traffic-policy labels (issue 14), shared by both dialects: each dialect names them in its
 * own style (interlock 1.x: singular, one value per `name` / `name.N`; Interlock 2: plural
 * comma lists) and this reads them into the RouteSpec's policy fields, with the label behind each
 * field for later diagnostics.
 */
import type { FieldResult } from '../parse/fields.ts';
import { parseBoolean } from '../parse/fields.ts';
import {
  type HeaderPair,
  parseBurst,
  parseCidr,
  parseGroupName,
  parseHeaderName,
  parseHeaderPair,
  parseHsts,
  parseMediaType,
  parsePolicyFileName,
  parseRatePerSecond,
  parseRealm,
  parseWeight,
} from '../parse/policy-fields.ts';
import { type LabelReader, parseList, type SpecField } from './labels.ts';
import type { HeaderRule, RouteSpec } from './types.ts';

/** Each policy's label name under the dialect's prefix; `multi` ones take `name` and `name.N`. */
export interface PolicyLabelNames {
  allowIps: string;
  denyIps: string;
  rateLimit: string;
  rateLimitBurst: string;
  requestHeaderSet: string;
  requestHeaderRemove: string;
  responseHeaderSet: string;
  responseHeaderAdd: string;
  responseHeaderRemove: string;
  hsts: string;
  requestId: string;
  compress: string;
  authUsers: string;
  authRealm: string;
  errorPage: string;
  maintenance: string;
  canaryGroup: string;
  weight: string;
  /** Labels read with `.N` numbering (the others are single). */
  multi: ReadonlyArray<keyof Omit<PolicyLabelNames, 'multi'>>;
}

export const INTERLOCK_POLICY_LABELS: PolicyLabelNames = {
  allowIps: 'allow_ip',
  denyIps: 'deny_ip',
  rateLimit: 'rate_limit',
  rateLimitBurst: 'rate_limit_burst',
  requestHeaderSet: 'request_header_set',
  requestHeaderRemove: 'request_header_remove',
  responseHeaderSet: 'response_header_set',
  responseHeaderAdd: 'response_header_add',
  responseHeaderRemove: 'response_header_remove',
  hsts: 'hsts',
  requestId: 'request_id',
  compress: 'compress',
  authUsers: 'auth_users',
  authRealm: 'auth_realm',
  errorPage: 'error_page',
  maintenance: 'maintenance',
  canaryGroup: 'canary_group',
  weight: 'weight',
  multi: [
    'allowIps',
    'denyIps',
    'requestHeaderSet',
    'requestHeaderRemove',
    'responseHeaderSet',
    'responseHeaderAdd',
    'responseHeaderRemove',
  ],
};

export const DOCKER_LB_POLICY_LABELS: PolicyLabelNames = {
  allowIps: 'allow_ips',
  denyIps: 'deny_ips',
  rateLimit: 'rate_limit',
  rateLimitBurst: 'rate_limit_burst',
  requestHeaderSet: 'request_headers_set',
  requestHeaderRemove: 'request_headers_remove',
  responseHeaderSet: 'response_headers_set',
  responseHeaderAdd: 'response_headers_add',
  responseHeaderRemove: 'response_headers_remove',
  hsts: 'hsts',
  requestId: 'request_id',
  compress: 'compress_types',
  authUsers: 'auth_users',
  authRealm: 'auth_realm',
  errorPage: 'error_page',
  maintenance: 'maintenance',
  canaryGroup: 'canary_group',
  weight: 'weight',
  // A header value may hold `,` and `;`: one header per label, more with `.N`.
  multi: ['requestHeaderSet', 'responseHeaderSet', 'responseHeaderAdd'],
};

type PolicyKey = keyof Omit<PolicyLabelNames, 'multi'>;
const POLICY_KEYS: readonly PolicyKey[] = [
  'allowIps',
  'denyIps',
  'rateLimit',
  'rateLimitBurst',
  'requestHeaderSet',
  'requestHeaderRemove',
  'responseHeaderSet',
  'responseHeaderAdd',
  'responseHeaderRemove',
  'hsts',
  'requestId',
  'compress',
  'authUsers',
  'authRealm',
  'errorPage',
  'maintenance',
  'canaryGroup',
  'weight',
];

/** The label names to add to a dialect's known single / multi lists. */
export function policyLabelLists(names: PolicyLabelNames): { single: string[]; multi: string[] } {
  const multi = new Set(names.multi);
  return {
    single: POLICY_KEYS.filter((k) => !multi.has(k)).map((k) => names[k]),
    multi: POLICY_KEYS.filter((k) => multi.has(k)).map((k) => names[k]),
  };
}

const MULTI = new WeakMap<PolicyLabelNames, ReadonlySet<PolicyKey>>();

/** The multi-valued policy labels of a dialect as a set, made once per dialect. */
function multiOf(names: PolicyLabelNames): ReadonlySet<PolicyKey> {
  let set = MULTI.get(names);
  if (set === undefined) {
    set = new Set(names.multi);
    MULTI.set(names, set);
  }
  return set;
}

/** Header names only (`X-Debug, X-Internal`): to remove. */
const parseNames = parseList(',', parseHeaderName);

/**
 * Reads the policy labels into `spec`; returns the label behind each policy field. Wrong values are
 * recorded on `labels` (the dialect then refuses the service).
 */
export function readPolicyLabels(
  labels: LabelReader,
  spec: RouteSpec,
  names: PolicyLabelNames,
): Readonly<Partial<Record<SpecField, string>>> {
  // Most services set no policy label: nothing to read, the default sources.
  let any = false;
  for (const k of POLICY_KEYS) {
    if (labels.has(names[k])) {
      any = true;
      break;
    }
  }
  if (!any) return policySources(labels, names, 'requestHeaderRemove', 'responseHeaderRemove');
  const multi = multiOf(names);
  // Every value of a label: all `name.N` values for a multi label, the one value otherwise.
  const values = <T>(k: PolicyKey, parse: (raw: string) => FieldResult<T>): T[] | undefined => {
    if (!labels.has(names[k])) return undefined;
    if (multi.has(k)) return labels.getAll(names[k], parse);
    const v = labels.get(names[k], parse);
    return v === undefined ? [] : [v];
  };
  const cidrs = (k: PolicyKey) => values(k, parseList(',', parseCidr))?.flat();

  const allow = cidrs('allowIps');
  if (allow !== undefined) spec.allowIps = allow;
  const deny = cidrs('denyIps');
  if (deny !== undefined) spec.denyIps = deny;

  const rate = labels.get(names.rateLimit, parseRatePerSecond);
  const burst = labels.get(names.rateLimitBurst, parseBurst);
  if (rate !== undefined) spec.rateLimit = burst === undefined ? { perSecond: rate } : { perSecond: rate, burst };
  else if (burst !== undefined && !labels.has(names.rateLimit)) labels.ignored(names.rateLimitBurst, names.rateLimit);

  const pairs = (k: PolicyKey, action: 'set' | 'add'): HeaderRule[] =>
    (values<HeaderPair>(k, parseHeaderPair) ?? []).map((h) => ({ action, name: h.name, value: h.value }));
  const removals = (k: PolicyKey): HeaderRule[] =>
    (values(k, parseNames)?.flat() ?? []).map((name) => ({ action: 'remove', name }));
  const request = [...pairs('requestHeaderSet', 'set'), ...removals('requestHeaderRemove')];
  if (request.length > 0) spec.requestHeaders = request;
  const response = [
    ...pairs('responseHeaderSet', 'set'),
    ...pairs('responseHeaderAdd', 'add'),
    ...removals('responseHeaderRemove'),
  ];
  if (response.length > 0) spec.responseHeaders = response;

  const hsts = labels.get(names.hsts, parseHsts);
  if (hsts !== undefined) spec.hsts = hsts;
  const requestId = labels.get(names.requestId, parseBoolean);
  if (requestId !== undefined) spec.requestId = requestId;
  const compress = labels.get(names.compress, parseList(',', parseMediaType));
  if (compress !== undefined) spec.compress = compress;

  const usersFile = labels.get(names.authUsers, parsePolicyFileName);
  const realm = labels.get(names.authRealm, parseRealm);
  if (usersFile !== undefined) spec.basicAuth = realm === undefined ? { usersFile } : { usersFile, realm };
  else if (realm !== undefined && !labels.has(names.authUsers)) labels.ignored(names.authRealm, names.authUsers);
  const errorPage = labels.get(names.errorPage, parsePolicyFileName);
  if (errorPage !== undefined) spec.errorPage = errorPage;
  const maintenance = labels.get(names.maintenance, parseBoolean);
  if (maintenance !== undefined) spec.maintenance = maintenance;
  const group = labels.get(names.canaryGroup, parseGroupName);
  if (group !== undefined) spec.canaryGroup = group;
  const weight = labels.get(names.weight, parseWeight);
  if (weight !== undefined) spec.weight = weight;

  const requestSource = labels.has(names.requestHeaderSet) ? 'requestHeaderSet' : 'requestHeaderRemove';
  const responseSource = labels.has(names.responseHeaderSet)
    ? 'responseHeaderSet'
    : labels.has(names.responseHeaderAdd)
      ? 'responseHeaderAdd'
      : 'responseHeaderRemove';
  return policySources(labels, names, requestSource, responseSource);
}

const SOURCES = new WeakMap<PolicyLabelNames, Map<string, Readonly<Partial<Record<SpecField, string>>>>>();
const LAST = new WeakMap<
  PolicyLabelNames,
  { prefix: string; request: PolicyKey; response: PolicyKey; sources: Readonly<Partial<Record<SpecField, string>>> }
>();

/**
 * The label behind each policy field: fixed by the prefix and which header labels are used, so one
 * frozen object per such choice, shared by every service (issue 12: one per service was garbage).
 */
function policySources(
  labels: LabelReader,
  names: PolicyLabelNames,
  request: PolicyKey,
  response: PolicyKey,
): Readonly<Partial<Record<SpecField, string>>> {
  // Usually the same choice as for the service before: no key string to build and hash.
  const last = LAST.get(names);
  if (last && last.prefix === labels.prefix && last.request === request && last.response === response) {
    return last.sources;
  }
  let byChoice = SOURCES.get(names);
  if (byChoice === undefined) {
    byChoice = new Map();
    SOURCES.set(names, byChoice);
  }
  const id = `${labels.prefix}\u0000${request}\u0000${response}`;
  let sources = byChoice.get(id);
  if (sources === undefined) {
    sources = Object.freeze(sourcesOf(labels, names, request, response));
    // A few prefixes; the cap only guards against a leak.
    if (byChoice.size > 256) byChoice.clear();
    byChoice.set(id, sources);
  }
  LAST.set(names, { prefix: labels.prefix, request, response, sources });
  return sources;
}

function sourcesOf(
  labels: LabelReader,
  names: PolicyLabelNames,
  request: PolicyKey,
  response: PolicyKey,
): Partial<Record<SpecField, string>> {
  const key = (k: PolicyKey) => labels.key(names[k]);
  return {
    allowIps: key('allowIps'),
    denyIps: key('denyIps'),
    rateLimit: key('rateLimit'),
    requestHeaders: key(request),
    responseHeaders: key(response),
    hsts: key('hsts'),
    requestId: key('requestId'),
    compress: key('compress'),
    basicAuth: key('authUsers'),
    errorPage: key('errorPage'),
    maintenance: key('maintenance'),
    canaryGroup: key('canaryGroup'),
    weight: key('weight'),
  };
}
