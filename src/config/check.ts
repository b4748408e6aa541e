/**
 * Semantic checks a careful reviewer would make, beyond the schema. Pure: the file system is
 * reached only through the `exists` function the caller passes in.
 */
import path from 'node:path';
import { type Diagnostic, formatConfigPath, maskCredentials } from '../diagnostics.ts';
import { error, type KindProblem, warning } from '../outputs/common.ts';
import { driverFor, isFileOutput, kindOf } from '../outputs/drivers.ts';
import { defaultCertFile, type haproxyMapPattern, resolveConfigPath } from './paths.ts';
import type { ClusterConfig, Config, Endpoint, FileOutput, OutputConfig } from './schema.ts';
import { clusterTimeoutMs, watchWaits } from './settings.ts';

export { defaultCertFile, haproxyMapFile, haproxyMapPattern, MAP_HASH_LENGTH, resolveConfigPath } from './paths.ts';

export interface CheckContext {
  /** Directory of the config file; relative paths in the config are relative to it. */
  configDir: string;
  /** Shown in diagnostics. */
  displayFile: string;
  exists: (absolutePath: string) => boolean;
  /** Reads a text file (throws when it cannot); without it, file contents are not checked. */
  readText?: (absolutePath: string) => string;
  locate: (
    configPath: readonly PropertyKey[],
    options?: { key?: boolean },
  ) => { line: number; column: number } | undefined;
  /** Absolute path of the config file: no output may overwrite it. */
  configFile?: string;
  /** What is on disk at a path (src/config/probe.ts). Without it, paths are compared as written. */
  probe?: (absolutePath: string) => PathProbe;
  /** `--out-dir`: every output is then written there, by file name (as `outputFile` in pipeline.ts). */
  outDir?: string;
  /** Files the run reads besides the config's own (`--snapshot`): no output may overwrite them either. */
  inputs?: readonly { file: string; what: string }[];
}

/** What is at a path an output would write. */
export interface PathProbe {
  /** The path with the symlinks of its existing folders followed. */
  location: string;
  /** Where the path itself points when it is an existing symlink. */
  target?: string;
  kind: 'missing' | 'file' | 'directory' | 'fifo' | 'socket' | 'device' | 'other';
  /** An existing ancestor that is not a folder: the file cannot be created (ENOTDIR). */
  notDirectory?: string;
}

type Where = readonly PropertyKey[];

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

/**
 * The semantic checks, as a list of named rules: each reports problems with the config path they
 * are about. `checkConfig` runs them all, so one run reports every problem.
 */
export const CONFIG_RULES: readonly {
  name: string;
  check: (input: RuleInput) => void;
}[] = [
  { name: 'clusters', check: checkClusters },
  { name: 'rules', check: checkRules },
  { name: 'outputs', check: checkOutputs },
  { name: 'output targets', check: ({ config, ctx, report }) => checkOutputTargets(config, ctx, report) },
  { name: 'outputs exist', check: checkOutputsExist },
  { name: 'clusters used', check: checkClustersUsed },
  { name: 'watch', check: checkWatch },
  { name: 'agents', check: checkAgents },
  { name: 'acme', check: checkAcme },
  { name: 'policy files', check: checkPolicyFiles },
];

