import type { ConfigInput } from './schema.ts';

/** What the function form of {@link defineConfig} receives. */
export interface ConfigEnv {
  /** The command being run: `validate`, `render`, `snapshot`, `watch` or `stats`. */
  command: string;
  /** The process environment (read-only). */
  env: Readonly<Record<string, string | undefined>>;
}

export type ConfigExport = ConfigInput | ((env: ConfigEnv) => ConfigInput | Promise<ConfigInput>);

/**
 * Declares an interlock config. It returns its argument unchanged: it exists so that editors
 * complete keys and `tsc` rejects unknown keys and wrong kinds.
 */
export function defineConfig(config: ConfigInput): ConfigInput;
export function defineConfig(
  config: (env: ConfigEnv) => ConfigInput | Promise<ConfigInput>,
): (env: ConfigEnv) => ConfigInput | Promise<ConfigInput>;
export function defineConfig(config: ConfigExport): ConfigExport {
  return config;
}
