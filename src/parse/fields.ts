/**
 * Strict parsers for every value that can end up in a proxy file. Label values (and custom rule
 * output) are untrusted: whoever deploys a service chooses them. Each parser accepts a small,
 * explicit character set, anchors on the whole value, and returns a typed value or an error as
 * data, so a bad value refuses one service instead of reaching a template.
 *
 * Character rules are chosen so that no accepted value holds anything HAProxy or Nginx treat
 * specially in a config file: no whitespace, `;`, `{`, `}`, quotes, `#`, `\`, `$` or control
 * characters. Non-ASCII is refused everywhere (host names must be written in punycode).
 */
import { createRequire } from 'node:module';
import { REDIRECT_CODES, type RedirectCode } from '../routes/types.ts';

export type FieldResult<T> = { ok: true; value: T } | { ok: false; error: string; fix?: string };

function ok<T>(value: T): FieldResult<T> {
  return { ok: true, value };
}
function fail<T>(error: string, fix?: string): FieldResult<T> {
  return fix === undefined ? { ok: false, error } : { ok: false, error, fix };
}

function escapeText(text: string, quoted: boolean): string {
  let out = '';
  for (const ch of text) {
    const code = ch.codePointAt(0) ?? 0;
    if (quoted && (ch === '"' || ch === '\\')) out += `\\${ch}`;
    else if (code >= 0x20 && code <= 0x7e) out += ch;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (code <= 0xffff) out += `\\u${code.toString(16).padStart(4, '0')}`;
    else out += `\\u{${code.toString(16)}}`;
  }
  return out;
}

/**
 * A value shown in a diagnostic: quoted, with everything outside printable ASCII escaped and long
 * values cut, so a hostile value cannot forge lines in logs or CI annotations.
 */
export function quoteValue(raw: string, max = 60): string {
  const cut = raw.length > max;
  return `"${escapeText(cut ? raw.slice(0, max) : raw, true)}"${cut ? `... (${raw.length} characters)` : ''}`;
}

/** Text from elsewhere (a schema message naming keys from the input) made safe for one diagnostic line. */
export function printable(text: string, max = 300): string {
  return text.length > max ? `${escapeText(text.slice(0, max), false)}...` : escapeText(text, false);
}

/** Names the first character outside `allowed`, escaped, for an error message. */
function firstBadChar(raw: string, allowed: RegExp): string | undefined {
  for (const ch of raw) {
    if (!allowed.test(ch)) return quoteValue(ch);
  }
  return undefined;
}

/**
 * `scheme://host[:port][/path]`, as people paste into labels meant for one part of it. Only for
 * hints: each part is echoed in a fix only after its own parser accepted it.
 */
const PASTED_URL_RE = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/:?#]*)(?::([0-9]+))?(\/[^?#]*)?(?:[?#].*)?$/;
/** `host:port`. */
const HOST_PORT_RE = /^([A-Za-z0-9.-]+):([0-9]+)$/;

// ---------- host names ----------

