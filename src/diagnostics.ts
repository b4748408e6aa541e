/**
 * Problems found in a config, a snapshot or a label, as data. Every one says where, what is
 * wrong, and how to fix it. Formatting for people (text), machines (json) and GitHub pull
 * requests (workflow commands) lives here too; printing is the CLI's job.
 */

export type Severity = 'error' | 'warning';

export interface Diagnostic {
  severity: Severity;
  /** Stable machine-readable kind, e.g. `schema`, `duplicate-file`, `label-invalid`. */
  code: string;
  /** What is wrong. */
  message: string;
  /** How to fix it. */
  fix?: string;
  /** Config path such as `outputs[1].kind`. */
  path?: string;
  file?: string;
  line?: number;
  column?: number;
  cluster?: string;
  service?: string;
  label?: string;
}

export type DiagnosticFormat = 'text' | 'json' | 'github';
export const DIAGNOSTIC_FORMATS: readonly DiagnosticFormat[] = ['text', 'json', 'github'];

export function hasErrors(diagnostics: readonly Diagnostic[]): boolean {
  return diagnostics.some((d) => d.severity === 'error');
}

/** `config.ts:3:5`, `config.yaml`, or empty. */
function location(d: Diagnostic): string {
  if (!d.file) return '';
  if (d.line === undefined) return d.file;
  return `${d.file}:${d.line}:${d.column ?? 1}`;
}

function subject(d: Diagnostic): string {
  const parts: string[] = [];
  if (d.path) parts.push(d.path);
  if (d.cluster) parts.push(`cluster ${d.cluster}`);
  if (d.service) parts.push(`service ${d.service}`);
  if (d.label) parts.push(`label ${d.label}`);
  return parts.join(', ');
}

export function formatText(d: Diagnostic): string {
  const where = location(d);
  const about = subject(d);
  const head = [where, d.severity].filter(Boolean).join(': ');
  const body = about ? `${about}: ${d.message}` : d.message;
  return `${head}: ${body}${d.fix ? `\n  fix: ${d.fix}` : ''}`;
}

// GitHub workflow commands: data escapes %, CR, LF; properties also escape : and ,.
function escapeData(s: string): string {
  return s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}
function escapeProperty(s: string): string {
  return escapeData(s).replace(/:/g, '%3A').replace(/,/g, '%2C');
}

export function formatGithub(d: Diagnostic): string {
  const props: string[] = [];
  if (d.file) props.push(`file=${escapeProperty(d.file)}`);
  if (d.file && d.line !== undefined) props.push(`line=${d.line}`);
  if (d.file && d.line !== undefined) props.push(`col=${d.column ?? 1}`);
  props.push(`title=${escapeProperty(`interlock ${d.code}`)}`);
  const about = subject(d);
  const text = `${about ? `${about}: ` : ''}${d.message}${d.fix ? `. Fix: ${d.fix}` : ''}`;
  return `::${d.severity} ${props.join(',')}::${escapeData(text)}`;
}

export function summarize(diagnostics: readonly Diagnostic[]): { errors: number; warnings: number } {
  let errors = 0;
  let warnings = 0;
  for (const d of diagnostics) {
    if (d.severity === 'error') errors++;
    else warnings++;
  }
  return { errors, warnings };
}

/** Renders diagnostics as one string in the given format (no trailing newline for json). */
export function formatDiagnostics(
  diagnostics: readonly Diagnostic[],
  format: DiagnosticFormat,
  extra: Record<string, unknown> = {},
): string {
  if (format === 'json') {
    const { errors, warnings } = summarize(diagnostics);
    return JSON.stringify({ ...extra, errors, warnings, diagnostics }, null, 2);
  }
  const fmt = format === 'github' ? formatGithub : formatText;
  return diagnostics.map(fmt).join('\n');
}

/** Sort by file, line, column, then path, for stable output. */
export function sortDiagnostics(diagnostics: readonly Diagnostic[]): Diagnostic[] {
  return [...diagnostics].sort(
    (a, b) =>
      (a.file ?? '').localeCompare(b.file ?? '') ||
      (a.line ?? 0) - (b.line ?? 0) ||
      (a.column ?? 0) - (b.column ?? 0) ||
      (a.cluster ?? '').localeCompare(b.cluster ?? '') ||
      (a.service ?? '').localeCompare(b.service ?? '') ||
      (a.path ?? '').localeCompare(b.path ?? ''),
  );
}

/** `outputs[1].http.port` */
export function formatConfigPath(configPath: readonly PropertyKey[]): string {
  let out = '';
  for (const key of configPath) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out ? `.${String(key)}` : String(key);
  }
  return out || '(root)';
}

/**
 * Text with the secrets of the addresses in it hidden, for messages: in each `scheme://…`, the
 * password of `user:password@host` becomes `user:***@` (a user name is kept: it says who
 * connects, as ssh's own messages do) and the value of each query parameter becomes `***`
 * (`?token=***`). For engine addresses (endpoints, DOCKER_HOST, Docker contexts) and config values
 * quoted in messages.
 */
export function maskCredentials(text: string): string {
  return text.replace(/[A-Za-z][A-Za-z0-9+.-]*:\/\/[^\s"'`]+/g, (url) =>
    url
      // Up to the last @: a password may itself hold an @ or a / (better too much hidden than a leak).
      .replace(/^([^:]+:\/\/[^/@:]*):.*@/, '$1:***@')
      .replace(/([?&][^=&#]+=)[^&#]*/g, '$1***'),
  );
}
