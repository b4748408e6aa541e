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
