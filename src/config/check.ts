/**
 * Semantic checks a careful reviewer would make, beyond the schema. Pure: the file system is
 * reached only through the `exists` function the caller passes in.
 */
import path from 'node:path';
import { type Diagnostic, formatConfigPath, maskCredentials } from '../diagnostics.ts';
import { patternProblems } from '../stats/names.ts';
import { parseDuration } from './duration.ts';
import type { ClusterConfig, Config, Endpoint } from './schema.ts';

export interface CheckContext {
  /** Directory of the config file; relative paths in the config are relative to it. */
  configDir: string;
  /** Shown in diagnostics. */
  displayFile: string;
  exists: (absolutePath: string) => boolean;
  locate: (
    configPath: readonly PropertyKey[],
    options?: { key?: boolean },
  ) => { line: number; column: number } | undefined;
}

type Where = readonly PropertyKey[];

export function resolveConfigPath(configDir: string, p: string): string {
  return path.resolve(configDir, p);
}

/** Where the HAProxy host map is written: next to the config file. */
export function haproxyMapFile(file: string): string {
  const dir = path.dirname(file);
  const base = path.basename(file).replace(/\.cfg$/, '');
  return path.join(dir, `${base}.hosts.map`);
}

/** The endpoint a cluster resolves to, as a comparable key. */
export function endpointKey(endpoint: Endpoint | undefined): string {
  if (!endpoint || endpoint.kind === 'env') return 'env';
  switch (endpoint.kind) {
    case 'socket':
      return `unix://${path.resolve(endpoint.path)}`;
    case 'tcp':
      return endpoint.host.toLowerCase();
    case 'ssh':
      return endpoint.host.toLowerCase();
    case 'context':
      return `context:${endpoint.name}`;
  }
}

const HOST_RE =
  /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const IPV4_RE = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
const IPV6_RE = /^[0-9A-Fa-f:.]+$/;

export function isAddress(s: string): boolean {
  return IPV4_RE.test(s) || (s.includes(':') && IPV6_RE.test(s)) || HOST_RE.test(s);
}

