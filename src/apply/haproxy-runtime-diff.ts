/**
 * What changes between two HAProxy renders, and whether the running proxy can take it through its
 * runtime API instead of a reload. Pure: text in, a plan out.
 *
 * It compares the rendered files, not the routes: the files are what a reload would load, they
 * cover a user's own template, and the files on disk serve as "the old render" after the daemon
 * restarts. The config is cut into
 * - `server NAME ADDR[:PORT] PARAMS` lines of `backend` sections, and
 * - everything else (the skeleton), comments left out, the host map's name (it carries the map's
 *   content hash) replaced by a placeholder.
 * A change in the skeleton (a backend, a frontend rule, an option, a certificate list) reloads. So
 * does a server change in a backend runtime-added servers cannot join (cookie stickiness, static
 * balance algorithms) and a server whose parameters change. What remains is runtime-applicable:
 * servers added, removed or moved to another address or port, and host-map entries added,
 * removed or changed.
 */
import { isIP } from 'node:net';

export interface ServerLine {
  name: string;
  /** Without brackets for IPv6. */
  address: string;
  port: number;
  /** Everything after the address, single-spaced; may be empty. */
  params: string;
}

export interface ParsedBackend {
  name: string;
  /** The section's other lines, trimmed (comments left out). */
  lines: string[];
  servers: Map<string, ServerLine>;
  /** Holds a server line that is not `NAME ADDR:PORT` (an abstract socket): part of the skeleton. */
  opaque: boolean;
}

export interface ParsedHaproxy {
  /** Non-server lines, comments left out, the map's name replaced by a placeholder. */
  skeleton: string;
  backends: Map<string, ParsedBackend>;
  /** The map file name the config's map lookups use, when there is exactly one. */
  mapName?: string;
}

export type RuntimeOp =
  | { op: 'add-server'; backend: string; server: ServerLine; check: boolean }
  | { op: 'set-addr'; backend: string; server: ServerLine }
  | { op: 'del-server'; backend: string; server: string }
  | { op: 'map-add' | 'map-set'; key: string; value: string }
  | { op: 'map-del'; key: string };

/** What the running proxy must show once the plan is applied: the new files' servers and map. */
export interface RuntimeExpected {
  backends: Map<string, Map<string, ServerLine>>;
  map?: Map<string, string>;
}

export type RuntimePlan =
  | {
      kind: 'runtime';
      ops: RuntimeOp[];
      expected: RuntimeExpected;
      /**
       * Why the new files still want the proxy's own check (`haproxy -c`), or absent when every
       * line they add was, up to an IP address and a port, already in the accepted render (see
       * checkNeeded).
       */
      recheck?: string;
    }
  | { kind: 'reload'; reason: string };

const MAP_PLACEHOLDER = '\u0000MAP\u0000';
const SERVER_LINE = /^server\s+(\S+)\s+(\S+)(?:\s+(.*))?$/;
/** Names of files read by map converters: `map_beg(NAME)`, `map(NAME,default)`. */
const MAP_USE = /\bmap(?:_[a-z]+)?\(([^),\s]+)/g;
/** MAP_USE at one position (sticky), found by indexOf first: a leading `\b` makes V8 try every position of a 2.4 MB text. */
const MAP_AT = /map(?:_[a-z]+)?\(([^),\s]+)/y;

