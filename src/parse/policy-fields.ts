/**
 * Strict parsers for the traffic-policy labels (issue 14), in the style of fields.ts: each accepts
 * a small explicit character set, anchors on the whole value, and returns a typed value or an
 * error as data. Values that the proxies quote (header values) keep only printable ASCII without
 * the characters either proxy cannot escape (`"`, `\`, `$`); the renderers escape the rest.
 */
import type { FieldResult } from './fields.ts';
import { quoteValue } from './fields.ts';

function ok<T>(value: T): FieldResult<T> {
  return { ok: true, value };
}
function fail<T>(error: string, fix?: string): FieldResult<T> {
  return fix === undefined ? { ok: false, error } : { ok: false, error, fix };
}

// ---------- addresses ----------

const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** The compressed form of an IPv6 address, as the WHATWG URL parser writes it (no node:net in the pure core). */
function normalizeIPv6(raw: string): string | undefined {
  if (!/^[0-9A-Fa-f:.]{2,45}$/.test(raw)) return undefined;
  try {
    const host = new URL(`http://[${raw}]/`).hostname;
    return host.length > 2 ? host.slice(1, -1) : undefined;
  } catch {
    return undefined;
  }
}

/** The 128 bits of a normalized IPv6 address as eight 16-bit groups. */
function ipv6Groups(normalized: string): number[] {
  const [head = '', tail] = normalized.split('::');
  const part = (s: string) => (s === '' ? [] : s.split(':').map((g) => Number.parseInt(g, 16)));
  const h = part(head);
  const t = tail === undefined ? [] : part(tail);
  return [...h, ...new Array(8 - h.length - t.length).fill(0), ...t];
}

/** True when the bits after `prefix` are all zero. */
function hostBitsZero(words: number[], wordBits: number, prefix: number): boolean {
  return words.every((w, i) => {
    const start = i * wordBits;
    if (start + wordBits <= prefix) return true;
    const keep = Math.max(0, prefix - start);
    const mask = (1 << (wordBits - keep)) - 1;
    return (w & mask) === 0;
  });
}

function maskWords(words: number[], wordBits: number, prefix: number): number[] {
  return words.map((w, i) => {
    const keep = Math.min(wordBits, Math.max(0, prefix - i * wordBits));
    return keep === 0 ? 0 : w & ~((1 << (wordBits - keep)) - 1) & ((1 << wordBits) - 1);
  });
}

function ipv6Text(groups: number[]): string {
  return normalizeIPv6(groups.map((g) => g.toString(16)).join(':')) ?? groups.join(':');
}

/**
 * An IPv4 or IPv6 network in CIDR form (`10.0.0.0/8`, `2001:db8::/32`), or one address (taken as
 * /32 or /128). Normalized: IPv6 compressed and lower-case, the prefix always written. Bits set
 * after the prefix are refused (`10.0.0.1/8` is most likely a typo), with the network as the fix.
 */
export function parseCidr(raw: string): FieldResult<string> {
  const m = /^([^/]*)(?:\/([0-9]{1,3}))?$/.exec(raw);
  const addr = m?.[1] ?? '';
  const prefixText = m?.[2];
  const what = 'an address or network is written as 192.0.2.0/24, 192.0.2.7, 2001:db8::/32 or 2001:db8::7';
  if (!m) return fail(`not an address or a network (${what.slice(3)})`, 'write one network or address per item');
  if (IPV4_RE.test(addr)) {
    const prefix = prefixText === undefined ? 32 : Number(prefixText);
    if (prefix > 32) return fail('an IPv4 prefix length is at most 32');
    const words = addr.split('.').map(Number);
    if (!hostBitsZero(words, 8, prefix)) {
      return fail(
        `${addr}/${prefix} has bits set after the prefix`,
        `write the network ${maskWords(words, 8, prefix).join('.')}/${prefix}, or the address alone`,
      );
    }
    return ok(`${addr}/${prefix}`);
  }
  const v6 = addr.includes(':') ? normalizeIPv6(addr) : undefined;
  if (v6 === undefined) return fail(`not an IPv4 / IPv6 address or network`, `${what}`);
  const prefix = prefixText === undefined ? 128 : Number(prefixText);
  if (prefix > 128) return fail('an IPv6 prefix length is at most 128');
  const groups = ipv6Groups(v6);
  if (!hostBitsZero(groups, 16, prefix)) {
    return fail(
      `${v6}/${prefix} has bits set after the prefix`,
      `write the network ${ipv6Text(maskWords(groups, 16, prefix))}/${prefix}, or the address alone`,
    );
  }
  return ok(`${v6}/${prefix}`);
}

