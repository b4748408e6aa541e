/**
 * What the output kinds share: the shape of a check rule and what it is given, and the parts every
 * file output (HAProxy, Nginx) has alike: listeners, TLS paths, and the rules about the keys they
 * all carry (template, certificates, validate, reload). Pure: the file system is reached only
 * through the functions in the context.
 */
import path from 'node:path';
import { defaultCertFile, resolveConfigPath } from '../config/paths.ts';
import { pemPairProblem } from '../config/pem.ts';
import type { Config, FileOutput, OutputConfig } from '../config/schema.ts';
import { RenderError } from '../render/types.ts';

/** A problem an output rule found, at a path inside the output (`['https', 'certDir']`). */
export interface KindProblem {
  severity: 'error' | 'warning';
  code: string;
  path: PropertyKey[];
  message: string;
  fix?: string;
}

/** What an output rule is given besides the output. */
export interface OutputCheckContext {
  config: Config;
  /** Directory of the config file; relative paths in the config are relative to it. */
  configDir: string;
  exists: (absolutePath: string) => boolean;
  /** Reads a text file (throws when it cannot); without it, file contents are not checked. */
  readText?: ((absolutePath: string) => string) | undefined;
}

/** One thing `validate` checks about an output: a name and a small function returning problems. */
export interface OutputRule<O extends OutputConfig = OutputConfig> {
  name: string;
  check: (output: O, ctx: OutputCheckContext) => KindProblem[];
}

/** An output kind as `validate` knows it: its named rules, in the order their problems are reported. */
export interface OutputKind<O extends OutputConfig = OutputConfig> {
  kind: O['kind'];
  rules: readonly OutputRule<O>[];
}

/** Defines a rule (types the output from the kind's rule list). */
export function rule<O extends OutputConfig>(
  name: string,
  check: (output: O, ctx: OutputCheckContext) => KindProblem[],
): OutputRule<O> {
  return { name, check };
}

function problem(
  severity: KindProblem['severity'],
  code: string,
  where: PropertyKey[],
  message: string,
  fix?: string,
): KindProblem {
  return { severity, code, path: where, message, ...(fix ? { fix } : {}) };
}

export const error = (code: string, where: PropertyKey[], message: string, fix?: string) =>
  problem('error', code, where, message, fix);
export const warning = (code: string, where: PropertyKey[], message: string, fix?: string) =>
  problem('warning', code, where, message, fix);

/** A `HOST:PORT` address's port when it is in 1–65535, else the text after the last colon. */
export function addressPort(address: string): { port: number } | { text: string } {
  const text = address.slice(address.lastIndexOf(':') + 1);
  const port = Number(text);
  return port >= 1 && port <= 65535 ? { port } : { text };
}

// ---------- every file output ----------

/**
 * What the renderer refuses about the config's own values (a path Nginx would read a `$` in, a
 * name HAProxy cannot quote), found by building the view with no routes: `validate` refuses
 * exactly what `render` would.
 */
export function writable(build: () => unknown): KindProblem[] {
  try {
    build();
    return [];
  } catch (e) {
    if (!(e instanceof RenderError)) throw e;
    return [error('not-writable', [], `${e.message}`, 'change that value: the rendered file could not hold it')];
  }
}

export function commonListeners(output: FileOutput): { address: string; port: number; path: PropertyKey[] }[] {
  return [
    { address: output.http.address, port: output.http.port, path: ['http', 'port'] },
    ...(output.https ? [{ address: output.https.address, port: output.https.port, path: ['https', 'port'] }] : []),
  ];
}

export function absoluteTls<O extends FileOutput>(output: O, configDir: string): O {
  if (!output.https) return output;
  const https = {
    ...output.https,
    certDir: path.resolve(configDir, output.https.certDir),
    ...(output.https.defaultCert ? { defaultCert: defaultCertFile(configDir, output.https) } : {}),
  };
  return { ...output, https };
}