export function checkConfig(config: Config, ctx: CheckContext): Diagnostic[] {
  const out: Diagnostic[] = [];
  const report = (severity: Diagnostic['severity'], code: string, where: Where, message: string, fix?: string) => {
    const pos = ctx.locate(where);
    out.push({
      severity,
      code,
      message,
      ...(fix ? { fix } : {}),
      path: formatConfigPath(where),
      file: ctx.displayFile,
      ...(pos ? { line: pos.line, column: pos.column } : {}),
    });
  };
  const abs = (p: string) => resolveConfigPath(ctx.configDir, p);

  // ---- clusters ----
  const clusterNames = Object.keys(config.clusters);
  if (clusterNames.length === 0) {
    report(
      'error',
      'no-clusters',
      ['clusters'],
      'no clusters are declared, so there is nothing to read',
      "add one, e.g. `clusters: { local: {} }` for the docker CLI's own environment",
    );
  }
  const endpoints = new Map<string, string>();
  for (const name of clusterNames) {
    const cluster = config.clusters[name] as ClusterConfig;
    const key = endpointKey(cluster.endpoint);
    const first = endpoints.get(key);
    if (first !== undefined) {
      report(
        'error',
        'duplicate-endpoint',
        ['clusters', name, 'endpoint'],
        `cluster "${name}" reads the same engine as cluster "${first}" (${maskCredentials(key)})`,
        'remove one of them: reading one engine twice doubles every route and fights over host names',
      );
    } else {
      endpoints.set(key, name);
    }
    checkEndpoint(name, cluster, report, abs, ctx.exists);
    if (cluster.nodeAddress !== undefined && !isAddress(cluster.nodeAddress)) {
      report(
        'error',
        'bad-address',
        ['clusters', name, 'nodeAddress'],
        `"${cluster.nodeAddress}" is not an IP address or host name`,
        'write an address such as 127.0.0.1 or a DNS name',
      );
    }
    const timeout = cluster.timeout === undefined ? undefined : parseDuration(cluster.timeout);
    if (timeout !== undefined && timeout < 100) {
      report(
        'error',
        'timeout-too-short',
        ['clusters', name, 'timeout'],
        `a timeout of ${timeout}ms cannot reach any engine`,
        'use at least "1s"',
      );
    }
  }

  // ---- rules ----
  const ruleKeys = new Map<string, number>();
  (config.rules ?? []).forEach((rule, i) => {
    const key = rule.kind === 'custom' ? `custom:${rule.name}` : `${rule.kind}:${rule.prefix ?? ''}`;
    const first = ruleKeys.get(key);
    if (first !== undefined) {
      report(
        'error',
        'duplicate-rule',
        ['rules', i],
        `rules[${i}] repeats rules[${first}] (${key.replace(/:$/, '')})`,
        'remove the repeat: every service would be routed twice',
      );
    } else {
      ruleKeys.set(key, i);
    }
    if (rule.kind !== 'custom' && rule.allowRawDirectives) {
      report(
        'warning',
        'raw-directives',
        ['rules', i, 'allowRawDirectives'],
        'raw-directive labels are allowed: whoever deploys a service can add lines to the proxy backend',
        'only enable this where every deployer is trusted with the proxy',
      );
    }
  });

  // ---- outputs ----
  const files = new Map<string, string>();
  const names = new Map<string, number>();
  const listeners = new Map<string, string>();
  config.outputs.forEach((output, i) => {
    const at = (...rest: PropertyKey[]): Where => ['outputs', i, ...rest];
    if (output.name !== undefined) {
      const first = names.get(output.name);
      if (first !== undefined)
        report(
          'error',
          'duplicate-output-name',
          at('name'),
          `output name "${output.name}" is already used by outputs[${first}]`,
          'give each output its own name',
        );
      else names.set(output.name, i);
    }
    for (const [j, c] of (output.clusters ?? []).entries()) {
      if (!(c in config.clusters)) {
        report(
          'error',
          'unknown-cluster',
          at('clusters', j),
          `unknown cluster "${c}"`,
          clusterNames.length ? `use one of: ${clusterNames.join(', ')}` : 'declare it under `clusters`',
        );
      }
    }
    if (output.kind === 'haproxy' || output.kind === 'nginx') {
      const targets = [abs(output.file)];
      if (output.kind === 'haproxy') targets.push(haproxyMapFile(abs(output.file)));
      for (const target of targets) {
        const first = files.get(target);
        if (first !== undefined) {
          report(
            'error',
            'duplicate-file',
            at('file'),
            `${first} already writes ${path.relative(ctx.configDir, target) || target}`,
            'give each output its own file: the last writer would silently win',
          );
        } else {
          files.set(target, `outputs[${i}]`);
        }
      }
      if (output.template !== undefined && !ctx.exists(abs(output.template))) {
        report(
          'error',
          'missing-template',
          at('template'),
          `template ${output.template} does not exist (looked at ${abs(output.template)})`,
          'fix the path (relative to the config file), or remove `template` to use the built-in one',
        );
      }
      const ports: Array<[string, number, Where]> = [[output.http.address, output.http.port, at('http', 'port')]];
      if (output.https) ports.push([output.https.address, output.https.port, at('https', 'port')]);
      if (output.kind === 'haproxy' && output.stats)
        ports.push([output.stats.address, output.stats.port, at('stats', 'port')]);
      const own = new Set<number>();
      for (const [address, port, where] of ports) {
        if (own.has(port)) {
          report(
            'error',
            'port-conflict',
            where,
            `port ${port} is used twice by this output`,
            'give the HTTP, HTTPS and stats listeners different ports',
          );
        }
        own.add(port);
        const key = `${address}:${port}`;
        const other = listeners.get(key);
        if (other !== undefined) {
          report(
            'warning',
            'port-shared',
            where,
            `${key} is also a listener of ${other}`,
            'fine when the two proxies run on different hosts; on one host the second cannot start',
          );
        } else {
          listeners.set(key, `outputs[${i}]`);
        }
      }
      if (output.https && !ctx.exists(abs(output.https.certDir))) {
        report(
          'warning',
          'missing-cert-dir',
          at('https', 'certDir'),
          `certificate directory ${output.https.certDir} does not exist here`,
          'fine if it exists on the proxy host; `haproxy -c` / `nginx -t` will fail where it is missing',
        );
      }
      if (output.reload?.kind === 'docker-signal') {
        const c = output.reload.cluster;
        if (c !== undefined && !(c in config.clusters)) {
          report(
            'error',
            'unknown-cluster',
            at('reload', 'cluster'),
            `unknown cluster "${c}"`,
            `use one of: ${clusterNames.join(', ')}`,
          );
        } else if (c === undefined && clusterNames.length > 1) {
          report(
            'error',
            'ambiguous-cluster',
            at('reload'),
            'docker-signal reload needs `cluster` when more than one cluster is declared',
            `add cluster: one of ${clusterNames.join(', ')}`,
          );
        }
      }
      if (output.validate?.kind === 'none') {
        report(
          'warning',
          'no-validation',
          at('validate'),
          'rendered files are not validated before they replace the running config',
          "remove `validate` to use the proxy's own check",
        );
      }
      if (output.validate?.kind === 'command' && !output.validate.command.some((a) => a.includes('{file}'))) {
        report(
          'error',
          'validate-no-file',
          at('validate', 'command'),
          'the validate command never mentions {file}, so it cannot check the new file',
          'add {file} where the file to check goes',
        );
      }
      if (
        output.kind === 'nginx' &&
        output.runDir !== undefined &&
        path.isAbsolute(output.runDir) === false &&
        output.runDir.includes('..')
      ) {
        report('warning', 'run-dir', at('runDir'), 'runDir leaves the config folder', 'use an absolute path');
      }
    }
    if (output.kind === 'carbon') {
      const interval = parseDuration(output.interval) ?? 0;
      if (interval < 1000) {
        report(
          'error',
          'interval-too-short',
          at('interval'),
          `carbon stores whole seconds: an interval of ${interval}ms puts several points in one slot and only the last survives`,
          'use at least "1s" (10s matches the usual retention)',
        );
      }
      if (output.pattern !== undefined) {
        for (const problem of patternProblems(output.pattern, { tags: output.tags })) {
          report(
            'error',
            'bad-pattern',
            at('pattern'),
            `metric name pattern: ${problem}`,
            'e.g. "{prefix}.{cluster}.{service}.{node}.{task}.{metric}", or remove `pattern` for the documented default',
          );
        }
        const local = (output.clusters ?? clusterNames).filter((c) => config.clusters[c]?.localOnly === true);
        if (!output.tags && local.length > 0 && !output.pattern.includes('{node}')) {
          report(
            'warning',
            'pattern-no-node',
            at('pattern'),
            `no {node} while ${local.map((c) => `cluster "${c}"`).join(', ')} is localOnly: every node's service sums would overwrite each other in one series`,
            'add {node} to the pattern (it is left out where it has no value)',
          );
        }
      }
      const portText = output.address.slice(output.address.lastIndexOf(':') + 1);
      const p = Number(portText);
      if (!(p >= 1 && p <= 65535)) {
        report(
          'error',
          'port-range',
          at('address'),
          `port ${portText} is outside 1–65535`,
          'carbon listens on 2003 (plaintext) or 2004 (pickle)',
        );
      } else if (output.protocol === 'pickle' && p === 2003) {
        report(
          'warning',
          'protocol-port',
          at('protocol'),
          'pickle sent to port 2003, the plaintext receiver',
          'use port 2004 for pickle, or protocol "plaintext"',
        );
      } else if (output.protocol === 'plaintext' && p === 2004) {
        report(
          'warning',
          'protocol-port',
          at('protocol'),
          'plaintext sent to port 2004, the pickle receiver',
          'use port 2003 for plaintext, or protocol "pickle"',
        );
      }
    }
  });
  if (config.outputs.length === 0) {
    report(
      'warning',
      'no-outputs',
      ['outputs'],
      'no outputs: interlock will read the clusters and produce nothing',
      'add a haproxy, nginx, carbon or log output',
    );
  }
  const used = new Set(config.outputs.flatMap((o) => o.clusters ?? clusterNames));
  for (const name of clusterNames) {
    if (!used.has(name))
      report(
        'warning',
        'unused-cluster',
        ['clusters', name],
        `cluster "${name}" is read by no output`,
        "add it to an output's `clusters`, or remove it",
      );
  }

  // ---- watch ----
  if (config.watch) {
    const min = parseDuration(config.watch.debounce.min) ?? 0;
    const max = parseDuration(config.watch.debounce.max) ?? 0;
    if (min > max) {
      report(
        'error',
        'debounce-order',
        ['watch', 'debounce'],
        `debounce min (${min}ms) is longer than max (${max}ms)`,
        'min is the quiet time after each event; max caps the whole wait: make min ≤ max',
      );
    }
    const reconcile = parseDuration(config.watch.reconcile) ?? 0;
    if (reconcile < 1000) {
      report(
        'warning',
        'reconcile-too-short',
        ['watch', 'reconcile'],
        `re-listing every ${reconcile}ms loads the Swarm managers`,
        'use "1s" or more; events already trigger fast re-lists',
      );
    }
  }
  return out;
}