// ---------- numbers ----------

export const MAX_RATE_PER_SECOND = 100_000;

/** Requests per second per client address: a whole number from 1 to 100000. */
export function parseRatePerSecond(raw: string): FieldResult<number> {
  const digits = /^([1-9][0-9]{0,5})(?:r\/s)?$/.exec(raw)?.[1];
  if (digits === undefined || Number(digits) > MAX_RATE_PER_SECOND) {
    return fail(
      `a rate limit is a whole number of requests per second from 1 to ${MAX_RATE_PER_SECOND}`,
      'write e.g. 10 (requests per second per client address)',
    );
  }
  return ok(Number(digits));
}

/** Requests a client may send above the rate at once: a whole number from 0 to 100000. */
export function parseBurst(raw: string): FieldResult<number> {
  if (!/^(0|[1-9][0-9]{0,5})$/.test(raw) || Number(raw) > MAX_RATE_PER_SECOND) {
    return fail(`a burst is a whole number of requests from 0 to ${MAX_RATE_PER_SECOND}`, 'write e.g. 20');
  }
  return ok(Number(raw));
}

// ---------- headers ----------

export const MAX_HEADER_VALUE_LENGTH = 1024;

/**
 * Header names interlock sets itself, or that only the proxy may manage: a label cannot set or
 * remove them. Lower-case; the fix names the preset that covers it, when there is one.
 */
export const RESERVED_HEADERS: ReadonlyMap<string, string> = new Map([
  ['strict-transport-security', 'use the hsts label (a preset), not a free header'],
  ['x-request-id', 'use the request_id label (a preset), not a free header'],
  ['x-forwarded-for', 'X-Forwarded-* and X-Real-IP are always set by interlock from the client connection'],
  ['x-forwarded-proto', 'X-Forwarded-* and X-Real-IP are always set by interlock from the client connection'],
  ['x-forwarded-host', 'X-Forwarded-* and X-Real-IP are always set by interlock from the client connection'],
  ['x-forwarded-port', 'X-Forwarded-* and X-Real-IP are always set by interlock from the client connection'],
  ['x-real-ip', 'X-Forwarded-* and X-Real-IP are always set by interlock from the client connection'],
  ['forwarded', 'X-Forwarded-* and X-Real-IP are always set by interlock from the client connection'],
  ['host', 'the Host header is the one the client sent; route on hosts instead'],
  ['connection', 'hop-by-hop headers are managed by the proxy'],
  ['upgrade', 'hop-by-hop headers are managed by the proxy (use websocket labels)'],
  ['keep-alive', 'hop-by-hop headers are managed by the proxy'],
  ['te', 'hop-by-hop headers are managed by the proxy'],
  ['trailer', 'hop-by-hop headers are managed by the proxy'],
  ['transfer-encoding', 'message framing is managed by the proxy'],
  ['content-length', 'message framing is managed by the proxy'],
  ['content-encoding', 'use the compression label instead'],
  ['set-cookie', 'cookies belong to the application (sticky sessions have their own label)'],
]);

/**
 * A header name: letters, digits and inner `-` (a subset of the RFC 9110 token that both proxies
 * take bare, without quoting), at most 64. Reserved names are refused with the label to use.
 */