export function checkConfig(config: Config, ctx: CheckContext): Diagnostic[] {
  const out: Diagnostic[] = [];
  const report: Report = (severity, code, where, message, fix) => {
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
  const clusterNames = Object.keys(config.clusters);
  for (const rule of CONFIG_RULES) rule.check({ config, ctx, report, abs, clusterNames });
  return out;
}

type Report = (severity: Diagnostic['severity'], code: string, where: Where, message: string, fix?: string) => void;

/** What every rule is given. */
interface RuleInput {
  config: Config;
  ctx: CheckContext;
  report: Report;
  /** A config path made absolute (config-relative). */
  abs: (p: string) => string;
  clusterNames: readonly string[];
}

/** Clusters: at least one; each engine read once; endpoints, node addresses and timeouts that can work. */
function checkClusters({ config, ctx, report, abs, clusterNames }: RuleInput): void {
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
    const timeout = cluster.timeout === undefined ? undefined : clusterTimeoutMs(cluster);
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
}

/** Rules: none given twice; the opt-ins that widen what a deployer can do are said out loud. */
function checkRules({ config, report }: RuleInput): void {
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
    if (rule.allowBroadWildcards) {
      report(
        'warning',
        'broad-wildcards',
        ['rules', i, 'allowBroadWildcards'],
        'wildcards on a public suffix or a single label (`*.com`) are allowed: one service can take every host under it that no other route names',
        'only enable this where every deployer is trusted with those hosts',
      );
    }
  });
}

/** What the outputs checked so far claim: names, files, families of hashed files, listeners. */
interface Claims {
  names: Map<string, number>;
  files: Map<string, string>;
  families: Array<ReturnType<typeof haproxyMapPattern> & { owner: string }>;
  listeners: Map<string, string>;
}

/** A rule about one output (problems at paths inside it), given what the outputs before it claim. */
type OutputCheck = (output: OutputConfig, i: number, input: RuleInput, claims: Claims) => KindProblem[];

/** No two outputs share a name. */
const uniqueName: OutputCheck = (output, i, _input, { names }) => {
  if (output.name === undefined) return [];
  const first = names.get(output.name);
  if (first === undefined) {
    names.set(output.name, i);
    return [];
  }
  return [
    error(
      'duplicate-output-name',
      ['name'],
      `output name "${output.name}" is already used by outputs[${first}]`,
      'give each output its own name',
    ),
  ];
};

/** Every cluster an output names is declared. */
const knownClusters: OutputCheck = (output, _i, { config, clusterNames }) =>
  (output.clusters ?? []).flatMap((c, j) =>
    c in config.clusters
      ? []
      : [
          error(
            'unknown-cluster',
            ['clusters', j],
            `unknown cluster "${c}"`,
            clusterNames.length ? `use one of: ${clusterNames.join(', ')}` : 'declare it under `clusters`',
          ),
        ],
  );

/**
 * No two file outputs write one file. The main file by its path; the HAProxy maps by their name
 * pattern (`haproxy.hosts.*.map`): an output removes the maps it replaced, so two outputs sharing
 * a pattern, or a file that matches another output's pattern, would remove each other's files.
 */
const uniqueFile: OutputCheck = (output, i, { ctx, abs }, { files, families }) => {
  if (!isFileOutput(output)) return [];
  const main = abs(output.file);
  const family = driverFor(output).families(main)[0];
  const clash =
    files.get(main) ??
    (family ? files.get(family.display) : undefined) ??
    families.find((f) => f.dir === path.dirname(main) && f.pattern.test(path.basename(main)))?.owner ??
    (family
      ? [...files].find(([file]) => path.dirname(file) === family.dir && family.pattern.test(path.basename(file)))?.[1]
      : undefined);
  const target = files.has(main) || !family ? main : family.display;
  if (clash !== undefined) {
    return [
      error(
        'duplicate-file',
        ['file'],
        `${clash} already writes ${path.relative(ctx.configDir, target) || target}`,
        'give each output its own file: the last writer would silently win',
      ),
    ];
  }
  files.set(main, `outputs[${i}]`);
  if (family) {
    files.set(family.display, `outputs[${i}]`);
    families.push({ ...family, owner: `outputs[${i}]` });
  }
  return [];
};

