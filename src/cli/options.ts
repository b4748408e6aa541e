import type { Argv } from 'yargs';
import { DIAGNOSTIC_FORMATS, type DiagnosticFormat } from '../diagnostics.ts';
import { LOG_LEVELS, type LogFormat, type LogLevel } from '../runtime/log.ts';

export interface CommonOptions {
  config?: string;
  format: DiagnosticFormat;
}

export function configOption<T>(y: Argv<T>) {
  return y.option('config', {
    alias: 'c',
    type: 'string',
    describe: 'Config file. Default: the first interlock.config.{ts,mts,js,mjs,yaml,yml,json} here',
  });
}

export function commonOptions<T>(y: Argv<T>) {
  return configOption(y).option('format', {
    alias: 'f',
    choices: DIAGNOSTIC_FORMATS,
    default: 'text' as DiagnosticFormat,
    describe: 'How to print diagnostics: text, json (one document) or github (PR annotations)',
  });
}

/** `--log-format` and `--log-level` of the long-running commands (logs go to stderr). */
export function logOptions<T>(y: Argv<T>, levelHint: string) {
  return y
    .option('log-format', {
      choices: ['logfmt', 'json'] as const,
      default: 'logfmt' as LogFormat,
      describe: 'Log lines on stderr: logfmt (time=… level=… msg=…) or one JSON object each',
    })
    .option('log-level', {
      choices: LOG_LEVELS,
      default: 'info' as LogLevel,
      describe: `Least severe level logged (${levelHint})`,
    });
}