export function parseHeaderName(raw: string): FieldResult<string> {
  if (!/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?$/.test(raw)) {
    return fail(
      'a header name holds only letters, digits and inner `-` (at most 64)',
      'write a name such as X-Frame-Options',
    );
  }
  const reserved = RESERVED_HEADERS.get(raw.toLowerCase());
  if (reserved !== undefined) return fail(`${raw} cannot be set by a label`, reserved);
  return ok(raw);
}

/**
 * A header value: printable ASCII (space to `~`) without `"`, `\` and `$`, which one proxy or the
 * other cannot escape in a quoted string (Nginx expands `$` everywhere and has no escape for it);
 * no leading or trailing space; at most 1024 characters; not empty (remove the header instead).
 */
export function parseHeaderValue(raw: string): FieldResult<string> {
  if (raw.length === 0) return fail('a header value cannot be empty', 'to drop a header, use the remove label');
  if (raw.length > MAX_HEADER_VALUE_LENGTH) {
    return fail(`a header value is at most ${MAX_HEADER_VALUE_LENGTH} characters (this one has ${raw.length})`);
  }
  for (const ch of raw) {
    const code = ch.codePointAt(0) ?? 0;
    if (code < 0x20 || code > 0x7e || ch === '"' || ch === '\\' || ch === '$') {
      return fail(
        `a header value holds only printable ASCII without \`"\`, \`\\\` and \`$\` (found ${quoteValue(ch)})`,
        'remove the character; line breaks, tabs and non-ASCII text cannot be sent in a header',
      );
    }
  }
  if (raw !== raw.trim()) return fail('a header value cannot start or end with a space');
  return ok(raw);
}

export interface HeaderPair {
  name: string;
  value: string;
}

/** `Name: value`, as in an HTTP message. */
export function parseHeaderPair(raw: string): FieldResult<HeaderPair> {
  const colon = raw.indexOf(':');
  if (colon < 0) return fail('a header is written `Name: value`', 'write e.g. X-Frame-Options: DENY');
  const name = parseHeaderName(raw.slice(0, colon));
  if (!name.ok) return name;
  const value = parseHeaderValue(raw.slice(colon + 1).replace(/^ +/, ''));
  if (!value.ok) return value;
  return ok({ name: name.value, value: value.value });
}

export interface HstsValue {
  maxAge: number;
  includeSubDomains?: boolean;
  preload?: boolean;
}

export const MAX_HSTS_MAX_AGE = 63_072_000;

/**
 * HSTS, as the header is written (`max-age=31536000; includeSubDomains; preload`, directives in
 * any case and order), or the number of seconds alone. At most two years; preload needs
 * includeSubDomains and at least one year (the browsers' preload list requires both).
 */
export function parseHsts(raw: string): FieldResult<HstsValue> {
  const parts = raw.split(';').map((p) => p.replace(/^ +| +$/g, ''));
  let maxAge: number | undefined;
  const out: HstsValue = { maxAge: 0 };
  const example = 'write e.g. max-age=31536000; includeSubDomains';
  for (const part of parts) {
    const lower = part.toLowerCase();
    const age = /^(?:max-age=)?([0-9]{1,9})$/.exec(lower);
    if (age && maxAge === undefined) maxAge = Number(age[1]);
    else if (lower === 'includesubdomains' && !out.includeSubDomains) out.includeSubDomains = true;
    else if (lower === 'preload' && !out.preload) out.preload = true;
    else
      return fail(`${quoteValue(part, 40)} is not an HSTS directive (max-age=N, includeSubDomains, preload)`, example);
  }
  if (maxAge === undefined) return fail('HSTS needs a max-age', example);
  if (maxAge > MAX_HSTS_MAX_AGE) return fail(`an HSTS max-age is at most ${MAX_HSTS_MAX_AGE} seconds (two years)`);
  if (out.preload && (!out.includeSubDomains || maxAge < 31_536_000)) {
    return fail('preload needs includeSubDomains and a max-age of at least 31536000', example);
  }
  out.maxAge = maxAge;
  return ok(out);
}