/** A file output's listeners: each port once in the output, each address:port once in the config. */
const listenerPorts: OutputCheck = (output, i, _input, { listeners }) => {
  if (!isFileOutput(output)) return [];
  const found: KindProblem[] = [];
  const own = new Set<number>();
  for (const { address, port, path: where } of driverFor(output).listeners(output)) {
    if (own.has(port)) {
      found.push(
        error(
          'port-conflict',
          where,
          `port ${port} is used twice by this output`,
          'give the HTTP, HTTPS and stats listeners different ports',
        ),
      );
    }
    own.add(port);
    const key = `${address}:${port}`;
    const other = listeners.get(key);
    if (other !== undefined) {
      found.push(
        warning(
          'port-shared',
          where,
          `${key} is also a listener of ${other}`,
          'fine when the two proxies run on different hosts; on one host the second cannot start',
        ),
      );
    } else {
      listeners.set(key, `outputs[${i}]`);
    }
  }
  return found;
};

/** The kind's own rules (src/outputs/<kind>.ts), through the registry. */
const kindRules: OutputCheck = (output, _i, { config, ctx }) => {
  const kindCtx = { config, configDir: ctx.configDir, exists: ctx.exists, readText: ctx.readText };
  return kindOf(output).rules.flatMap((r) => r.check(output, kindCtx));
};

/** The rules about each output, in the order their problems are reported. */
export const OUTPUT_RULES: readonly { name: string; check: OutputCheck }[] = [
  { name: 'unique name', check: uniqueName },
  { name: 'known clusters', check: knownClusters },
  { name: 'unique file', check: uniqueFile },
  { name: 'listeners', check: listenerPorts },
  { name: 'kind rules', check: kindRules },
];

/** Each output, through OUTPUT_RULES. */
function checkOutputs(input: RuleInput): void {
  const claims: Claims = { names: new Map(), files: new Map(), families: [], listeners: new Map() };
  input.config.outputs.forEach((output, i) => {
    for (const r of OUTPUT_RULES)
      for (const p of r.check(output, i, input, claims))
        input.report(p.severity, p.code, ['outputs', i, ...p.path], p.message, p.fix);
  });
}

/** A config with no outputs produces nothing. */
function checkOutputsExist({ config, report }: RuleInput): void {
  if (config.outputs.length === 0) {
    report(
      'warning',
      'no-outputs',
      ['outputs'],
      'no outputs: interlock will read the clusters and produce nothing',
      'add a haproxy, nginx, carbon or log output',
    );
  }
}

/** The folder labels name users files and error pages in (README, Traffic policies). */
function checkPolicyFiles({ config, ctx, report, abs }: RuleInput): void {
  if (config.policyFiles === undefined || ctx.exists(abs(config.policyFiles))) return;
  report(
    'warning',
    'policy-files',
    ['policyFiles'],
    `the policyFiles folder ${abs(config.policyFiles)} does not exist: every service that names a users file or an error page is refused`,
    'create it, or mount the Docker secrets there (a service secret is at /run/secrets/NAME)',
  );
}

/** A cluster no output reads is read for nothing. */
function checkClustersUsed({ config, report, clusterNames }: RuleInput): void {
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
}

