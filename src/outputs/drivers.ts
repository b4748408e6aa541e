/**
 * Output drivers: everything that differs between kinds of file output lives here, one entry per
 * kind, and the rest of the code asks the registry instead of switching on `kind`:
 *
 * - its built-in template and its render (main file first, then the files it writes next to it);
 * - the paths of its config that must be absolute in the rendered file;
 * - the folder the proxy opens when it checks or runs the files (Nginx's run folder);
 * - its check command (`haproxy -c`, `nginx -t`) and the signal that reloads it;
 * - the families of extra files it writes (HAProxy's hashed host maps), which `validate`, the
 *   writer and the start-up clean-up must know about.
 *
 * Pure: path arithmetic and data only. Adding a kind: a module like the two below, its template
 * in templates/, its zod object in src/config/schema.ts, and one line in DRIVERS.
 */
import path from 'node:path';
import { defaultCertFile, haproxyCrtListPattern, haproxyMapPattern } from '../config/paths.ts';
import type { FileOutput, HaproxyOutput, NginxOutput, OutputConfig } from '../config/schema.ts';
import { haproxyKeyFileFor, haproxyView, renderHaproxy } from '../render/haproxy.ts';
import { nginxView, renderNginx } from '../render/nginx.ts';
import { type AcmeRender, RenderError, type RenderedFile, type TemplateName } from '../render/types.ts';
import type { Route } from '../routes/types.ts';

export interface OutputDriver<O extends FileOutput = FileOutput> {
  kind: O['kind'];
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
    options: { template: string; runDir: string | undefined; acme?: AcmeRender },
  ): RenderedFile[];
  /** The check command for `file` (a scratch copy in `dir`), with the proxy binary at `binary`. */
  checkArgv(binary: string, file: string, dir: string): string[];
  /** What a `signal` or `docker-signal` reload sends when the config names no signal. */
  reloadSignal: 'SIGUSR2' | 'SIGHUP';
  /**
   * Name patterns of the files this output writes next to its main file under names that change
   * (content-hashed), which an output removes once unused; empty when every name is fixed.
   */
  families(main: string): { dir: string; pattern: RegExp; display: string }[];
  /** Every listener of the output, with its config path (for the port checks of `validate`). */
  listeners(output: O): { address: string; port: number; path: PropertyKey[] }[];
  /** Files the proxy reads or makes that no output may overwrite, beyond the common ones. */
  inputs(output: O): { file: string | undefined; what: string }[];
  /** What `validate` says about this kind's own keys: problems as data, with the config path. */
  check(output: O, configDir: string): KindProblem[];
  /**
   * Where this proxy looks for the key of certificate `cert` (a path) when the route names a
   * separate key: undefined when it loads any key file it is given.
   */
  keyFileFor(cert: string): string | undefined;
}

export interface KindProblem {
  severity: 'error' | 'warning';
  code: string;
  path: PropertyKey[];
  message: string;
  fix?: string;
}

/**
 * What the renderer refuses about the config's own values (a path Nginx would read a `$` in, a
 * name HAProxy cannot quote), found by building the view with no routes: `validate` refuses
 * exactly what `render` would.
 */
function writable(build: () => unknown): KindProblem[] {
  try {
    build();
    return [];
  } catch (error) {
    if (!(error instanceof RenderError)) throw error;
    return [
      {
        severity: 'error',
        code: 'not-writable',
        path: [],
        message: `${error.message}`,
        fix: 'change that value: the rendered file could not hold it',
      },
    ];
  }
}

function commonListeners(output: FileOutput): { address: string; port: number; path: PropertyKey[] }[] {
  return [
    { address: output.http.address, port: output.http.port, path: ['http', 'port'] },
    ...(output.https ? [{ address: output.https.address, port: output.https.port, path: ['https', 'port'] }] : []),
  ];
}

