/**
 * Known failures: the CLI prints their message without a stack and exits 2 (interlock could not
 * do its job). Anything else is a bug and is printed with its stack.
 */
export class InterlockError extends Error {
  override name = 'InterlockError';
  /** Optional `file:line:col` the failure is about. */
  readonly location?: string;
  constructor(message: string, options?: { cause?: unknown; location?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    if (options?.location) this.location = options.location;
  }
}

/** The config could not be loaded at all (missing, unreadable, syntax error). */
export class ConfigLoadError extends InterlockError {
  override name = 'ConfigLoadError';
}

/** A cluster could not be reached or read. */
export class ClusterError extends InterlockError {
  override name = 'ClusterError';
}

/** A snapshot file is missing, unreadable or not a snapshot. */
export class SnapshotError extends InterlockError {
  override name = 'SnapshotError';
}

/**
 * A thrown value as text, for messages. Code in a config may throw anything (`throw null`, an
 * object whose `message` getter throws, a revoked Proxy): this never throws itself.
 */
export function describeThrown(value: unknown): string {
  const text = describe(value);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

function describe(value: unknown): string {
  try {
    if (value instanceof Error) {
      const first = String(value.message).split('\n')[0]?.trim();
      return first || value.name || 'an Error without a message';
    }
    if (typeof value === 'string') return JSON.stringify(value.split('\n')[0]);
    if (value === null || value === undefined || typeof value !== 'object') return String(value);
    const message = (value as { message?: unknown }).message;
    if (typeof message === 'string' && message.trim()) return message.split('\n')[0]?.trim() ?? message;
    return 'an object that is not an Error';
  } catch {
    return 'a value that cannot be shown';
  }
}

/** `threw: <message>` for an Error, `threw null` or `threw "text"` for anything else. Never throws. */
export function threw(value: unknown): string {
  let isError = false;
  try {
    isError = value instanceof Error;
  } catch {
    // a Proxy whose prototype cannot be read
  }
  return `threw${isError ? ':' : ''} ${describeThrown(value)}`;
}