/**
 * A password or a query in an endpoint address is a secret in a file that is committed and
 * printed. Over TCP the engine cannot use it at all (it knows clients by their TLS certificate):
 * an error, as at run time. Over ssh it works: a warning. Either way the value is not printed.
 */
function checkEndpointSecrets(
  endpoint: { kind: 'tcp' | 'ssh'; host: string },
  report: (s: Diagnostic['severity'], code: string, where: Where, message: string, fix?: string) => void,
  where: Where,
): void {
  let url: URL;
  try {
    url = new URL(endpoint.host.replace(/^[a-z]+:\/\//, 'http://'));
  } catch {
    return;
  }
  if (!url.password && !url.search && !(endpoint.kind === 'tcp' && url.username)) return;
  const shown = maskCredentials(endpoint.host);
  if (endpoint.kind === 'tcp') {
    report(
      'error',
      'endpoint-credentials',
      where,
      `${shown} carries credentials: a Docker Engine knows TCP clients by their TLS client certificate, and the config is no place for a secret`,
      'remove them and give `tls: { ca, cert, key }` (files), or set DOCKER_HOST / DOCKER_CERT_PATH in the environment',
    );
  } else {
    report(
      'warning',
      'endpoint-credentials',
      where,
      `${shown} holds a ${url.search ? 'query' : 'password'}: whoever reads the config or its history has it`,
      'keep credentials in a file or the environment: an ssh key in `identityFile` or the ssh agent (SSH_AUTH_SOCK)',
    );
  }
}

function checkEndpoint(
  name: string,
  cluster: ClusterConfig,
  report: (s: Diagnostic['severity'], code: string, where: Where, message: string, fix?: string) => void,
  abs: (p: string) => string,
  exists: (p: string) => boolean,
): void {
  const endpoint = cluster.endpoint;
  const at = (...rest: PropertyKey[]): Where => ['clusters', name, 'endpoint', ...rest];
  if (!endpoint) return;
  if (endpoint.kind === 'tcp' || endpoint.kind === 'ssh') checkEndpointSecrets(endpoint, report, at('host'));
  if (endpoint.kind === 'tcp') {
    const portText = endpoint.host.slice(endpoint.host.lastIndexOf(':') + 1);
    const p = Number(portText);
    if (!(p >= 1 && p <= 65535)) {
      report(
        'error',
        'port-range',
        at('host'),
        `port ${portText} is outside 1–65535`,
        'the Docker Engine usually listens on 2376 (TLS)',
      );
    }
    const tls = endpoint.tls;
    if (!tls) {
      report(
        'warning',
        'no-tls',
        at('host'),
        `${maskCredentials(endpoint.host)} without TLS: anyone on the network can control this engine`,
        'add `tls: { ca, cert, key }`',
      );
      return;
    }
    if (!tls.verify) {
      report(
        'warning',
        'tls-no-verify',
        at('tls', 'verify'),
        'server certificate verification is off: a man in the middle can impersonate the engine',
        'set `ca` and remove `verify: false`',
      );
    }
    if ((tls.cert === undefined) !== (tls.key === undefined)) {
      report(
        'error',
        'tls-pair',
        at('tls', tls.cert === undefined ? 'cert' : 'key'),
        'a client certificate needs both `cert` and `key`',
        'add the missing one, or remove both',
      );
    }
    for (const k of ['ca', 'cert', 'key'] as const) {
      const p = tls[k];
      if (p !== undefined && !exists(abs(p))) {
        report(
          'error',
          'missing-file',
          at('tls', k),
          `${k} file ${p} does not exist (looked at ${abs(p)})`,
          'fix the path (relative to the config file)',
        );
      }
    }
  }
  if (endpoint.kind === 'ssh' && endpoint.identityFile !== undefined && !exists(abs(endpoint.identityFile))) {
    report(
      'error',
      'missing-file',
      at('identityFile'),
      `identity file ${endpoint.identityFile} does not exist`,
      'fix the path, or remove it to use the ssh agent',
    );
  }
}