function absoluteTls<O extends FileOutput>(output: O, configDir: string): O {
  if (!output.https) return output;
  const https = {
    ...output.https,
    certDir: path.resolve(configDir, output.https.certDir),
    ...(output.https.defaultCert ? { defaultCert: defaultCertFile(configDir, output.https) } : {}),
  };
  return { ...output, https };
}

const haproxy: OutputDriver<HaproxyOutput> = {
  kind: 'haproxy',
  title: 'HAProxy 2.6',
  template: 'haproxy.cfg',
  runDir: () => undefined,
  absolute(output, configDir) {
    const copy = absoluteTls(output, configDir);
    return copy.masterSocket ? { ...copy, masterSocket: path.resolve(configDir, copy.masterSocket) } : copy;
  },
  render: (routes, output, options) =>
    renderHaproxy(routes, output, {
      template: options.template,
      ...(options.acme ? { acme: options.acme } : {}),
    }),
  // Not `haproxy -q`: it drops the reason along with the noise.
  checkArgv: (binary, file) => [binary, '-c', '-f', file],
  reloadSignal: 'SIGUSR2',
  families: (main) => [haproxyMapPattern(main), haproxyCrtListPattern(main)],
  listeners: (output) => [
    ...commonListeners(output),
    ...(output.stats ? [{ address: output.stats.address, port: output.stats.port, path: ['stats', 'port'] }] : []),
  ],
  inputs: (output) => [{ file: output.masterSocket, what: 'master socket' }],
  check: (output, configDir) => writable(() => haproxyView([], haproxy.absolute(output, configDir))),
  // HAProxy 2.6 cannot be told a key file's name: with ssl-load-extra-del-ext it reads NAME.key
  // for NAME.crt, and FILE.key for any other FILE.
  keyFileFor: (cert) => path.join(path.dirname(cert), haproxyKeyFileFor(path.basename(cert))),
};

const nginx: OutputDriver<NginxOutput> = {
  kind: 'nginx',
  title: 'Nginx',
  template: 'nginx.conf',
  // Nginx's pid, log, temp paths and sockets: the configured file's folder (or `runDir`), never
  // the `--out-dir`, so `render --out-dir a` and `--out-dir b` give the same bytes.
  runDir: (output, configDir) => path.resolve(configDir, output.runDir ?? path.dirname(output.file)),
  absolute: absoluteTls,
  render: (routes, output, options) =>
    renderNginx(routes, output, {
      template: options.template,
      runDir: options.runDir ?? path.dirname(output.file),
      ...(options.acme ? { acme: options.acme } : {}),
    }),
  checkArgv: (binary, file, dir) => [binary, '-t', '-q', '-p', dir, '-c', file],
  reloadSignal: 'SIGHUP',
  families: () => [],
  listeners: commonListeners,
  inputs: () => [],
  keyFileFor: () => undefined,
  check: (output, configDir) => [
    ...(output.runDir !== undefined && !path.isAbsolute(output.runDir) && output.runDir.includes('..')
      ? [
          {
            severity: 'warning' as const,
            code: 'run-dir',
            path: ['runDir'],
            message: 'runDir leaves the config folder',
            fix: 'use an absolute path',
          },
        ]
      : []),
    ...writable(() =>
      nginxView([], nginx.absolute(output, configDir), nginx.runDir(output, configDir) ?? path.dirname(output.file)),
    ),
  ],
};

const DRIVERS: { [K in FileOutput['kind']]: OutputDriver<Extract<FileOutput, { kind: K }>> } = { haproxy, nginx };

/** The driver of a file output. */
export function driverFor<O extends FileOutput>(output: O): OutputDriver<O> {
  return DRIVERS[output.kind] as unknown as OutputDriver<O>;
}

/** True for the outputs that render files (every kind with a driver). */
export function isFileOutput(output: OutputConfig): output is FileOutput {
  return Object.hasOwn(DRIVERS, output.kind);
}
