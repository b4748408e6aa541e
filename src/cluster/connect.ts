/**
 * Where a cluster's Docker Engine is and how to reach it, resolved the way the docker CLI resolves
 * it (DOCKER_HOST, then DOCKER_CONTEXT, then `currentContext` in config.json, then the default
 * socket), and a dockerode client for it. The parts: engine addresses (host-url.ts), the docker
 * CLI's context store (context-store.ts), the dockerode options per transport with their TLS and
 * ssh material (engine-options.ts), ssh known_hosts (known-hosts.ts), the client (docker-client.ts).
 *
 * Key material (TLS keys, ssh private keys) lives only in the non-enumerable `dockerOptions`, so
 * logging or serialising a resolved endpoint never prints it; `display` and every message name
 * files and addresses, never their contents.
 */
import os from 'node:os';
import path from 'node:path';
import type { ClusterConfig } from '../config/schema.ts';
import { clusterTimeoutMs, DEFAULTS } from '../config/settings.ts';
import { ClusterError } from '../errors.ts';
import { currentContext, readContext } from './context-store.ts';
import {
  type BuildContext,
  type Built,
  buildEndpoint,
  type EndpointDockerOptions,
  type TlsFiles,
} from './engine-options.ts';
import { DEFAULT_DOCKER_SOCKET, type EndpointKind, parseHostUrl, type Target } from './host-url.ts';
import { existing, nonEmpty } from './local-files.ts';

export { contextDirName } from './context-store.ts';
export { connect } from './docker-client.ts';
export type { EndpointDockerOptions } from './engine-options.ts';
export { DEFAULT_DOCKER_SOCKET, type EndpointKind } from './host-url.ts';
export { type HostKeys, knownHostKeys } from './known-hosts.ts';

/**
 * Default bound on reaching an engine. Below the 10 s a user waits for a one-line error, leaving
 * room for process start-up and reporting.
 */
export const DEFAULT_TIMEOUT_MS = DEFAULTS.clusterTimeoutMs;

/** Where the endpoint came from, for messages: the config, a CLI context, or the environment. */
export type EndpointSource =
  | { kind: 'config' }
  | { kind: 'context'; name: string; via: 'config' | 'DOCKER_CONTEXT' | 'config.json' }
  | { kind: 'env'; variable: 'DOCKER_HOST' }
  | { kind: 'default' };

export interface ResolvedEndpoint {
  /** Cluster name from the config. */
  readonly cluster: string;
  readonly kind: EndpointKind;
  /** Safe to log: the engine address and where it came from, never key material. */
  readonly display: string;
  readonly source: EndpointSource;
  /** Present when the connection uses TLS; `verify` is false only when explicitly turned off. */
  readonly tls: { readonly verify: boolean } | undefined;
  /** Bound on connecting and on each read, in milliseconds. */
  readonly timeoutMs: number;
  /** Things the caller must say once at start (e.g. TLS verification is off). */
  readonly warnings: readonly string[];
  /** Non-enumerable: holds key material. Pass to connect(), never print. */
  readonly dockerOptions: EndpointDockerOptions;
}

export interface ResolveOptions {
  /** The cluster's name in the config, for messages. */
  name: string;
  /** Directory of the config file: relative TLS and identity paths are relative to it. */
  configDir: string;
  /** The docker CLI's config directory. Default: $DOCKER_CONFIG or ~/.docker. */
  dockerConfigDir?: string;
  /** ssh known_hosts file. Default: ~/.ssh/known_hosts. */
  knownHostsFile?: string;
}

type Env = Record<string, string | undefined>;

/** Resolves a cluster's endpoint to something connect() can use. Reads files; connects to nothing. */
export async function resolveEndpoint(
  cluster: ClusterConfig,
  env: Env,
  options: ResolveOptions,
): Promise<ResolvedEndpoint> {
  const ctx = new ResolveContext(cluster, env, options);
  const endpoint = cluster.endpoint ?? { kind: 'env' as const };
  let source: EndpointSource;
  let built: Built;
  switch (endpoint.kind) {
    case 'socket': {
      source = { kind: 'config' };
      built = await ctx.build(ctx.parse(`unix://${path.resolve(options.configDir, endpoint.path)}`, false), source, {
        tls: undefined,
      });
      break;
    }
    case 'tcp': {
      source = { kind: 'config' };
      const target = ctx.parse(endpoint.host, endpoint.tls !== undefined);
      built = await ctx.build(target, source, {
        tls: endpoint.tls && {
          verify: endpoint.tls.verify !== false,
          files: {
            ca: endpoint.tls.ca && path.resolve(options.configDir, endpoint.tls.ca),
            cert: endpoint.tls.cert && path.resolve(options.configDir, endpoint.tls.cert),
            key: endpoint.tls.key && path.resolve(options.configDir, endpoint.tls.key),
          },
          what: 'tls.verify: false',
        },
      });
      break;
    }
    case 'ssh': {
      source = { kind: 'config' };
      built = await ctx.build(ctx.parse(endpoint.host, false), source, {
        tls: undefined,
        identityFile: endpoint.identityFile && path.resolve(options.configDir, endpoint.identityFile),
      });
      break;
    }
    case 'context': {
      ({ source, built } = await ctx.fromContext(endpoint.name, 'config'));
      break;
    }
    case 'env': {
      ({ source, built } = await ctx.fromEnv());
      break;
    }
  }
  const resolved: Omit<ResolvedEndpoint, 'dockerOptions'> = {
    cluster: options.name,
    kind: built.kind,
    display: built.display,
    source,
    tls: built.tls,
    timeoutMs: ctx.timeoutMs,
    warnings: built.warnings,
  };
  return Object.defineProperty(resolved, 'dockerOptions', {
    value: built.dockerOptions,
    enumerable: false,
  }) as ResolvedEndpoint;
}

