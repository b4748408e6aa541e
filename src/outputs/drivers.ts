/**
 * The output registry: everything that differs between kinds of output lives in one module per
 * kind (haproxy.ts, nginx.ts, carbon.ts, log.ts, with its schema part in <kind>-schema.ts), and
 * the rest of the code asks the registry instead of switching on `kind`. Every kind has its
 * `validate` rules; the file outputs (drivers) also have:
 *
 * - their built-in template and their render (main file first, then the files written next to it);
 * - the paths of their config that must be absolute in the rendered file;
 * - the folder the proxy opens when it checks or runs the files (Nginx's run folder);
 * - their check command (`haproxy -c`, `nginx -t`) and the signal that reloads them;
 * - the families of extra files they write (HAProxy's hashed host maps), which `validate`, the
 *   writer and the start-up clean-up must know about.
 *
 * Pure: path arithmetic and data only. Adding a kind: its module and schema part in src/outputs/,
 * its template in templates/, its schema part in the union of src/config/schema.ts, and one line
 * in KINDS (and DRIVERS for a file output).
 */
import type { FileOutput, OutputConfig } from '../config/schema.ts';
import type { AcmeRender, RenderedFile, TemplateName } from '../render/types.ts';
import type { Route } from '../routes/types.ts';
import { carbon } from './carbon.ts';
import type { OutputKind } from './common.ts';
import { haproxy } from './haproxy.ts';
import { log } from './log.ts';
import { nginx } from './nginx.ts';

export type { KindProblem, OutputCheckContext, OutputKind, OutputRule } from './common.ts';

export interface OutputDriver<O extends FileOutput = FileOutput> extends OutputKind<O> {
  /** The proxy as messages name it. */
  title: string;
  /** The built-in template (templates/<name>.mustache); also the default file name. */
  template: TemplateName;
  /** The folder the proxy opens beside its files (pid, logs, sockets), or undefined. */
  runDir(output: O, configDir: string): string | undefined;
  /** The output with every path the proxy reads made absolute (config paths are config-relative). */
  absolute(output: O, configDir: string): O;
  /** Routes → the main file (first) and the files next to it. */
  render(
    routes: readonly Route[],
    output: O,
    options: {
      template: string;
      runDir: string | undefined;
      acme?: AcmeRender;
      /** The absolute folder the files are written to (policy files are named from the config there). */
      dir?: string;
    },
  ): RenderedFile[];
  /** The check command for `file` (a scratch copy in `dir`), with the proxy binary at `binary`. */
  checkArgv(binary: string, file: string, dir: string): string[];
  /** What a `signal` or `docker-signal` reload sends when the config names no signal. */
  reloadSignal: 'SIGUSR2' | 'SIGHUP';
  /**
   * Name patterns of the files this output writes next to its main file under names that change
   * (content-hashed), which an output removes once unused; empty when every name is fixed.
   */
  families(main: string): { dir: string; pattern: RegExp; display: string; perRoute?: true }[];
  /** Every listener of the output, with its config path (for the port checks of `validate`). */
  listeners(output: O): { address: string; port: number; path: PropertyKey[] }[];
  /** Files the proxy reads or makes that no output may overwrite, beyond the common ones. */
  inputs(output: O): { file: string | undefined; what: string }[];
  /**
   * Where this proxy looks for the key of certificate `cert` (a path) when the route names a
   * separate key: undefined when it loads any key file it is given.
   */
  keyFileFor(cert: string): string | undefined;
  /** True when servers and map entries can change at run time with no reload (src/apply/haproxy-runtime.ts). */
  runtimeApi: boolean;
  /** True when its check is the slow one, started before others that run at the same time (check-proxy.ts). */
  checkFirst: boolean;
}

const DRIVERS: { [K in FileOutput['kind']]: OutputDriver<Extract<FileOutput, { kind: K }>> } = { haproxy, nginx };

/** The driver of a file output. */
export function driverFor<O extends FileOutput>(output: O): OutputDriver<O> {
  return DRIVERS[output.kind] as unknown as OutputDriver<O>;
}

const KINDS: { [K in OutputConfig['kind']]: OutputKind<Extract<OutputConfig, { kind: K }>> } = {
  ...DRIVERS,
  carbon,
  log,
};

/** The kind of any output: what `validate` checks about it. */
export function kindOf<O extends OutputConfig>(output: O): OutputKind<O> {
  return KINDS[output.kind] as unknown as OutputKind<O>;
}

/** True for the outputs that render files (every kind with a driver). */
export function isFileOutput(output: OutputConfig): output is FileOutput {
  return Object.hasOwn(DRIVERS, output.kind);
}

/** True for the carbon (stats) outputs. */
export function isCarbonOutput(output: OutputConfig): output is Extract<OutputConfig, { kind: 'carbon' }> {
  return KINDS[output.kind] === KINDS.carbon;
}

/** True for the log outputs (route changes written to the daemon's log). */
export function isLogOutput(output: OutputConfig): output is Extract<OutputConfig, { kind: 'log' }> {
  return KINDS[output.kind] === KINDS.log;
}
