/** The `log` output: each cluster event and applied change, printed (src/watch/ runs it). */
import type { Config, LogOutput, OutputConfig } from '../config/schema.ts';
import type { OutputKind } from './common.ts';

export function isLogOutput(output: OutputConfig): output is LogOutput {
  return output.kind === 'log';
}

/** The config's log outputs. */
export function logOutputs(config: Config): LogOutput[] {
  return config.outputs.filter(isLogOutput);
}

/** Nothing of its own to check: its name and clusters are checked as every output's are. */
export const log: OutputKind<LogOutput> = { kind: 'log', rules: [] };
