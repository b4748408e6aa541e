import type { Argv } from 'yargs';
import { DIAGNOSTIC_FORMATS, type DiagnosticFormat } from '../diagnostics.ts';

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