// ---------- internals ----------

class ResolveContext implements BuildContext {
  readonly timeoutMs: number;
  readonly dockerConfigDir: string;
  readonly home: string;
  readonly cluster: ClusterConfig;
  readonly env: Env;
  readonly options: ResolveOptions;
  readonly name: string;
  readonly knownHostsFile: string;

  constructor(cluster: ClusterConfig, env: Env, options: ResolveOptions) {
    this.cluster = cluster;
    this.env = env;
    this.options = options;
    this.timeoutMs = clusterTimeoutMs(cluster);
    this.home = nonEmpty(env.HOME) ?? os.homedir();
    this.dockerConfigDir = options.dockerConfigDir ?? nonEmpty(env.DOCKER_CONFIG) ?? path.join(this.home, '.docker');
    this.name = options.name;
    this.knownHostsFile = options.knownHostsFile ?? path.join(this.home, '.ssh', 'known_hosts');
  }

  parse(host: string, tls: boolean, what = 'endpoint'): Target {
    try {
      return parseHostUrl(host, tls);
    } catch (error) {
      this.fail(`${what}: ${(error as Error).message}`);
    }
  }

  fail(message: string, cause?: unknown): never {
    throw new ClusterError(`cluster "${this.options.name}": ${message}`, cause === undefined ? undefined : { cause });
  }

  /** The docker CLI's order: DOCKER_HOST, DOCKER_CONTEXT, config.json currentContext, default. */
  async fromEnv(): Promise<{ source: EndpointSource; built: Built }> {
    if (nonEmpty(this.env.DOCKER_HOST)) return this.defaultContext();
    const fromEnv = nonEmpty(this.env.DOCKER_CONTEXT);
    if (fromEnv) return this.fromContext(fromEnv, 'DOCKER_CONTEXT');
    const current = await currentContext(this.dockerConfigDir, (m, c) => this.fail(m, c));
    if (current) return this.fromContext(current, 'config.json');
    return this.defaultContext();
  }

  /** The CLI's "default" context: DOCKER_HOST with DOCKER_TLS_VERIFY / DOCKER_CERT_PATH, or the socket. */
  async defaultContext(): Promise<{ source: EndpointSource; built: Built }> {
    const host = nonEmpty(this.env.DOCKER_HOST);
    if (!host) {
      const source: EndpointSource = { kind: 'default' };
      return { source, built: await this.build(parseHostUrl(`unix://${DEFAULT_DOCKER_SOCKET}`, false), source, {}) };
    }
    // As the CLI: any non-empty DOCKER_TLS_VERIFY (even "0") means verify; DOCKER_TLS alone means TLS without.
    const verify = nonEmpty(this.env.DOCKER_TLS_VERIFY) !== undefined;
    const useTls = verify || nonEmpty(this.env.DOCKER_TLS) !== undefined;
    const source: EndpointSource = { kind: 'env', variable: 'DOCKER_HOST' };
    const target = this.parse(host, useTls, 'DOCKER_HOST');
    const certDir = nonEmpty(this.env.DOCKER_CERT_PATH) ?? this.dockerConfigDir;
    const tls =
      useTls && target.kind === 'tcp'
        ? {
            verify,
            files: {
              // The CLI uses ca.pem only to verify; cert and key only when they exist.
              ca: verify ? path.join(certDir, 'ca.pem') : undefined,
              cert: await existing(path.join(certDir, 'cert.pem')),
              key: await existing(path.join(certDir, 'key.pem')),
            },
            what: 'DOCKER_TLS is set without DOCKER_TLS_VERIFY',
          }
        : undefined;
    return { source, built: await this.build(target, source, { tls }) };
  }

  async fromContext(
    name: string,
    via: 'config' | 'DOCKER_CONTEXT' | 'config.json',
  ): Promise<{ source: EndpointSource; built: Built }> {
    if (name === 'default') return this.defaultContext();
    const source: EndpointSource = { kind: 'context', name, via };
    const from = via === 'config' ? '' : ` (named by ${via})`;
    const { host, skipTlsVerify, files } = await readContext(this.dockerConfigDir, name, from, (m, c) =>
      this.fail(m, c),
    );
    const hasTlsData = files.ca !== undefined || files.cert !== undefined || files.key !== undefined;
    const target = this.parse(host, hasTlsData || skipTlsVerify, `Docker context "${name}"`);
    // As the CLI: TLS when the context holds TLS material or skips verification; plain otherwise.
    const tls =
      target.kind === 'tcp' && (hasTlsData || skipTlsVerify)
        ? { verify: !skipTlsVerify, files, what: `context "${name}" has SkipTLSVerify` }
        : undefined;
    return { source, built: await this.build(target, source, { tls }) };
  }

  /** The dockerode options for `target` (reads the TLS or ssh material it needs). */
  build(
    target: Target,
    source: EndpointSource,
    extra: { tls?: TlsFiles | undefined; identityFile?: string | undefined },
  ): Promise<Built> {
    return buildEndpoint(this, target, target.url + sourceSuffix(source), extra);
  }
}

function sourceSuffix(source: EndpointSource): string {
  switch (source.kind) {
    case 'config':
    case 'default':
      return '';
    case 'env':
      return ` from ${source.variable}`;
    case 'context':
      return source.via === 'config'
        ? ` via context "${source.name}"`
        : ` via context "${source.name}" from ${source.via}`;
  }
}
