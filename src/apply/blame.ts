/**
 * Who a proxy's complaint is about. Both proxies name `file:line` (`parsing [haproxy.cfg:42]`,
 * `in /etc/nginx/nginx.conf:42`) or quote a section name (`backend 'web__local__1'`); the
 * services are those named in that section. The built-in templates put
 * `# cluster c, service s, rule r` above every section a route produces.
 */

export interface BlameLine {
  file: string;
  number: number;
  text: string;
}

const HEADER =
  /^\s*(backend|frontend|listen|defaults|global|userlist|upstream|server\s*\{|location|stream|http\s*\{|map)\b/;

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The lines of the section around line index `at`: from the header above to the next one. */
function sectionAround(lines: readonly string[], at: number): string {
  let start = at;
  while (start > 0 && !HEADER.test(lines[start] ?? '')) start--;
  while (start > 0 && /^\s*#/.test(lines[start - 1] ?? '')) start--;
  let end = at + 1;
  while (end < lines.length && !HEADER.test(lines[end] ?? '')) end++;
  // The comments just above the next header are that section's.
  if (end < lines.length) while (end > at + 1 && /^\s*(#.*)?$/.test(lines[end - 1] ?? '')) end--;
  return lines.slice(start, end).join('\n');
}

/** Where the complaint points: a `file:line`, or a quoted name that heads a section. */
function locate(
  proxyOutput: string,
  files: readonly { name: string; content: string }[],
): { section: string; line?: BlameLine } | undefined {
  for (const m of proxyOutput.matchAll(/(?:\[|\bin\s+|^|\s)([^\s[\]:'"]+):(\d+)\]?/gm)) {
    const name = m[1] as string;
    const number = Number(m[2]);
    const file = files.find((f) => f.name === name || name.endsWith(`/${f.name}`) || f.name.endsWith(`/${name}`));
    if (!file) continue;
    const lines = file.content.split('\n');
    const at = number - 1;
    if (at < 0 || at >= lines.length) continue;
    return { section: sectionAround(lines, at), line: { file: file.name, number, text: (lines[at] ?? '').trim() } };
  }
  for (const m of proxyOutput.matchAll(/'([A-Za-z0-9_.:-]+)'|"([A-Za-z0-9_.:-]+)"/g)) {
    const name = (m[1] ?? m[2]) as string;
    const header = new RegExp(`^\\s*(backend|frontend|listen|upstream)\\s+${escapeRegExp(name)}(\\s|\\{|$)`);
    for (const file of files) {
      const lines = file.content.split('\n');
      const at = lines.findIndex((l) => header.test(l));
      if (at >= 0)
        return {
          section: sectionAround(lines, at),
          line: { file: file.name, number: at + 1, text: (lines[at] ?? '').trim() },
        };
    }
  }
  return undefined;
}

/**
 * The `cluster/service` keys (from `candidates`) the complaint is about, and the line it points
 * at. Empty when the complaint names no section a route produced: the caller then bisects.
 */
export function blame(
  proxyOutput: string,
  files: readonly { name: string; content: string }[],
  candidates: ReadonlySet<string>,
): { services: string[]; line?: BlameLine } {
  const found = locate(proxyOutput, files);
  if (!found) return { services: [] };
  const named = new Set<string>();
  for (const m of found.section.matchAll(/\bcluster ([A-Za-z0-9_-]+), service ([A-Za-z0-9_.-]+)/g)) {
    const key = `${m[1]}/${m[2]}`;
    if (candidates.has(key)) named.add(key);
  }
  return { services: [...named].sort(), ...(found.line ? { line: found.line } : {}) };
}
