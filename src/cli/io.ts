/** The CLI's only contact with the terminal: streams and exit codes. */
import { type Diagnostic, type DiagnosticFormat, formatDiagnostics, formatGithub } from '../diagnostics.ts';
import { InterlockError } from '../errors.ts';

export const EXIT_OK = 0;
/** The user's input is wrong, or drift was found. */
export const EXIT_INVALID = 1;
/** interlock could not do its job. */
export const EXIT_FAILURE = 2;

export interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  setExitCode: (code: number) => void;
  cwd: string;
  env: Readonly<Record<string, string | undefined>>;
}

export function processIo(): Io {
  // `interlock render --dry-run | head`: a closed pipe is the reader's choice, not a failure.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
  return {
    stdout: (t) => process.stdout.write(t.endsWith('\n') ? t : `${t}\n`),
    stderr: (t) => process.stderr.write(t.endsWith('\n') ? t : `${t}\n`),
    setExitCode: (code) => {
      // The worst outcome wins: 2 over 1 over 0.
      if (code > (process.exitCode === undefined ? 0 : Number(process.exitCode))) process.exitCode = code;
    },
    cwd: process.cwd(),
    env: process.env,
  };
}

export function printDiagnostics(
  io: Io,
  diagnostics: readonly Diagnostic[],
  format: DiagnosticFormat,
  stream: 'stdout' | 'stderr',
): void {
  if (diagnostics.length === 0 || format === 'json') return;
  io[stream](formatDiagnostics(diagnostics, format));
}

/** Prints a failure that stops the command and sets exit 2. Unknown errors keep their stack. */
export function reportFailure(io: Io, thrown: unknown, format: DiagnosticFormat): void {
  io.setExitCode(EXIT_FAILURE);
  // The file system or the network refused (a directory where a file was a moment earlier, a
  // full disk): a known failure, printed as such.
  const error = isSystemError(thrown) ? new InterlockError(thrown.message, { cause: thrown }) : thrown;
  if (error instanceof InterlockError) {
    if (format === 'json') {
      io.stdout(JSON.stringify({ ok: false, error: error.message, location: error.location ?? null }, null, 2));
      return;
    }
    io.stderr(`interlock: ${error.message}`);
    if (format === 'github') {
      const m = error.location ? /^(.*):(\d+):(\d+)$/.exec(error.location) : null;
      io.stdout(
        formatGithub({
          severity: 'error',
          code: error.name,
          message: error.message,
          ...(m ? { file: m[1] as string, line: Number(m[2]), column: Number(m[3]) } : {}),
        }),
      );
    }
    return;
  }
  io.stderr(
    `interlock: unexpected failure (a bug; please report it):\n${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
  );
}

/** Node's errors from the operating system: `EISDIR: illegal operation on a directory, read`. */
function isSystemError(error: unknown): error is NodeJS.ErrnoException {
  return (
    error instanceof Error &&
    typeof (error as NodeJS.ErrnoException).code === 'string' &&
    typeof (error as NodeJS.ErrnoException).syscall === 'string' &&
    /^E[A-Z]+$/.test((error as NodeJS.ErrnoException).code ?? '')
  );
}

/** The command line itself is wrong (an unknown command or option): the help, the reason, exit 2. */
export function reportUsage(io: Io, help: string, message: string): void {
  io.stderr(`${help}\n`);
  io.stderr(`interlock: ${message}`);
  io.setExitCode(EXIT_FAILURE);
}