const HOST_LABEL_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** A whole name of HOST_LABEL_RE parts joined by `.` (checkHostname's fast path). */
const HOSTNAME_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;
const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

export interface HostnameOptions {
  /** Allow a leading `*.` (default true). */
  wildcard?: boolean;
  /** Allow a wildcard directly under a public suffix or a single label (`*.com`, `*.co.uk`, `*.local`). */
  broadWildcards?: boolean;
}

/**
 * A host name per RFC 1123: dot-separated labels of letters, digits and inner `-`, each at most
 * 63 characters, at most 253 in all; lower-cased. A leading `*.` wildcard is allowed unless
 * `wildcard: false`, but not directly on a public suffix or a single label unless
 * `broadWildcards: true`: `*.com` would take every host under `.com` that no other route names.
 */
export function parseHostname(raw: string, options: HostnameOptions = {}): FieldResult<string> {
  const r = checkHostname(raw, options);
  if (r.ok) return r;
  const hint = hostHint(raw);
  return hint === undefined ? r : fail(r.error, hint);
}

/** A fix for a host name label holding a URL or `host:port`: the host alone, when it is one. */
function hostHint(raw: string): string | undefined {
  const url = PASTED_URL_RE.exec(raw);
  if (url) {
    const host = checkHostname(url[1] ?? '', { wildcard: false });
    return host.ok ? `write only the host name: ${host.value}` : undefined;
  }
  const hostPort = HOST_PORT_RE.exec(raw);
  if (hostPort) {
    const host = checkHostname(hostPort[1] ?? '', { wildcard: false });
    if (host.ok) {
      return `write the host name without the port: ${host.value} (the proxy listens on the ports of its outputs)`;
    }
  }
  return undefined;
}

function checkHostname(raw: string, options: HostnameOptions): FieldResult<string> {
  if (raw.length === 0) return fail('a host name cannot be empty', 'write a name such as app.example.com');
  if (raw.length > 253) return fail(`a host name is at most 253 characters (this one has ${raw.length})`);
  // Check ASCII before lower-casing: toLowerCase() maps some non-ASCII letters (U+212A KELVIN SIGN)
  // onto ASCII ones, which would let a look-alike name through.
  if (!PRINTABLE_ASCII.test(raw)) {
    const nonAscii = [...raw].find((ch) => (ch.codePointAt(0) ?? 0) > 0x7f);
    return nonAscii !== undefined
      ? fail(
          `a host name is ASCII (found ${quoteValue(nonAscii)})`,
          'write an internationalized name in its punycode form (xn--...)',
        )
      : fail(
          `a host name may hold only letters, digits, \`-\` and \`.\` (found ${firstBadChar(raw, PRINTABLE_ASCII) ?? '?'})`,
        );
  }
  const host = raw.toLowerCase();
  const wildcard = host.startsWith('*.');
  if (wildcard && options.wildcard === false) return fail('a wildcard (`*.`) is not allowed here');
  const rest = wildcard ? host.slice(2) : host;
  // The usual name passes one whole-name test; only a wrong one is split, to say which part is wrong.
  if (HOSTNAME_RE.test(rest)) return wildcard && !options.broadWildcards ? checkBroad(host, rest) : ok(host);
  const labels = rest.split('.');
  for (const label of labels) {
    if (label.length === 0) return fail('a host name has no empty parts (no leading, trailing or double `.`)');
    if (label.length > 63)
      return fail(`each part of a host name is at most 63 characters ("${label.slice(0, 20)}...")`);
    if (!HOST_LABEL_RE.test(label)) {
      const bad = firstBadChar(label, /[a-z0-9-]/);
      return fail(
        bad
          ? `a host name may hold only letters, digits, \`-\` and \`.\` (found ${bad})`
          : 'a part of a host name cannot start or end with `-`',
        'write a name such as app.example.com; only a leading `*.` may be a wildcard',
      );
    }
  }
  return wildcard && !options.broadWildcards ? checkBroad(host, rest) : ok(host);
}

/** A wildcard host `host` (`*.` + `rest`, whose parts are valid): refused when it is too broad. */
function checkBroad(host: string, rest: string): FieldResult<string> {
  const broad = broadWildcardBase(rest, rest.split('.').length);
  if (broad !== undefined) {
    return fail(
      `${host} would take every host ${broad} that no other route names`,
      'name the hosts, or a wildcard under a domain you own (e.g. *.apps.example.com); to trust every deployer with such wildcards, set `allowBroadWildcards: true` on the rule',
    );
  }
  return ok(host);
}

/**
 * An IPv6 address in any of its textual forms, as the WHATWG URL parser (a global, no import of
 * node:net into the pure core) reads it between brackets.
 */
function isIPv6(raw: string): boolean {
  try {
    return new URL(`http://[${raw}]/`).hostname.length > 2;
  } catch {
    return false;
  }
}

/**
 * tldts, loaded on the first wildcard checked, and as its CommonJS build: its ES module build
 * costs ~100 ms of CPU to load against ~25 ms, on every run of a command that never sees a
 * wildcard (start-up, issue 12).
 */
let tldts: typeof import('tldts') | undefined;
function publicSuffixList(): typeof import('tldts') {
  tldts ??= createRequire(import.meta.url)('tldts') as typeof import('tldts');
  return tldts;
}

/**
 * Why a wildcard base is too broad, or undefined when it is a registrable domain or below one.
 * The Public Suffix List (ICANN and private sections, embedded in tldts: no network) says where
 * names are registered by different owners: `com`, `co.uk`, `github.io`. A single label is too
 * broad whatever it is (`*.local`, `*.internal`, an unknown top-level name).
 */
function broadWildcardBase(base: string, labelCount: number): string | undefined {
  if (labelCount === 1) return `under the top-level name ${base}`;
  const suffix = publicSuffixList().getPublicSuffix(base, { allowPrivateDomains: true, validateHostname: false });
  return suffix === base ? `under the public suffix ${base}, whose names belong to many owners` : undefined;
}

/** An IPv4 or IPv6 address, or a host name without wildcard: where a backend is reached. */
export function parseAddress(raw: string): FieldResult<string> {
  if (IPV4_RE.test(raw)) return ok(raw);
  // Zone ids (`fe80::1%eth0`) are refused by the character check: `%` has no place in a proxy file.
  if (raw.includes(':')) {
    return isIPv6(raw) && /^[0-9A-Fa-f:.]+$/.test(raw) ? ok(raw.toLowerCase()) : fail('not an IPv4 / IPv6 address');
  }
  // Proxies read a dotted-digits name as an IPv4 address, so it must be a valid one.
  if (/^[0-9.]+$/.test(raw)) return fail('not an IPv4 address');
  const host = parseHostname(raw, { wildcard: false });
  return host.ok ? host : fail(`not an IP address or host name: ${host.error}`);
}

// ---------- numbers ----------

/** A TCP/UDP port: digits only, 1–65535. */
export function parsePort(raw: string): FieldResult<number> {
  if (!/^[1-9][0-9]{0,4}$/.test(raw)) {
    // From a URL or host:port, the number in it (when it is a port).
    const pasted = PASTED_URL_RE.exec(raw)?.[2] ?? HOST_PORT_RE.exec(raw)?.[2];
    const port = pasted !== undefined && /^[1-9][0-9]{0,4}$/.test(pasted) && Number(pasted) <= 65535;
    return fail(
      'a port is a number from 1 to 65535, digits only',
      port ? `write only the port number: ${pasted}` : 'write the port, e.g. 8080',
    );
  }
  const port = Number(raw);
  return port <= 65535 ? ok(port) : fail('a port is at most 65535');
}

export const MIN_INTERVAL_MS = 100;
export const MAX_INTERVAL_MS = 3_600_000;

/** A whole number of milliseconds (health check interval), 100 ms to 1 h. */
export function parseDurationMs(raw: string): FieldResult<number> {
  if (!/^[0-9]{1,10}$/.test(raw)) {
    return fail('an interval is a whole number of milliseconds, digits only', 'write e.g. 5000 for five seconds');
  }
  return checkIntervalMs(Number(raw));
}

export function checkIntervalMs(ms: number): FieldResult<number> {
  if (!Number.isInteger(ms)) return fail('an interval is a whole number of milliseconds');
  if (ms < MIN_INTERVAL_MS) return fail(`an interval below ${MIN_INTERVAL_MS} ms would flood the backend with checks`);
  if (ms > MAX_INTERVAL_MS) return fail('an interval is at most 3600000 ms (one hour)');
  return ok(ms);
}

// ---------- words ----------

const TRUE_WORDS = new Set(['true', '1', 'yes']);
const FALSE_WORDS = new Set(['false', '0', 'no']);

/**
 * `true/false/1/0/yes/no`, any case. Anything else is an error: interlock 1.x counted mere
 * presence, so `ssl_only=false` turned SSL-only on.
 */
export function parseBoolean(raw: string): FieldResult<boolean> {
  const word = raw.toLowerCase();
  if (PRINTABLE_ASCII.test(raw) && TRUE_WORDS.has(word)) return ok(true);
  if (PRINTABLE_ASCII.test(raw) && FALSE_WORDS.has(word)) return ok(false);
  return fail('not a boolean', 'write true or false (also accepted: 1/0, yes/no)');
}

/** One of a fixed set of words, case-insensitive; the error lists them. */
export function parseEnum<T extends string>(raw: string, allowed: readonly T[]): FieldResult<T> {
  const word = PRINTABLE_ASCII.test(raw) ? raw.toLowerCase() : undefined;
  const found = allowed.find((a) => a.toLowerCase() === word);
  return found !== undefined
    ? ok(found)
    : fail(`not one of ${allowed.join(', ')}`, `write one of: ${allowed.join(', ')}`);
}

/** A redirect status: 301, 302, 303, 307 or 308, digits only. */
export function parseRedirectCode(raw: string): FieldResult<RedirectCode> {
  const code = REDIRECT_CODES.find((c) => String(c) === raw);
  return code !== undefined
    ? ok(code)
    : fail(`a redirect status is one of ${REDIRECT_CODES.join(', ')}`, `write one of: ${REDIRECT_CODES.join(', ')}`);
}

/** A cookie name: a subset of the RFC 6265 token (letters, digits, `_`, `.`, `-`), at most 64. */
export function parseCookieName(raw: string): FieldResult<string> {
  if (/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/.test(raw)) return ok(raw);
  if (raw.length > 64) return fail('a cookie name is at most 64 characters');
  return fail('a cookie name may hold only letters, digits, `_`, `.` and `-`', 'write a name such as SESSION');
}

/** A Docker network name. */
export function parseNetworkName(raw: string): FieldResult<string> {
  if (/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(raw)) return ok(raw);
  return fail(
    'a network name starts with a letter or digit and holds only letters, digits, `_`, `.` and `-` (at most 128)',
    'write the name shown by `docker network ls`',
  );
}

/** A file or Docker secret name (certificates): no directories, no leading dot. */
export function parseFileName(raw: string): FieldResult<string> {
  if (/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$/.test(raw)) return ok(raw);
  return fail(
    'a certificate name is a plain file name: letters, digits, `_`, `.` and `-`, no directories, not starting with `.`',
    'write the file name inside the certificate directory, e.g. example.com.pem',
  );
}

/** A name that becomes part of a proxy identifier (server, backend, service cluster). */
export function parseIdentifier(raw: string): FieldResult<string> {
  if (/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(raw)) return ok(raw);
  return fail('an identifier holds only letters, digits, `_`, `.` and `-` (at most 128)');
}

// ---------- paths and URLs ----------

export const MAX_PATH_LENGTH = 1024;
/**
 * Path characters: unreserved plus `:@!,+=`. Left out although RFC 3986 allows them: `;` `'` `$`
 * `&` `(` `)` `*` `%` (special to a proxy parser, to a shell, or as regex groups). Renderers still
 * escape `.` and `+` when they put a path into a regular expression.
 */
const PATH_CHAR = /[A-Za-z0-9._~:@!,+=/-]/;
const PATH_RE = /^\/[A-Za-z0-9._~:@!,+=/-]*$/;

/**
 * A URL path prefix: starts with `/`, safe characters only, no empty, `.` or `..` segments, at most
 * 1024 characters; a trailing `/` is dropped (`/api/` → `/api`), `/` stays `/`.
 */
export function parsePath(raw: string): FieldResult<string> {
  if (raw.length === 0) return fail('a path cannot be empty', 'write a path such as /api');
  if (raw.length > MAX_PATH_LENGTH)
    return fail(`a path is at most ${MAX_PATH_LENGTH} characters (this one has ${raw.length})`);
  if (!raw.startsWith('/')) return fail('a path starts with `/`', pathHint(raw));
  if (!PATH_RE.test(raw)) {
    return fail(
      `a path may hold only letters, digits and \`._~:@!,+=/-\` (found ${firstBadChar(raw, PATH_CHAR) ?? '?'})`,
      'percent-encoding, spaces, quotes, `;`, `#`, `$`, `{`, `}` and non-ASCII are not accepted in a route path',
    );
  }
  const segments = raw.split('/').slice(1);
  const inner = raw.endsWith('/') ? segments.slice(0, -1) : segments;
  for (const segment of inner) {
    if (segment === '') return fail('a path has no empty segments (`//`)');
    if (segment === '.' || segment === '..') return fail('a path has no `.` or `..` segments');
  }
  return ok(raw.length > 1 && raw.endsWith('/') ? raw.slice(0, -1) : raw);
}

/**
 * A fix for a path label that does not start with `/`: the path of a pasted URL (a websocket
 * endpoint written `ws://host:9000/chat` is `/chat`: the host and port come from other labels),
 * the value with a `/` in front when that is a path, or an example. Echoes only accepted paths.
 */
function pathHint(raw: string): string {
  const url = PASTED_URL_RE.exec(raw);
  if (url) {
    const p = parsePath(url[3] ?? '/');
    return p.ok ? `write only the path: ${p.value}` : 'write only the path of the URL, e.g. /api';
  }
  if (HOST_PORT_RE.test(raw)) return 'write a path such as /api; a host and port do not belong here';
  const slashed = raw.length <= 100 ? parsePath(`/${raw}`) : undefined;
  return slashed?.ok ? `write /${raw}` : 'write a path such as /api';
}

/** True when `path` is `prefix` or lies under it on a segment boundary. */
export function isUnderPath(path: string, prefix: string): boolean {
  return prefix === '/' || path === prefix || path.startsWith(`${prefix}/`);
}

const URL_RE = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/:]*)(?::([^/]*))?(\/.*)?$/;

