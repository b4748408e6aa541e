/**
 * Structured logs: logfmt (`time=… level=… msg=…`, as the original interlock printed) by default,
 * one JSON object per line with `--log-format json`. Key material never goes through here: callers
 * log endpoint display strings, not options.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];
export type LogFormat = 'logfmt' | 'json';
export type LogFields = Record<string, string | number | boolean | undefined | null>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

function logfmtValue(v: string | number | boolean): string {
  const s = String(v);
  return s === '' || /[\s"=\\]/.test(s) || /[^\x21-\x7e]/.test(s) ? JSON.stringify(s) : s;
}

export function formatLine(format: LogFormat, time: Date, level: LogLevel, msg: string, fields: LogFields): string {
  const entries = Object.entries(fields).filter(
    (e): e is [string, string | number | boolean] => e[1] !== undefined && e[1] !== null,
  );
  if (format === 'json') {
    return JSON.stringify({ time: time.toISOString(), level, msg, ...Object.fromEntries(entries) });
  }
  const parts = [`time=${time.toISOString()}`, `level=${level}`, `msg=${logfmtValue(msg)}`];
  for (const [k, v] of entries) parts.push(`${k}=${logfmtValue(v)}`);
  return parts.join(' ');
}

export function createLogger(options: {
  format: LogFormat;
  level: LogLevel;
  write: (line: string) => void;
  now?: () => Date;
  fields?: LogFields;
}): Logger {
  const min = LOG_LEVELS.indexOf(options.level);
  const now = options.now ?? (() => new Date());
  const base = options.fields ?? {};
  const log =
    (level: LogLevel) =>
    (msg: string, fields: LogFields = {}) => {
      if (LOG_LEVELS.indexOf(level) < min) return;
      options.write(`${formatLine(options.format, now(), level, msg, { ...base, ...fields })}\n`);
    };
  return {
    debug: log('debug'),
    info: log('info'),
    warn: log('warn'),
    error: log('error'),
    child: (fields) => createLogger({ ...options, fields: { ...base, ...fields } }),
  };
}