/** The header value of a parsed HSTS setting, canonical. */
export function hstsHeader(h: HstsValue): string {
  return `max-age=${h.maxAge}${h.includeSubDomains ? '; includeSubDomains' : ''}${h.preload ? '; preload' : ''}`;
}

// ---------- compression ----------

export const MAX_COMPRESS_TYPES = 32;

/** A media type without parameters (`text/html`, `application/json`, `image/svg+xml`), lower-cased. */
export function parseMediaType(raw: string): FieldResult<string> {
  const t = /^[A-Za-z0-9][A-Za-z0-9.+-]{0,63}\/[A-Za-z0-9][A-Za-z0-9.+-]{0,63}$/.test(raw)
    ? raw.toLowerCase()
    : undefined;
  if (t === undefined) {
    return fail('a content type is type/subtype: letters, digits, `.`, `+` and `-`', 'write e.g. text/html');
  }
  return ok(t);
}

// ---------- files named by labels (basic auth users, error pages) ----------

/**
 * A file named by a label: a plain name inside the config's `policyFiles` folder (a Docker
 * secret's name, when that folder is /run/secrets), never a path: letters, digits, `.`, `_`, `-`,
 * not starting with `.`, at most 128.
 */
export function parsePolicyFileName(raw: string): FieldResult<string> {
  if (!/^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/.test(raw)) {
    return fail(
      'a file is named by its name in the policyFiles folder (letters, digits, `.`, `_`, `-`; no `/`, not starting with `.`)',
      'write the Docker secret or file name, e.g. web-users',
    );
  }
  return ok(raw);
}

/**
 * An HTTP auth realm (the name of the protected area, which browsers hardly show any more): 1 to
 * 64 letters, digits and `. _ -`, one word, so that it needs no escaping in either proxy.
 */
export function parseRealm(raw: string): FieldResult<string> {
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(raw)) {
    return fail('a realm is 1 to 64 letters, digits and `. _ -`', 'write e.g. staff-only');
  }
  return ok(raw);
}

export interface HtpasswdUser {
  name: string;
  /** A crypt(3) hash both proxies check: bcrypt (`$2a$`, `$2b$`, `$2y$`), SHA-256 (`$5$`) or SHA-512 (`$6$`). */
  hash: string;
}

export const MAX_HTPASSWD_USERS = 1000;
export const MAX_POLICY_FILE_BYTES = 256 * 1024;

const BCRYPT_RE = /^\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$/;
const SHA_CRYPT_RE = /^\$[56]\$(rounds=[1-9][0-9]{3,8}\$)?[./A-Za-z0-9]{1,16}\$[./A-Za-z0-9]{43,86}$/;

/**
 * Why a password field is not accepted: HAProxy checks passwords with the system's crypt(3)
 * (glibc / libxcrypt), which knows bcrypt and SHA-crypt but not Apache's `$apr1$` nor `{SHA}`;
 * Nginx checks those too. So only the hashes both take pass, and anything else is refused, a
 * plain-text password above all.
 */
function hashProblem(hash: string): string | undefined {
  if (BCRYPT_RE.test(hash) || SHA_CRYPT_RE.test(hash)) return undefined;
  if (hash.startsWith('$apr1$')) return "an Apache MD5 ($apr1$) hash, which HAProxy's crypt(3) cannot check";
  if (hash.startsWith('{SHA}') || hash.startsWith('{SSHA}')) return 'a {SHA} hash, which HAProxy cannot check';
  if (hash.startsWith('$1$')) return 'an MD5-crypt ($1$) hash, too weak to accept';
  if (hash.startsWith('{PLAIN}')) return 'a plain-text password';
  if (/^\$2[aby]\$|^\$[56]\$/.test(hash)) return 'a malformed bcrypt / SHA-crypt hash';
  return 'not a bcrypt or SHA-crypt hash (a plain-text password, or a hash neither proxy checks the same way)';
}