/**
 * Where a redirect sends to: an absolute `http://` or `https://` URL with a valid host name,
 * optional port and safe path (no query or fragment). Normalized: lower-case scheme and host,
 * no trailing `/`.
 */
export function parseRedirectTarget(raw: string): FieldResult<string> {
  const m = URL_RE.exec(raw);
  if (!m) return fail('a redirect target is an absolute URL', 'write e.g. https://www.example.com');
  const scheme = (m[1] ?? '').toLowerCase();
  if (scheme !== 'http' && scheme !== 'https') return fail('a redirect target is an http:// or https:// URL');
  const host = parseHostname(m[2] ?? '', { wildcard: false });
  if (!host.ok) return fail(`the redirect target's host is wrong: ${host.error}`, host.fix);
  let port = '';
  if (m[3] !== undefined) {
    const p = parsePort(m[3]);
    if (!p.ok) return fail(`the redirect target's port is wrong: ${p.error}`);
    port = `:${p.value}`;
  }
  let path = '';
  if (m[4] !== undefined) {
    const p = parsePath(m[4]);
    if (!p.ok) return fail(`the redirect target's path is wrong: ${p.error}`, p.fix);
    path = p.value === '/' ? '' : p.value;
  }
  return ok(`${scheme}://${host.value}${port}${path}`);
}