/** Every map file named by a map converter in `text`, with where, in order (comments included). */
export function mapUses(text: string): { name: string; index: number }[] {
  const found: { name: string; index: number }[] = [];
  for (let i = text.indexOf('map'); i !== -1; i = text.indexOf('map', i + 3)) {
    if (i > 0 && /\w/.test(text[i - 1] as string)) continue;
    MAP_AT.lastIndex = i;
    const m = MAP_AT.exec(text);
    if (m) found.push({ name: m[1] as string, index: i });
  }
  return found;
}
/** Balance algorithms that hash; without `hash-type consistent` they are static (no `add server`). */
const HASHING = /^(source|uri|url_param|hdr\(|rdp-cookie|hash\b)/;

function parseAddress(text: string): { address: string; port: number } | undefined {
  const m = /^\[([0-9A-Fa-f:.]+)\]:(\d{1,5})$/.exec(text) ?? /^([^:[\]\s]+):(\d{1,5})$/.exec(text);
  if (!m) return undefined;
  const port = Number(m[2]);
  return port >= 1 && port <= 65535 ? { address: m[1] as string, port } : undefined;
}

export function parseHaproxyConfig(text: string): ParsedHaproxy {
  const skeleton: string[] = [];
  const backends = new Map<string, ParsedBackend>();
  const maps = new Set<string>();
  let backend: ParsedBackend | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    for (const m of line.matchAll(MAP_USE)) maps.add(m[1] as string);
    if (!/^\s/.test(raw)) {
      // A section header.
      const m = /^backend\s+(\S+)\s*$/.exec(line);
      backend = m ? { name: m[1] as string, lines: [], servers: new Map(), opaque: false } : undefined;
      if (backend) backends.set(backend.name, backend);
      skeleton.push(line);
      continue;
    }
    const s = backend ? SERVER_LINE.exec(line) : null;
    const at = s ? parseAddress(s[2] as string) : undefined;
    if (backend && s && at && !backend.servers.has(s[1] as string)) {
      const params = (s[3] ?? '').split(/\s+/).filter(Boolean).join(' ');
      backend.servers.set(s[1] as string, { name: s[1] as string, ...at, params });
      continue;
    }
    if (backend && s) backend.opaque = true;
    backend?.lines.push(line);
    skeleton.push(line);
  }
  const mapName = maps.size === 1 ? ([...maps][0] as string) : undefined;
  let joined = skeleton.join('\n');
  if (mapName) joined = joined.split(mapName).join(MAP_PLACEHOLDER);
  return { skeleton: joined, backends, ...(mapName ? { mapName } : {}) };
}

/** `KEY VALUE` lines; comments and blank lines left out. The first line of a key wins, as in HAProxy. */
export function parseHaproxyMap(text: string): Map<string, string> {
  const entries = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\S+)\s+(.*)$/.exec(line);
    const key = m ? (m[1] as string) : line;
    if (!entries.has(key)) entries.set(key, m ? (m[2] as string).trim() : '');
  }
  return entries;
}

/** Whether a map's text has a line for `key` (cheaper than parsing it for one key). */
function hasKeyLine(text: string, key: string): boolean {
  for (const sep of [' ', '\t']) if (text.startsWith(`${key}${sep}`) || text.includes(`\n${key}${sep}`)) return true;
  return false;
}

/** Why `add server` cannot serve this backend, or undefined when it can. */
export function runtimeRefusal(backend: ParsedBackend): string | undefined {
  if (backend.lines.some((l) => /^cookie\s/.test(l)))
    return `backend ${backend.name} uses cookie stickiness, and a server added at run time cannot carry its \`cookie\``;
  const balance = backend.lines.find((l) => /^balance\s/.test(l))?.split(/\s+/)[1] ?? 'roundrobin';
  if (balance === 'static-rr')
    return `backend ${backend.name} balances with static-rr, which takes no servers at run time`;
  if (HASHING.test(balance) && !backend.lines.some((l) => /^hash-type\s+consistent\b/.test(l)))
    return `backend ${backend.name} hashes (balance ${balance}) without \`hash-type consistent\`, which takes no servers at run time`;
  return undefined;
}

/** A word the runtime CLI reads as one argument: no spaces, no `;` (command separator), no `\`. */
const CLI_WORD = /^[^\s;\\]+$/;

function cliSafe(text: string): boolean {
  return text === '' || text.split(' ').every((w) => CLI_WORD.test(w));
}

/** A config cut into sections (a line starting with neither a space nor `#` begins one). */
interface Sectioned {
  chunks: string[];
  /** Each section's first line, trimmed. */
  headers: string[];
}