/** The daemon's waits: debounce min ≤ max, and a reconcile interval the managers can bear. */
function checkWatch({ config, report }: RuleInput): void {
  if (config.watch) {
    const { minMs: min, maxMs: max, reconcileMs: reconcile } = watchWaits(config);
    if (min > max) {
      report(
        'error',
        'debounce-order',
        ['watch', 'debounce'],
        `debounce min (${min}ms) is longer than max (${max}ms)`,
        'min is the quiet time after each event; max caps the whole wait: make min ≤ max',
      );
    }
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
}

/**
 * Outputs served to agents: `serve` needs `agents`; `write: false` needs `serve`; what the proxy
 * reads (certificates, Nginx's run folder) must sit under the output's folder, the one folder an
 * agent writes (src/fleet/bundle.ts).
 */
function checkAgents({ config, report, abs }: RuleInput): void {
  config.outputs.forEach((output, i) => {
    if (!isFileOutput(output)) return;
    if (output.serve && !config.agents)
      report(
        'error',
        'serve-without-agents',
        ['outputs', i, 'serve'],
        'this output is served, but the config has no `agents`',
        'add `agents: { tokenFile: ... }` at the top level, or remove `serve`',
      );
    if (output.write === false && !output.serve)
      report(
        'error',
        'write-nothing',
        ['outputs', i, 'write'],
        'with `write: false` and no `serve`, this output goes nowhere',
        'set `serve: true`, or remove `write: false`',
      );
    if (!output.serve) return;
    const root = path.dirname(abs(output.file));
    const under = (p: string) => {
      const rel = path.relative(root, p);
      return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
    };
    const fix = `agents write only under ${root}: move it there (it is the path on the proxy hosts too)`;
    if (output.https && !under(abs(output.https.certDir)))
      report(
        'error',
        'served-outside',
        ['outputs', i, 'https', 'certDir'],
        `certDir ${abs(output.https.certDir)} is outside the served output's folder ${root}`,
        fix,
      );
    if (output.https?.defaultCert && !under(defaultCertFile(abs('.'), output.https)))
      report(
        'error',
        'served-outside',
        ['outputs', i, 'https', 'defaultCert'],
        `defaultCert is outside the served output's folder ${root}`,
        fix,
      );
    if ('runDir' in output && output.runDir !== undefined && abs(output.runDir) !== root && !under(abs(output.runDir)))
      report(
        'error',
        'served-outside',
        ['outputs', i, 'runDir'],
        `runDir ${abs(output.runDir)} is outside the served output's folder ${root}`,
        fix,
      );
  });
}

/**
 * ACME: the CA validates HTTP-01 on `acme.httpPort` (80 for public CAs), so some proxy must listen
 * for HTTP there; certificates are only served by outputs with an https listener.
 */
function checkAcme({ config, ctx, report, abs }: RuleInput): void {
  const acme = config.acme;
  if (!acme) return;
  const files = config.outputs.filter(isFileOutput);
  if (!files.some((o) => o.http.port === acme.httpPort)) {
    report(
      'warning',
      'acme-no-http-listener',
      ['acme', 'httpPort'],
      `no output listens for HTTP on port ${acme.httpPort}, where the ACME server validates HTTP-01 challenges: no certificate can be issued`,
      `give an haproxy or nginx output \`http: { port: ${acme.httpPort} }\` reachable by the CA, or set acme.httpPort to the port of the HTTP listener that gets the CA's requests`,
    );
  }
  if (files.length > 0 && !files.some((o) => o.https)) {
    report(
      'warning',
      'acme-no-https',
      ['acme'],
      'no output has an https listener: ACME certificates would be issued but not served',
      'add `https: { port: 443, certDir: ... }` to the haproxy or nginx output',
    );
  }
  if (acme.caFile && !ctx.exists(abs(acme.caFile))) {
    report(
      'error',
      'acme-ca-file',
      ['acme', 'caFile'],
      `${abs(acme.caFile)} does not exist`,
      "name the PEM file of the CA that signed the ACME server's certificate",
    );
  }
}

// ---------- where outputs write ----------

/**
 * System folders no output may write into (after symlinks are followed), and any user's `.ssh`
 * and `.gnupg`. A proxy's own folder is allowed: a name starting with haproxy, nginx or
 * openresty right under /etc, /usr/local/etc or /usr/local (/etc/haproxy/, /etc/nginx/,
 * /usr/local/etc/haproxy/, /usr/local/openresty/nginx/conf/, …).
 */
const SYSTEM_FOLDERS = [
  '/etc',
  '/private/etc',
  '/usr',
  '/bin',
  '/sbin',
  '/lib',
  '/lib32',
  '/lib64',
  '/libx32',
  '/boot',
  '/proc',
  '/sys',
  '/dev',
  '/var/spool/cron',
];
const PROXY_HOMES = ['/etc', '/private/etc', '/usr/local/etc', '/usr/local'];
const PROXY_NAME = /^(haproxy|nginx|openresty)/i;

/** The system folder `file` lies in, or undefined when an output may write there. */
export function systemLocation(file: string): string | undefined {
  const parts = file.split('/');
  const secret = parts.findIndex((part) => part === '.ssh' || part === '.gnupg');
  if (secret > 0) return parts.slice(0, secret + 1).join('/');
  for (const home of PROXY_HOMES) {
    if (file.startsWith(`${home}/`) && PROXY_NAME.test(file.slice(home.length + 1))) return undefined;
  }
  return SYSTEM_FOLDERS.find((folder) => file === folder || file.startsWith(`${folder}/`));
}

/**
 * Every file an output writes: its own file, then the files next to it. A family of files named by
 * content hash (HAProxy's `haproxy.hosts.*.map`) stands in by its unhashed name
 * (`haproxy.hosts.map`): a start-up clean-up removes whatever carries the family's name, the
 * unhashed one of older versions included.
 */
export function outputFiles(output: FileOutput, file: string): string[] {
  return [
    file,
    ...driverFor(output)
      .families(file)
      .filter((f) => !f.perRoute)
      .map((f) => f.display.replace('.*.', '.')),
  ];
}

interface Input {
  /** The path as written (resolved) and where it really is. */
  names: string[];
  what: string;
  /** The output it belongs to (for "its own template"). */
  owner?: number;
  /** A folder: nothing may be written inside it. */
  folder?: boolean;
}

const KIND_TEXT: Record<PathProbe['kind'], string> = {
  missing: 'missing',
  file: 'a file',
  directory: 'a directory',
  fifo: 'a FIFO',
  socket: 'a socket',
  device: 'a device',
  other: 'something else',
};

/**
 * Where outputs write. For every file an output writes (its own and the HAProxy host map), the
 * first that applies of: it cannot be created (a file where a folder should be); it lies in a
 * system location; it is an input of this run (the config, a template, a TLS or key file, a
 * socket, a pid file, a snapshot, or inside a certificate folder); something that is not a
 * regular file is there (a directory, a FIFO, a socket, a device). Then: no two outputs write
 * one file. Paths are compared after symlinks are followed. With `outDir`, the files written
 * there are checked the same way (two outputs with one file name collide there).
 */
function checkOutputTargets(
  config: Config,
  ctx: CheckContext,
  report: (s: Diagnostic['severity'], code: string, where: Where, message: string, fix?: string) => void,
): void {
  const probe = ctx.probe ?? ((p: string): PathProbe => ({ location: p, kind: 'missing' }));
  const abs = (p: string) => resolveConfigPath(ctx.configDir, p);
  const namesOf = (p: string, found = probe(p)) => [
    ...new Set([p, found.location, ...(found.target ? [found.target] : [])]),
  ];

  const inputs: Input[] = [];
  const input = (file: string | undefined, what: string, extra: Partial<Input> = {}) => {
    if (file !== undefined) inputs.push({ names: namesOf(abs(file)), what, ...extra });
  };
  if (ctx.configFile) input(ctx.configFile, 'the config file');
  for (const extra of ctx.inputs ?? []) input(extra.file, extra.what);
  for (const [name, cluster] of Object.entries(config.clusters)) {
    const endpoint = cluster.endpoint;
    if (endpoint?.kind === 'socket') input(endpoint.path, `the Docker socket of cluster "${name}"`);
    if (endpoint?.kind === 'tcp')
      for (const k of ['ca', 'cert', 'key'] as const)
        input(endpoint.tls?.[k], `the TLS ${k} file of cluster "${name}"`);
    if (endpoint?.kind === 'ssh') input(endpoint.identityFile, `the ssh identity file of cluster "${name}"`);
  }
  config.outputs.forEach((output, owner) => {
    if (!isFileOutput(output)) return;
    input(output.template, 'template', { owner });
    input(output.https?.certDir, 'certificate folder', { owner, folder: true });
    input(output.https?.defaultCert, 'default certificate', { owner });
    if (output.reload?.kind === 'signal') input(output.reload.pidFile, 'pid file', { owner });
    if (output.reload?.kind === 'haproxy-master') input(output.reload.socket, 'master socket', { owner });
    for (const extra of driverFor(output).inputs(output)) input(extra.file, extra.what, { owner });
    if (output.validate?.kind === 'binary') input(output.validate.path, 'proxy binary', { owner });
  });
  const overwrites = (names: readonly string[], i: number): string | undefined => {
    const hit = inputs.find((x) =>
      names.some((n) => x.names.some((m) => n === m || (x.folder === true && n.startsWith(`${m}${path.sep}`)))),
    );
    if (!hit) return undefined;
    const what =
      hit.owner === undefined
        ? hit.what
        : hit.owner === i
          ? `its own ${hit.what}`
          : `the ${hit.what} of outputs[${hit.owner}]`;
    return hit.folder ? `a file inside ${what}` : what;
  };

  const reported = new Set<string>();
  for (const outDir of ctx.outDir === undefined ? [undefined] : [undefined, ctx.outDir]) {
    // Shown relative to the config folder when inside it; absolute under --out-dir.
    const shown = (p: string) => {
      const rel = path.relative(ctx.configDir, p);
      return outDir === undefined && rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : p;
    };
    const claimed = new Map<string, { owner: number; target: string }>();
    config.outputs.forEach((output, i) => {
      if (!isFileOutput(output)) return;
      const file =
        outDir === undefined ? abs(output.file) : path.join(path.resolve(outDir), path.basename(abs(output.file)));
      for (const [k, target] of outputFiles(output, file).entries()) {
        const found = probe(target);
        const names = namesOf(target, found);
        const label = k === 0 ? shown(target) : `its host map ${shown(target)}`;
        const system = names.map(systemLocation).find((s) => s !== undefined);
        const input = overwrites(names, i);
        const problem: [string, string, string] | undefined = found.notDirectory
          ? [
              'output-parent-not-dir',
              `${label} cannot be created: ${shown(found.notDirectory)} is a file, not a folder`,
              'fix the path, or move that file away',
            ]
          : system !== undefined
            ? [
                'output-system-path',
                `${label} lies in ${system}, a system location interlock never writes to`,
                'write it to a folder of its own (e.g. /etc/haproxy/, /etc/nginx/ or /var/lib/interlock/) and point the proxy there',
              ]
            : input !== undefined
              ? [
                  'output-overwrites-input',
                  `${label} would overwrite ${input}`,
                  'give every output a file of its own: interlock replaces what it writes',
                ]
              : found.kind !== 'missing' && found.kind !== 'file'
                ? [
                    'output-not-file',
                    `${label} is ${KIND_TEXT[found.kind]}, not a regular file`,
                    'name a file (interlock creates it), or remove what is there',
                  ]
                : undefined;
        if (problem) {
          const key = `${i}\0${problem[0]}\0${found.location}`;
          if (!reported.has(key)) report('error', problem[0], ['outputs', i, 'file'], problem[1], problem[2]);
          reported.add(key);
          // One problem per output is enough: its other files are not written either.
          break;
        }
        const hit = names.map((n) => claimed.get(n)).find((c) => c !== undefined && c.owner !== i);
        const first = hit?.owner;
        if (hit === undefined) {
          for (const n of names) claimed.set(n, { owner: i, target });
        } else if (outDir === undefined) {
          // The same path spelt the same way is `duplicate-file` in checkConfig (map name patterns
          // included); here: the same file reached through a symlink.
          if (hit.target !== target)
            report(
              'error',
              'duplicate-file',
              ['outputs', i, 'file'],
              `outputs[${first}] already writes ${shown(target)} (through a symbolic link)`,
              'give each output its own file: the last writer would silently win',
            );
        } else {
          report(
            'error',
            'out-dir-collision',
            ['outputs', i, 'file'],
            `with --out-dir ${outDir}, outputs[${first}] and outputs[${i}] both write ${target}`,
            'give the outputs different file names, or render them without --out-dir',
          );
        }
      }
    });
  }
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