/** Where a redirect comes from: a host, or `http://host` / `https://host` for one scheme only. */
export function parseRedirectSource(
  raw: string,
): FieldResult<{ scheme?: 'http' | 'https'; host: string; text: string }> {
  const m = /^([A-Za-z]+):\/\/([^/]*)\/?$/.exec(raw);
  const hostText = m ? (m[2] ?? '') : raw;
  let scheme: 'http' | 'https' | undefined;
  if (m) {
    const s = (m[1] ?? '').toLowerCase();
    if (s !== 'http' && s !== 'https') return fail('a redirect source is a host, http://HOST or https://HOST');
    scheme = s;
  }
  const host = parseHostname(hostText, { wildcard: false });
  if (!host.ok)
    return fail(`the redirect source's host is wrong: ${host.error}`, 'write a host, http://HOST or https://HOST');
  const text = scheme ? `${scheme}://${host.value}` : host.value;
  return ok(scheme ? { scheme, host: host.value, text } : { host: host.value, text });
}

// ---------- raw directives ----------

export const MAX_RAW_DIRECTIVE_LENGTH = 256;
/** Keywords that open a new HAProxy section: one of them would escape the backend it is pasted into. */
const SECTION_KEYWORDS = new Set([
  'backend',
  'cache',
  'crt-store',
  'defaults',
  'fcgi-app',
  'frontend',
  'global',
  'http-errors',
  'listen',
  'log-forward',
  'mailers',
  'peers',
  'program',
  'resolvers',
  'ring',
  'traces',
  'userlist',
]);

