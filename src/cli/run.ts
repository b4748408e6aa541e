/**
 * The one command runner: every command (validate, render, snapshot, stats, watch) runs its body
 * through `runCommand`, which owns what they share:
 *
 * - loading and checking the config, and what a config the checks refuse does: its diagnostics
 *   are printed (or logged, by a daemon) and the command stops;
 * - the mapping from outcome to exit code: 0 ok; 1 the user's input is wrong (a refused config,
 *   drift, a render a proxy rejects: the body returns 'invalid'); 2 interlock could not run (an
 *   InterlockError, a system error, a bug, and a daemon that could not start, whatever the reason);
 * - the signals of the long-running commands: SIGTERM / SIGINT stop them (a second one exits at
 *   once, 130), SIGHUP goes to the command's `hangup`, and once stopped a handle still open cannot
 *   hold the exit for more than EXIT_GRACE_MS.
 */

import type { Config } from '../config/schema.ts';
import {
  type Diagnostic,
  type DiagnosticFormat,
  formatDiagnostics,
  formatText,
  hasErrors,
  sortDiagnostics,
} from '../diagnostics.ts';
import { ConfigLoadError, describeThrown, InterlockError } from '../errors.ts';
import type { Logger } from '../runtime/log.ts';
import { type CheckedConfig, loadAndCheck, type RunTargets } from './config.ts';
import { EXIT_FAILURE, EXIT_INVALID, type Io, printDiagnostics, reportFailure } from './io.ts';

/** What a command's body found: 'invalid' is exit 1 (the user's input is wrong, or drift). */
export type Outcome = 'ok' | 'invalid';

/** After a long-running command stopped, a handle still open must not keep the process alive past this. */
const EXIT_GRACE_MS = 3_000;

export interface CommandSpec {
  /** The command's name, as the config sees it (a `.ts` config may read it). */
  name: string;
  /** `--config`, when given. */
  configOption: string | undefined;
  /** How diagnostics and failures are printed. Default: text. */
  format?: DiagnosticFormat;
  /** stdout holds the command's JSON report under `--format json`: a refused config is a JSON document there too. */
  jsonReport?: boolean;
  /** What a refused config means, said after "FILE is invalid" (e.g. "nothing rendered"). */
  refused?: string;
  /** A long-running command's logger: what `untilStopped` says goes there. */
  log?: Logger;
  /**
   * A daemon: diagnostics and failures go to its log, not the terminal, and a config it refuses
   * means it could not start (exit 2).
   */
  daemon?: boolean;
}

export type UsableConfig = CheckedConfig & { config: Config };

/** The config the checks refused: its diagnostics are already out. */
export class ConfigRefused extends Error {
  override name = 'ConfigRefused';
}

export interface CommandRun {
  io: Io;
  /**
   * Loads and checks the config (`file`: another file than `--config`, e.g. on a daemon's reload).
   * A config the checks refuse throws ConfigRefused, its diagnostics printed or logged.
   */
  config(targets?: RunTargets & { file?: string }): Promise<UsableConfig>;
  /** Loads and checks the config and returns whatever was found, usable or not (`validate`). */
  check(targets?: RunTargets): Promise<CheckedConfig>;
  /**
   * Starts a long-running command and resolves once a signal stopped it: SIGTERM / SIGINT call
   * `stop` (a second one exits at once), SIGHUP calls `hangup`.
   */
  untilStopped(hooks: { start(): void; stop(): Promise<void>; hangup?: () => void }): Promise<void>;
}

export async function runCommand(
  io: Io,
  spec: CommandSpec,
  body: (run: CommandRun) => Promise<Outcome | undefined>,
): Promise<void> {
  const format = spec.format ?? 'text';
  let started = false;
  let stopped = false;
  const run: CommandRun = {
    io,
    check: (targets = {}) => loadAndCheck(io, spec.configOption, spec.name, targets),
    async config(targets = {}) {
      const checked = await loadAndCheck(io, targets.file ?? spec.configOption, spec.name, targets);
      const diagnostics = sortDiagnostics(checked.diagnostics);
      if (spec.daemon) logDiagnostics(daemonLog(spec), diagnostics);
      if (checked.config && !hasErrors(diagnostics)) return { ...checked, config: checked.config };
      const file = checked.loaded.displayFile;
      if (spec.daemon) {
        daemonLog(spec).error(`${file} is invalid`, {
          errors: diagnostics.filter((d) => d.severity === 'error').length,
        });
      } else if (format === 'json' && spec.jsonReport) {
        io.stdout(formatDiagnostics(diagnostics, 'json', { ok: false }));
      } else {
        printDiagnostics(io, diagnostics, format === 'json' ? 'text' : format, 'stderr');
        io.stderr(
          `interlock: ${file} is invalid${spec.refused ? `; ${spec.refused}` : ''} (run \`interlock validate\`)`,
        );
      }
      throw new ConfigRefused(`${file} is invalid`);
    },
    async untilStopped(hooks) {
      const log = spec.log;
      if (!log) throw new Error(`${spec.name}: a long-running command needs a logger`);
      started = true;
      await new Promise<void>((resolve) => {
        let stopping = false;
        const stop = (signal: NodeJS.Signals) => {
          if (stopping) {
            log.warn('second signal: exiting now', { signal });
            process.exit(130);
          }
          stopping = true;
          log.info('stopping', { signal });
          void hooks
            .stop()
            .catch((error: unknown) => log.error(`stopping failed: ${describeThrown(error)}`))
            .then(() => {
              if (hooks.hangup) process.off('SIGHUP', hooks.hangup);
              log.info('stopped');
              resolve();
            });
        };
        if (hooks.hangup) process.on('SIGHUP', hooks.hangup);
        process.on('SIGTERM', stop);
        process.on('SIGINT', stop);
        hooks.start();
      });
      stopped = true;
    },
  };
  try {
    if ((await body(run)) === 'invalid') io.setExitCode(EXIT_INVALID);
  } catch (error) {
    if (spec.daemon) failDaemon(io, daemonLog(spec), error, started);
    else if (error instanceof ConfigRefused) io.setExitCode(EXIT_INVALID);
    else reportFailure(io, error, format);
  }
  // Everything is closed; a socket still half-open must not hold the exit.
  if (stopped) setTimeout(() => process.exit(), EXIT_GRACE_MS).unref();
}

function daemonLog(spec: CommandSpec): Logger {
  if (!spec.log) throw new Error(`${spec.name}: a daemon needs a logger`);
  return spec.log;
}

/** A daemon's diagnostics, one log line each. */
function logDiagnostics(log: Logger, diagnostics: readonly Diagnostic[]): void {
  for (const d of diagnostics) {
    const fields = { file: d.file, line: d.line, path: d.path, code: d.code, fix: d.fix };
    if (d.severity === 'error') log.error(formatText({ ...d, fix: undefined }), fields);
    else log.warn(formatText({ ...d, fix: undefined }), fields);
  }
}

/** A daemon that fails: logged, exit 2 (it could not run, whatever the reason). */
function failDaemon(io: Io, log: Logger, error: unknown, started: boolean): void {
  io.setExitCode(EXIT_FAILURE);
  if (error instanceof InterlockError) log.error(error.message);
  else if (!(error instanceof ConfigRefused))
    log.error(
      `unexpected failure (a bug; please report it): ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    );
  if (!started && (error instanceof ConfigRefused || error instanceof ConfigLoadError))
    log.error('not starting: fix the config (`interlock validate` shows every problem)');
}
