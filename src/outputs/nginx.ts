/** The `nginx` output: one Nginx configuration file, run from its own folder (or `runDir`). */
import path from 'node:path';
import { policyFilePattern } from '../config/paths.ts';
import type { NginxOutput } from '../config/schema.ts';
import { nginxView, renderNginx } from '../render/nginx.ts';
import { absoluteTls, commonListeners, FILE_OUTPUT_RULES, rule, warning, writable } from './common.ts';
import type { OutputDriver } from './drivers.ts';

/** A relative runDir that climbs out of the config folder. */
const runDirInside = rule<NginxOutput>('runDir inside', (output) =>
  output.runDir !== undefined && !path.isAbsolute(output.runDir) && output.runDir.includes('..')
    ? [warning('run-dir', ['runDir'], 'runDir leaves the config folder', 'use an absolute path')]
    : [],
);

/** PROXY protocol: Nginx cannot take it from some clients only (README, Traffic policies). */
const proxyProtocolEverywhere = rule<NginxOutput>('PROXY protocol on every connection', (output) =>
  output.http.proxyProtocol
    ? [
        warning(
          'policy-differs',
          ['http', 'proxyProtocol'],
          "Nginx needs a PROXY header on every connection to the HTTP listener (only the trusted ones' address counts); HAProxy expects it from the trusted load balancers only and serves others directly",
          'send every connection to this listener through the load balancers (README, Traffic policies)',
        ),
      ]
    : [],
);

export const nginx: OutputDriver<NginxOutput> = {
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
      ...(options.dir ? { dir: options.dir } : {}),
    }),
  checkArgv: (binary, file, dir) => [binary, '-t', '-q', '-p', dir, '-c', file],
  reloadSignal: 'SIGHUP',
  runtimeApi: false,
  checkFirst: false,
  // Pages and htpasswd files of routes (README, Traffic policies), removed once no route needs them.
  families: (main) => [policyFilePattern(main, 'nginx')],
  listeners: commonListeners,
  inputs: () => [],
  keyFileFor: () => undefined,
  rules: [
    ...FILE_OUTPUT_RULES,
    runDirInside,
    proxyProtocolEverywhere,
    rule<NginxOutput>('writable', (output, { configDir }) =>
      writable(() =>
        nginxView([], nginx.absolute(output, configDir), nginx.runDir(output, configDir) ?? path.dirname(output.file)),
      ),
    ),
  ],
};