/**
 * One raw HAProxy backend line, for configs that opted in (`allowRawDirectives`). Opting in trusts
 * whoever deploys services with the line's meaning; the parser only guarantees it stays one line
 * inside its backend: printable ASCII, no section keyword, and none of `{ } ; # \ $ " ' \``
 * (no comments, env-var expansion, quoting or escaping tricks), at most 256 characters.
 */
export function parseRawDirective(raw: string): FieldResult<string> {
  // Only spaces are trimmed: a tab or line break anywhere is refused, not cleaned up.
  const line = raw.replace(/^ +| +$/g, '');
  if (line.length === 0) return fail('a backend option cannot be empty');
  if (line.length > MAX_RAW_DIRECTIVE_LENGTH)
    return fail(`a backend option is at most ${MAX_RAW_DIRECTIVE_LENGTH} characters`);
  if (!/^[\x20-\x7e]+$/.test(line)) return fail('a backend option is one line of printable ASCII');
  const bad = firstBadChar(line, /[^{};#\\$"'`]/);
  if (bad)
    return fail(`a backend option cannot hold ${bad}`, 'write a single HAProxy backend keyword line without quotes');
  const keyword = line.split(' ')[0] ?? '';
  if (!/^[a-z][a-z0-9-]*$/.test(keyword)) return fail('a backend option starts with an HAProxy keyword, e.g. `option`');
  if (SECTION_KEYWORDS.has(keyword))
    return fail(`\`${keyword}\` opens a new HAProxy section; it is not a backend option`);
  return ok(line);
}