/** Your own template must be there. */
export const templateExists = rule<FileOutput>('template exists', (output, ctx) => {
  if (output.template === undefined) return [];
  const file = resolveConfigPath(ctx.configDir, output.template);
  if (ctx.exists(file)) return [];
  return [
    error(
      'missing-template',
      ['template'],
      `template ${output.template} does not exist (looked at ${file})`,
      'fix the path (relative to the config file), or remove `template` to use the built-in one',
    ),
  ];
});

/** The certificate folder should be there (it may exist only on the proxy host). */
export const certDirExists = rule<FileOutput>('certificate folder exists', (output, ctx) => {
  if (!output.https || ctx.exists(resolveConfigPath(ctx.configDir, output.https.certDir))) return [];
  return [
    warning(
      'missing-cert-dir',
      ['https', 'certDir'],
      `certificate directory ${output.https.certDir} does not exist here`,
      'fine if it exists on the proxy host; `haproxy -c` / `nginx -t` will fail where it is missing',
    ),
  ];
});

/** The default certificate must be there and hold a certificate with its key (both proxies need both). */
export const defaultCertUsable = rule<FileOutput>('default certificate usable', (output, ctx) => {
  const https = output.https;
  if (https?.defaultCert === undefined || !ctx.exists(resolveConfigPath(ctx.configDir, https.certDir))) return [];
  const where = ['https', 'defaultCert'];
  const file = defaultCertFile(ctx.configDir, https);
  if (!ctx.exists(file)) {
    return [
      error(
        'default-cert-missing',
        where,
        `default certificate ${https.defaultCert} does not exist (looked at ${file})`,
        'give a file name inside https.certDir (or an absolute path) holding the certificate and its private key',
      ),
    ];
  }
  if (!ctx.readText) return [];
  let text: string;
  try {
    text = ctx.readText(file);
  } catch (e) {
    return [
      warning(
        'default-cert-unreadable',
        where,
        `default certificate ${file} cannot be read here (${e instanceof Error ? e.message : String(e)})`,
        'fine if the proxy can read it; `haproxy -c` / `nginx -t` fail where it cannot',
      ),
    ];
  }
  const found = pemPairProblem(text);
  return found === undefined
    ? []
    : [
        error(
          'default-cert-invalid',
          where,
          `default certificate ${file}: ${found}`,
          'put the certificate (then its chain) and its unencrypted private key in this one PEM file',
        ),
      ];
});

/** A `docker-signal` reload names a declared cluster, or there is only one. */
export const reloadCluster = rule<FileOutput>('reload cluster', (output, { config }) => {
  if (output.reload?.kind !== 'docker-signal') return [];
  const names = Object.keys(config.clusters);
  const c = output.reload.cluster;
  if (c !== undefined && !(c in config.clusters))
    return [
      error('unknown-cluster', ['reload', 'cluster'], `unknown cluster "${c}"`, `use one of: ${names.join(', ')}`),
    ];
  if (c === undefined && names.length > 1)
    return [
      error(
        'ambiguous-cluster',
        ['reload'],
        'docker-signal reload needs `cluster` when more than one cluster is declared',
        `add cluster: one of ${names.join(', ')}`,
      ),
    ];
  return [];
});

/** A rendered file is checked before it replaces the running one, by a command that sees it. */
export const validateSetting = rule<FileOutput>('validate setting', (output) => {
  if (output.validate?.kind === 'none')
    return [
      warning(
        'no-validation',
        ['validate'],
        'rendered files are not validated before they replace the running config',
        "remove `validate` to use the proxy's own check",
      ),
    ];
  if (output.validate?.kind === 'command' && !output.validate.command.some((a) => a.includes('{file}')))
    return [
      error(
        'validate-no-file',
        ['validate', 'command'],
        'the validate command never mentions {file}, so it cannot check the new file',
        'add {file} where the file to check goes',
      ),
    ];
  return [];
});

/** The rules every file output shares, in the order `validate` reports them. */
export const FILE_OUTPUT_RULES: readonly OutputRule<FileOutput>[] = [
  templateExists,
  certDirExists,
  defaultCertUsable,
  reloadCluster,
  validateSetting,
];
