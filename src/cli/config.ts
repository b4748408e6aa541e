/** Loading and checking the config for any command. */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { checkConfig } from '../config/check.ts';
import { findConfig, type LoadedConfig, loadConfig } from '../config/load.ts';
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

export async function loadAndCheck(io: Io, configOption: string | undefined, command: string): Promise<CheckedConfig> {
  const file = await findConfig(io.cwd, configOption);
  const loaded = await loadConfig(file, { cwd: io.cwd, command, env: io.env });
  const configDir = path.dirname(file);
  const diagnostics = [...loaded.diagnostics];
  if (loaded.config) {
    diagnostics.push(
      ...checkConfig(loaded.config, {
        configDir,
        displayFile: loaded.displayFile,
        exists: existsSync,
        readText: (p) => readFileSync(p, 'utf8'),
        locate: loaded.locate,
      }),
    );
  }
  return { loaded, configDir, diagnostics, ...(loaded.config ? { config: loaded.config } : {}) };
}
