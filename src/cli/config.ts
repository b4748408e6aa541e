/** Loading and checking the config for any command. */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { checkConfig } from '../config/check.ts';
import { findConfig, type LoadedConfig, loadConfig } from '../config/load.ts';
import { probePath } from '../config/probe.ts';
import type { Config } from '../config/schema.ts';
import type { Diagnostic } from '../diagnostics.ts';
import type { Io } from './io.ts';

export interface CheckedConfig {
  loaded: LoadedConfig;
  config?: Config;
  /** Directory relative config paths are resolved against. */
  configDir: string;
  diagnostics: Diagnostic[];
}

/** What the run adds to the checks of where outputs write. */
export interface RunTargets {
  /** `--out-dir`: outputs are written there by file name. */
  outDir?: string | undefined;
  /** `--snapshot` arguments (FILE or NAME=FILE): inputs no output may overwrite. */
  snapshot?: readonly string[] | undefined;
}

/** The snapshot files as inputs no output may overwrite. Its module is loaded only when there are snapshots (start-up, issue 12). */
async function snapshotInputs(cwd: string, args: readonly string[]): Promise<Array<{ file: string; what: string }>> {
  if (args.length === 0) return [];
  const { parseSnapshotArg } = await import('../cluster/sources.ts');
  return args.map((arg) => {
    const snapshot = parseSnapshotArg(arg).file;
    return { file: path.resolve(cwd, snapshot), what: `the snapshot ${snapshot}` };
  });
}

export async function loadAndCheck(
  io: Io,
  configOption: string | undefined,
  command: string,
  run: RunTargets = {},
): Promise<CheckedConfig> {
  const file = await findConfig(io.cwd, configOption);
  const loaded = await loadConfig(file, { cwd: io.cwd, command, env: io.env });
  const configDir = path.dirname(file);
  const diagnostics = [...loaded.diagnostics];
  const inputs = await snapshotInputs(io.cwd, run.snapshot ?? []);
  if (loaded.config) {
    diagnostics.push(
      ...checkConfig(loaded.config, {
        configDir,
        displayFile: loaded.displayFile,
        exists: existsSync,
        readText: (p) => readFileSync(p, 'utf8'),
        locate: loaded.locate,
        configFile: file,
        probe: probePath,
        ...(run.outDir ? { outDir: path.resolve(io.cwd, run.outDir) } : {}),
        inputs,
      }),
    );
  }
  return { loaded, configDir, diagnostics, ...(loaded.config ? { config: loaded.config } : {}) };
}
