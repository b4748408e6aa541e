/** The `haproxy` output: HAProxy 2.6, its host maps and crt-list written next to the main file. */
import path from 'node:path';
import { haproxyCrtListPattern, haproxyMapPattern, policyFilePattern } from '../config/paths.ts';
import type { HaproxyOutput } from '../config/schema.ts';
import { haproxyKeyFileFor, haproxyView, renderHaproxy } from '../render/haproxy.ts';
import { absoluteTls, commonListeners, FILE_OUTPUT_RULES, rule, warning, writable } from './common.ts';
import type { OutputDriver } from './drivers.ts';

export const haproxy: OutputDriver<HaproxyOutput> = {
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
  runtimeApi: true,
  // `haproxy -c` takes about twice as long as `nginx -t` on the same routes.
  checkFirst: true,
  families: (main) => [haproxyMapPattern(main), haproxyCrtListPattern(main), policyFilePattern(main, 'haproxy')],
  listeners: (output) => [
    ...commonListeners(output),
    ...(output.stats ? [{ address: output.stats.address, port: output.stats.port, path: ['stats', 'port'] }] : []),
  ],
  inputs: (output) => [{ file: output.masterSocket, what: 'master socket' }],
  rules: [
    ...FILE_OUTPUT_RULES,
    rule<HaproxyOutput>('writable', (output, ctx) =>
      writable(() => haproxyView([], haproxy.absolute(output, ctx.configDir))),
    ),
    // Access log: what HAProxy 2.6 cannot log the way the format (and Nginx) does.
    rule<HaproxyOutput>('access log differs', (output) =>
      output.accessLog
        ? [
            warning(
              'policy-differs',
              ['accessLog', 'format'],
              'in the HAProxy access log the byte count is the whole response with its headers (Nginx: the body), the time is when the request came in (Nginx: when the answer went out), the user is always `-` and an absent header is `-` (Nginx: empty in json)',
              'compare logs of the two proxies with this in mind (README, Traffic policies)',
            ),
          ]
        : [],
    ),
  ],
  // HAProxy 2.6 cannot be told a key file's name: with ssl-load-extra-del-ext it reads NAME.key
  // for NAME.crt, and FILE.key for any other FILE.
  keyFileFor: (cert) => path.join(path.dirname(cert), haproxyKeyFileFor(path.basename(cert))),
};