function sectioned(text: string): Sectioned {
  const chunks = text === '' ? [] : text.split(/\n(?=[^\s#])/);
  const headers = chunks.map((c) => {
    const nl = c.indexOf('\n');
    return (nl === -1 ? c : c.slice(0, nl)).trim();
  });
  return { chunks, headers };
}

/** The one map file the config's map converters name (comments left out, as parseHaproxyConfig). */
function mapNameOf(text: string): string | undefined {
  const maps = new Set<string>();
  for (const m of mapUses(text)) {
    const lineStart = text.lastIndexOf('\n', m.index) + 1;
    if (!text.slice(lineStart, m.index).trimStart().startsWith('#')) maps.add(m.name);
  }
  return maps.size === 1 ? ([...maps][0] as string) : undefined;
}

const BLOCK = 4096;

/** How many leading characters `a` and `b` share (block by block: native compares, ~0.2 ms per 2 MB). */
function commonPrefixLength(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i + BLOCK <= n && a.slice(i, i + BLOCK) === b.slice(i, i + BLOCK)) i += BLOCK;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i;
}

/** How many trailing characters `a` and `b` share, at most `max`. */
function commonSuffixLength(a: string, b: string, max: number): number {
  let i = 0;
  while (
    i + BLOCK <= max &&
    a.slice(a.length - i - BLOCK, a.length - i) === b.slice(b.length - i - BLOCK, b.length - i)
  )
    i += BLOCK;
  while (i < max && a.charCodeAt(a.length - 1 - i) === b.charCodeAt(b.length - 1 - i)) i++;
  return i;
}

/** How many characters `a` and `b` share at the start and (not overlapping it) at the end. */
function sharedEnds(a: string, b: string): { prefix: number; suffix: number } {
  const prefix = commonPrefixLength(a, b);
  return { prefix, suffix: commonSuffixLength(a, b, Math.min(a.length, b.length) - prefix) };
}

/** Whether a section starts at `i`: the text's start, or a line whose first character is neither a space nor `#`. */
function sectionStartsAt(text: string, i: number): boolean {
  if (i === 0) return true;
  if (i >= text.length || text.charCodeAt(i - 1) !== 10) return false;
  return /[^\s#]/.test(text[i] as string);
}

/**
 * The part of `a` and of `b` that holds every difference between them, cut at section starts,
 * with the sections both share before and after left out: a change to one backend or to the map's
 * name compares a few sections, not 10,000. Both parts start at the same offset (the shared
 * prefix); the separator before the first section after them is left out, as a split would.
 */
function differingSections(a: string, b: string): { a: string; b: string } {
  const { prefix, suffix } = sharedEnds(a, b);
  // A section start before the first difference: both characters around it are shared.
  let start = prefix === 0 ? 0 : prefix - 1;
  while (!sectionStartsAt(a, start)) start = a.lastIndexOf('\n', start - 2) + 1;
  // The first section start after the last difference in `a` whose newline is shared too.
  const endA = a.length - suffix;
  let end = endA + 1;
  while (end < a.length && !sectionStartsAt(a, end)) {
    const nl = a.indexOf('\n', end);
    end = nl === -1 ? a.length : nl + 1;
  }
  const cut = (text: string, at: number) => (at >= text.length ? text.length : at - 1);
  const endB = end - endA + (b.length - suffix);
  return { a: a.slice(start, cut(a, end)), b: b.slice(start, cut(b, endB)) };
}

/** As differingSections, cut at line starts: the lines of `a` and of `b` that hold every difference. */
function differingLines(a: string, b: string): { a: string; b: string } {
  const { prefix, suffix } = sharedEnds(a, b);
  const start = prefix === 0 ? 0 : a.lastIndexOf('\n', prefix - 1) + 1;
  const endA = a.length - suffix;
  const nl = a.indexOf('\n', endA);
  if (nl === -1) return { a: a.slice(start), b: b.slice(start) };
  return { a: a.slice(start, nl), b: b.slice(start, nl - endA + (b.length - suffix)) };
}

/** The backend a section header line (trimmed) opens, if any. */
const BACKEND_HEADER = /^backend\s+(\S+)$/;

/** The names of the config's backends, read from its section headers. */
function backendNamesOf(text: string): Set<string> {
  const names = new Set<string>();
  for (
    let i = text.startsWith('backend') ? 0 : text.indexOf('\nbackend');
    i !== -1;
    i = text.indexOf('\nbackend', i + 1)
  ) {
    const from = text.charCodeAt(i) === 10 ? i + 1 : i;
    const nl = text.indexOf('\n', from);
    const m = BACKEND_HEADER.exec(text.slice(from, nl === -1 ? text.length : nl).trim());
    if (m) names.add(m[1] as string);
  }
  return names;
}

/**
 * Whether the config opens a backend `name`: looked up where the name occurs (a few places), so a
 * plan with a few new map entries does not read 10,000 headers; past a few lookups, all of them
 * are read once.
 */
function backendLookup(text: string): (name: string) => boolean {
  let asked = 0;
  let all: Set<string> | undefined;
  return (name) => {
    if (all === undefined && ++asked > 8) all = backendNamesOf(text);
    if (all !== undefined) return all.has(name);
    if (name === '') return false;
    for (let i = text.indexOf(name); i !== -1; i = text.indexOf(name, i + 1)) {
      const from = text.lastIndexOf('\n', i) + 1;
      const nl = text.indexOf('\n', i);
      if (
        BACKEND_HEADER.exec(text.slice(from, nl === -1 ? text.length : nl).trim())?.[1] === name &&
        /[^\s#]/.test(text[from] as string)
      )
        return true;
    }
    return false;
  };
}

/**
 * Compares the running render (`old`: the files on disk, which the proxy runs) with the new one.
 * `map` is the host map's content, absent when the config names none.
 *
 * At 10,000 services the config is 2.4 MB: parsing all of it on every change cost ~0.5 s, and
 * cutting both into sections still ~100 ms. So the sections both files share at the start and
 * at the end are left out first (block compares), the rest is cut into sections, and only the
 * sections that differ are parsed; when the section headers differ (a backend added or removed)
 * it reloads anyway, found by the full parse. The servers the running proxy must show
 * (`expected`) and the backend names are read only when asked for.
 */
export function planHaproxyRuntime(
  old: { config: string; map?: string | undefined },
  next: { config: string; map?: string | undefined },
  /** `whole: true` cuts the whole files into sections and lines (the same plan, slower: for tests). */
  options: { whole?: boolean } = {},
): RuntimePlan {
  const oldMapName = mapNameOf(old.config);
  const newMapName = mapNameOf(next.config);
  const part = options.whole ? { a: old.config, b: next.config } : differingSections(old.config, next.config);
  const sa = sectioned(part.a);
  const sb = sectioned(part.b);
  let a: ParsedHaproxy;
  let b: ParsedHaproxy;
  let isBackend: (name: string) => boolean;
  if (sa.headers.length === sb.headers.length && sa.headers.every((h, i) => h === sb.headers[i])) {
    const da: string[] = [];
    const db: string[] = [];
    // The map's name (it carries the map's content hash) is replaced only in the few sections
    // that differ, not in the whole 2.4 MB text.
    const unnamed = (chunk: string, name: string | undefined) =>
      name ? chunk.split(name).join(MAP_PLACEHOLDER) : chunk;
    sa.chunks.forEach((chunk, i) => {
      const other = sb.chunks[i] as string;
      if (chunk === other) return;
      const ca = unnamed(chunk, oldMapName);
      const cb = unnamed(other, newMapName);
      if (ca !== cb) {
        da.push(ca);
        db.push(cb);
      }
    });
    a = { ...parseHaproxyConfig(da.join('\n')), ...(oldMapName ? { mapName: oldMapName } : {}) };
    b = { ...parseHaproxyConfig(db.join('\n')), ...(newMapName ? { mapName: newMapName } : {}) };
    if (options.whole) {
      const names = backendNamesOf(next.config);
      isBackend = (name) => names.has(name);
    } else isBackend = backendLookup(next.config);
  } else {
    a = parseHaproxyConfig(old.config);
    b = parseHaproxyConfig(next.config);
    isBackend = (name) => b.backends.has(name);
  }
  return planParsed(a, b, isBackend, old.map, next.map, () => parseHaproxyConfig(next.config), options.whole === true);
}

/**
 * The plan from `a` to `b` (whole configs, or only their sections that differ). `full` parses the
 * whole new config, for `expected`.
 */
function planParsed(
  a: ParsedHaproxy,
  b: ParsedHaproxy,
  isBackend: (name: string) => boolean,
  oldMap: string | undefined,
  newMap: string | undefined,
  full: () => ParsedHaproxy,
  whole: boolean,
): RuntimePlan {
  if (a.skeleton !== b.skeleton) return { kind: 'reload', reason: 'the config changed beyond servers and map entries' };
  const ops: RuntimeOp[] = [];
  const removals: RuntimeOp[] = [];
  for (const [name, nb] of b.backends) {
    const ob = a.backends.get(name);
    if (!ob) return { kind: 'reload', reason: `backend ${name} is new` };
    const changes: RuntimeOp[] = [];
    for (const [sname, s] of nb.servers) {
      const o = ob.servers.get(sname);
      if (!o) {
        if (!cliSafe(s.params))
          return { kind: 'reload', reason: `server ${name}/${sname} has parameters the CLI cannot pass` };
        changes.push({ op: 'add-server', backend: name, server: s, check: /(^| )check( |$)/.test(s.params) });
      } else if (o.params !== s.params) {
        return { kind: 'reload', reason: `the parameters of server ${name}/${sname} changed` };
      } else if (o.address !== s.address || o.port !== s.port) {
        changes.push({ op: 'set-addr', backend: name, server: s });
      }
    }
    const gone = [...ob.servers.keys()].filter((s) => !nb.servers.has(s));
    if (changes.length === 0 && gone.length === 0) continue;
    const refusal = runtimeRefusal(nb);
    if (refusal && (gone.length > 0 || changes.some((c) => c.op === 'add-server')))
      return { kind: 'reload', reason: refusal };
    ops.push(...changes);
    for (const s of gone) removals.push({ op: 'del-server', backend: name, server: s });
  }
  let map: (() => Map<string, string>) | undefined;
  if (a.mapName !== undefined || b.mapName !== undefined) {
    if (a.mapName === undefined || b.mapName === undefined || oldMap === undefined || newMap === undefined)
      return { kind: 'reload', reason: 'the host map cannot be compared' };
    // Only the lines that differ are parsed (20,000 lines at 10,000 services); the renderer
    // writes each key once, so a key's old and new lines are both among them. The lines both
    // maps share at the start and at the end are not even split.
    const part = whole ? { a: oldMap, b: newMap } : differingLines(oldMap, newMap);
    const oldLines = part.a.split('\n');
    const newLines = part.b.split('\n');
    const oldSet = new Set(oldLines);
    const newSet = new Set(newLines);
    const om = parseHaproxyMap(oldLines.filter((l) => !newSet.has(l)).join('\n'));
    const nm = parseHaproxyMap(newLines.filter((l) => !oldSet.has(l)).join('\n'));
    for (const [key, value] of nm) {
      const was = om.get(key);
      if (was === value) continue;
      if (!CLI_WORD.test(key) || !cliSafe(value))
        return { kind: 'reload', reason: `map entry ${key} holds characters the CLI cannot pass` };
      ops.push({ op: was === undefined ? 'map-add' : 'map-set', key, value });
    }
    for (const key of om.keys()) {
      if (nm.has(key) || hasKeyLine(newMap, key)) continue;
      if (!CLI_WORD.test(key))
        return { kind: 'reload', reason: `map entry ${key} holds characters the CLI cannot pass` };
      ops.push({ op: 'map-del', key });
    }
    const text = newMap;
    map = () => parseHaproxyMap(text);
  }
  const recheck = checkNeeded(a, isBackend, ops);
  let expected: RuntimeExpected | undefined;
  const plan = {
    kind: 'runtime' as const,
    // New capacity first, servers going away last (each drained before it is deleted).
    ops: [...ops, ...removals],
    ...(recheck ? { recheck } : {}),
  };
  return Object.defineProperty(plan, 'expected', {
    enumerable: true,
    get: (): RuntimeExpected => {
      expected ??= {
        // A backend with a server line the plan cannot read is not compared (it cannot change at run time).
        backends: new Map(
          [...full().backends].filter(([, be]) => !be.opaque).map(([n, be]) => [n, be.servers] as const),
        ),
        ...(map ? { map: map() } : {}),
      };
      return expected;
    },
  }) as typeof plan & { expected: RuntimeExpected };
}

/**
 * Whether a render the runtime plan can reach from an accepted one still needs `haproxy -c`.
 * Decision (issue 12): it does not when, besides the skeleton (byte for byte the accepted one),
 * - every server added or moved has an IP address (no name to resolve) and a port, and an added
 *   server's parameters are those of a server the accepted render already had (in a backend that
 *   changed: the plan does not parse the others);
 * - every map entry added or changed names a backend of the render, or is a redirect
 *   (`CODE:target`, whose code the skeleton's rules already list).
 * HAProxy then accepts the new files exactly as it accepted the old ones: what changed is data it
 * does not interpret beyond an address and a lookup key. That takes the check (1 s at 10,000
 * services) off task churn and host changes. Anything else gets the check, and the proxy's own
 * runtime API and the state read back after it (src/apply/haproxy-runtime.ts) still stand behind
 * a runtime update.
 */
function checkNeeded(
  a: ParsedHaproxy,
  isBackend: (name: string) => boolean,
  ops: readonly RuntimeOp[],
): string | undefined {
  let accepted: Set<string> | undefined;
  for (const op of ops) {
    if (op.op === 'add-server' || op.op === 'set-addr') {
      const where = `server ${op.backend}/${op.server.name}`;
      if (isIP(op.server.address) === 0) return `${where} has address ${op.server.address}, not an IP address`;
      if (op.op === 'add-server') {
        accepted ??= new Set([...a.backends.values()].flatMap((be) => [...be.servers.values()].map((s) => s.params)));
        if (!accepted.has(op.server.params)) return `${where} has parameters no server of the running render has`;
      }
    } else if (op.op === 'map-add' || op.op === 'map-set') {
      if (!/^\d{3}:\S+$/.test(op.value) && !isBackend(op.value))
        return `map entry ${op.key} names ${op.value}, which is neither a backend nor a redirect`;
    }
  }
  return undefined;
}