/**
 * An htpasswd file: `user:hash` lines; blank lines and `#` comments are skipped. User names are
 * letters, digits and `. _ @ -` (at most 64; HAProxy takes them as bare words), each once. Hashes:
 * bcrypt or SHA-crypt only (see hashProblem). Errors name the line, never its content.
 */
export function parseHtpasswd(content: string): FieldResult<HtpasswdUser[]> {
  const users: HtpasswdUser[] = [];
  const seen = new Set<string>();
  const fix = 'write one `user:hash` line per user, hashed with `htpasswd -B` (bcrypt) or `mkpasswd -m sha-512`';
  const lines = content.split('\n');
  for (const [i, rawLine] of lines.entries()) {
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    if (line.trim() === '' || line.startsWith('#')) continue;
    const at = `line ${i + 1}`;
    const colon = line.indexOf(':');
    if (colon < 0) return fail(`${at} is not \`user:hash\``, fix);
    const name = line.slice(0, colon);
    // Some tools write `user:hash:comment`; the comment is not part of the hash.
    const hash = line.slice(colon + 1).split(':')[0] ?? '';
    if (!/^[A-Za-z0-9._@-]{1,64}$/.test(name)) {
      return fail(`${at}: a user name is 1 to 64 letters, digits and \`. _ @ -\``, fix);
    }
    const problem = hashProblem(hash);
    if (problem !== undefined) return fail(`${at} (user ${name}): ${problem}`, fix);
    if (seen.has(name)) return fail(`${at}: user ${name} is listed twice`, 'keep one line per user');
    seen.add(name);
    users.push({ name, hash });
    if (users.length > MAX_HTPASSWD_USERS) return fail(`more than ${MAX_HTPASSWD_USERS} users`, 'list fewer users');
  }
  if (users.length === 0) return fail('no users in the file', fix);
  return ok(users);
}

/** The largest error / maintenance page: HAProxy keeps it with its headers in one 16 KiB buffer. */
export const MAX_PAGE_BYTES = 10 * 1024;

/** An error or maintenance page: UTF-8 text (HTML), not empty, no NUL, at most 10 KiB. */
export function parsePage(content: string): FieldResult<string> {
  const bytes = new TextEncoder().encode(content).length;
  if (content.trim() === '') return fail('the page is empty', 'put an HTML page in the file');
  if (bytes > MAX_PAGE_BYTES) {
    return fail(
      `the page has ${bytes} bytes; at most ${MAX_PAGE_BYTES} fit (HAProxy answers from one buffer)`,
      'make the page smaller: link stylesheets and images instead of inlining them',
    );
  }
  if (content.includes('\u0000') || content.includes('\ufffd')) {
    return fail('the page is not UTF-8 text', 'save the page as UTF-8 HTML');
  }
  return ok(content);
}

// ---------- canary groups ----------

/** A canary group name: lower-case letters, digits, `-` and `_`, at most 64. */
export function parseGroupName(raw: string): FieldResult<string> {
  if (!/^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$/.test(raw)) {
    return fail('a canary group is 1 to 64 lower-case letters, digits, `-` and `_`', 'write e.g. web-canary');
  }
  return ok(raw);
}

export const MAX_WEIGHT = 256;

/** A canary weight: a whole number from 1 to 256 (HAProxy's server weight range). */
export function parseWeight(raw: string): FieldResult<number> {
  if (!/^[1-9][0-9]{0,2}$/.test(raw) || Number(raw) > MAX_WEIGHT) {
    return fail(
      `a weight is a whole number from 1 to ${MAX_WEIGHT}`,
      'write e.g. 90 for the stable service and 10 for the canary',
    );
  }
  return ok(Number(raw));
}

// ---------- listener options ----------

/** The access-log formats an output can name (render/access-log.ts writes them for each proxy). */
export const ACCESS_LOG_FORMATS = ['common', 'combined', 'json'] as const;
export type AccessLogFormat = (typeof ACCESS_LOG_FORMATS)[number];
