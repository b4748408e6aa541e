/**
 * Where a cluster's Docker Engine is and how to reach it, resolved the way the docker CLI resolves
 * it (DOCKER_HOST, then DOCKER_CONTEXT, then `currentContext` in config.json, then the default
 * socket), and a dockerode client for it.
 *
 * Key material (TLS keys, ssh private keys) lives only in the non-enumerable `dockerOptions`, so
 * logging or serialising a resolved endpoint never prints it; `display` and every message name
 * files and addresses, never their contents.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createSecureContext } from 'node:tls';
import type Docker from 'dockerode';
import type { ClusterConfig } from '../config/schema.ts';
import { clusterTimeoutMs, DEFAULTS } from '../config/settings.ts';
import { maskCredentials } from '../diagnostics.ts';
import { ClusterError } from '../errors.ts';
import { hostKeyAlgorithms, knownHostKeys } from './known-hosts.ts';

export { connect } from './docker-client.ts';
export { type HostKeys, knownHostKeys } from './known-hosts.ts';

/**
 * Default bound on reaching an engine. Below the 10 s a user waits for a one-line error, leaving
 * room for process start-up and reporting.
 */
export const DEFAULT_TIMEOUT_MS = DEFAULTS.clusterTimeoutMs;

/** The docker CLI's default engine address on Linux. */
export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';

export type EndpointKind = 'socket' | 'tcp' | 'ssh';

/** Where the endpoint came from, for messages: the config, a CLI context, or the environment. */
export type EndpointSource =
  | { kind: 'config' }
  | { kind: 'context'; name: string; via: 'config' | 'DOCKER_CONTEXT' | 'config.json' }
  | { kind: 'env'; variable: 'DOCKER_HOST' }
  | { kind: 'default' };

/** dockerode constructor options, plus what connect() turns into an http(s) agent. */
export interface EndpointDockerOptions extends Docker.DockerOptions {
  pathPrefix?: string;
  /** TLS options for the agent (CA, client certificate and key, verification). */
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer; rejectUnauthorized: boolean };
}

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

interface Target {
  kind: EndpointKind;
  /** The address as a docker host URL (unix://, tcp://, ssh://). */
  url: string;
  socketPath?: string;
  host?: string;
  port?: number;
  username?: string;
  password?: string;
}

interface Built {
  kind: EndpointKind;
  display: string;
  tls: { verify: boolean } | undefined;
  warnings: string[];
  dockerOptions: EndpointDockerOptions;
}

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

/** sha256 hex of a context name: the directory name the docker CLI stores the context under. */
export function contextDirName(name: string): string {
  return createHash('sha256').update(name).digest('hex');
}

// ---------- internals ----------

class ResolveContext {
  readonly timeoutMs: number;
  readonly dockerConfigDir: string;
  readonly home: string;
  readonly cluster: ClusterConfig;
  readonly env: Env;
  readonly options: ResolveOptions;

  constructor(cluster: ClusterConfig, env: Env, options: ResolveOptions) {
    this.cluster = cluster;
    this.env = env;
    this.options = options;
    this.timeoutMs = clusterTimeoutMs(cluster);
    this.home = nonEmpty(env.HOME) ?? os.homedir();
    this.dockerConfigDir = options.dockerConfigDir ?? nonEmpty(env.DOCKER_CONFIG) ?? path.join(this.home, '.docker');
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
    const current = await this.currentContext();
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

  async currentContext(): Promise<string | undefined> {
    const file = path.join(this.dockerConfigDir, 'config.json');
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return undefined;
      this.fail(`cannot read ${file}: ${errorText(error)}`, error);
    }
    try {
      const parsed = JSON.parse(text) as { currentContext?: unknown };
      return typeof parsed.currentContext === 'string' ? nonEmpty(parsed.currentContext) : undefined;
    } catch (error) {
      this.fail(`${file} is not valid JSON: ${errorText(error)}`, error);
    }
  }

  async fromContext(
    name: string,
    via: 'config' | 'DOCKER_CONTEXT' | 'config.json',
  ): Promise<{ source: EndpointSource; built: Built }> {
    if (name === 'default') return this.defaultContext();
    const source: EndpointSource = { kind: 'context', name, via };
    const id = contextDirName(name);
    const storeDir = path.join(this.dockerConfigDir, 'contexts');
    const metaFile = path.join(storeDir, 'meta', id, 'meta.json');
    let text: string;
    try {
      text = await readFile(metaFile, 'utf8');
    } catch (error) {
      if (!isErrno(error, 'ENOENT'))
        this.fail(`cannot read Docker context "${name}" (${metaFile}): ${errorText(error)}`);
      const known = await listContexts(this.dockerConfigDir);
      const from = via === 'config' ? '' : ` (named by ${via})`;
      this.fail(
        `Docker context "${name}"${from} does not exist in ${storeDir}; contexts there: ${known.join(', ')}. Create it with \`docker context create\` or name one of those.`,
      );
    }
    let host: string | undefined;
    let skipTlsVerify = false;
    try {
      const meta = JSON.parse(text) as { Endpoints?: { docker?: { Host?: unknown; SkipTLSVerify?: unknown } } };
      const docker = meta.Endpoints?.docker;
      host = typeof docker?.Host === 'string' ? nonEmpty(docker.Host) : undefined;
      skipTlsVerify = docker?.SkipTLSVerify === true;
    } catch (error) {
      this.fail(`Docker context "${name}": ${metaFile} is not valid JSON: ${errorText(error)}`, error);
    }
    if (!host) this.fail(`Docker context "${name}" has no docker endpoint host (${metaFile})`);
    const tlsDir = path.join(storeDir, 'tls', id, 'docker');
    const files = {
      ca: await existing(path.join(tlsDir, 'ca.pem')),
      cert: await existing(path.join(tlsDir, 'cert.pem')),
      key: await existing(path.join(tlsDir, 'key.pem')),
    };
    const hasTlsData = files.ca !== undefined || files.cert !== undefined || files.key !== undefined;
    const target = this.parse(host, hasTlsData || skipTlsVerify, `Docker context "${name}"`);
    // As the CLI: TLS when the context holds TLS material or skips verification; plain otherwise.
    const tls =
      target.kind === 'tcp' && (hasTlsData || skipTlsVerify)
        ? { verify: !skipTlsVerify, files, what: `context "${name}" has SkipTLSVerify` }
        : undefined;
    return { source, built: await this.build(target, source, { tls }) };
  }

  async build(
    target: Target,
    source: EndpointSource,
    extra: {
      tls?: { verify: boolean; files: { ca?: string; cert?: string; key?: string }; what: string } | undefined;
      identityFile?: string | undefined;
    },
  ): Promise<Built> {
    const display = target.url + sourceSuffix(source);
    const warnings: string[] = [];
    const base = { host: undefined, port: undefined, socketPath: undefined, username: undefined } as const;
    if (target.kind === 'socket') {
      return {
        kind: 'socket',
        display,
        tls: undefined,
        warnings,
        dockerOptions: { ...base, socketPath: target.socketPath, protocol: 'http' },
      };
    }
    if (target.kind === 'tcp') {
      const tls = extra.tls;
      if (!tls) {
        if (!isLoopback(target.host ?? '')) {
          warnings.push(
            `cluster "${this.options.name}": ${display} is plain TCP without TLS: anyone on the network path can read and control the engine`,
          );
        }
        return {
          kind: 'tcp',
          display,
          tls: undefined,
          warnings,
          dockerOptions: { ...base, host: target.host, port: target.port, protocol: 'http', pathPrefix: '/' },
        };
      }
      if (!tls.verify) {
        warnings.push(
          `cluster "${this.options.name}": TLS server verification is off for ${display} (${tls.what}): anyone on the network path can impersonate the engine`,
        );
      }
      if ((tls.files.cert === undefined) !== (tls.files.key === undefined)) {
        this.fail(`TLS for ${display} needs both a client certificate and its key, or neither`);
      }
      const material = {
        ...(tls.files.ca ? { ca: await this.readMaterial(tls.files.ca, 'CA certificate') } : {}),
        ...(tls.files.cert ? { cert: await this.readMaterial(tls.files.cert, 'client certificate') } : {}),
        ...(tls.files.key ? { key: await this.readMaterial(tls.files.key, 'client key') } : {}),
      };
      try {
        // Fails now, with the files named, rather than as an obscure error on the first request.
        createSecureContext(material);
      } catch (error) {
        const files = [tls.files.ca, tls.files.cert, tls.files.key].filter(Boolean).join(', ');
        const code = (error as NodeJS.ErrnoException).code;
        this.fail(
          code === 'ERR_OSSL_X509_KEY_VALUES_MISMATCH'
            ? `TLS failure: the client key does not match the client certificate (${files})`
            : `TLS failure: bad TLS material in ${files} (${code ?? 'unreadable'})`,
          error,
        );
      }
      return {
        kind: 'tcp',
        display,
        tls: { verify: tls.verify },
        warnings,
        dockerOptions: {
          ...base,
          host: target.host,
          port: target.port,
          protocol: 'https',
          pathPrefix: '/',
          tls: { ...material, rejectUnauthorized: tls.verify },
        },
      };
    }
    return { kind: 'ssh', display, tls: undefined, warnings, dockerOptions: await this.sshOptions(target, extra) };
  }

  async sshOptions(target: Target, extra: { identityFile?: string | undefined }): Promise<EndpointDockerOptions> {
    const host = target.host ?? '';
    const port = target.port ?? 22;
    const knownHostsFile = this.options.knownHostsFile ?? path.join(this.home, '.ssh', 'known_hosts');
    const hostKeys = await knownHostKeys(knownHostsFile, host, port);
    const hostLabel = port === 22 ? host : `[${host}]:${port}`;
    if (hostKeys.accepted.length === 0) {
      // ssh would ask; a daemon cannot. Trusting any key would let anyone in the path run the engine.
      this.fail(
        `the ssh host key of ${hostLabel} is not in ${knownHostsFile}; check and accept it once with \`ssh ${port === 22 ? '' : `-p ${port} `}${target.username ? `${target.username}@` : ''}${host} true\``,
      );
    }
    let privateKey: Buffer | undefined;
    const identityFile =
      extra.identityFile ?? (nonEmpty(this.env.SSH_AUTH_SOCK) ? undefined : await this.defaultIdentity());
    if (identityFile) {
      privateKey = await this.readMaterial(identityFile, 'ssh identity file');
      if (isEncryptedKey(privateKey)) {
        this.fail(
          `ssh identity file ${identityFile} is passphrase-protected: load it into ssh-agent (ssh-add) instead`,
        );
      }
    }
    const agent = nonEmpty(this.env.SSH_AUTH_SOCK);
    if (!privateKey && !agent) {
      this.fail(
        `${target.url} needs an ssh key: set endpoint.identityFile, or run an ssh agent (SSH_AUTH_SOCK is not set)`,
      );
    }
    const accepted = hostKeys.accepted;
    const revoked = hostKeys.revoked;
    return {
      host,
      port,
      socketPath: undefined,
      protocol: 'ssh',
      username: target.username ?? nonEmpty(this.env.USER) ?? os.userInfo().username,
      ...(target.password ? { password: target.password } : {}),
      sshOptions: {
        ...(agent ? { agent } : {}),
        ...(privateKey ? { privateKey } : {}),
        readyTimeout: this.timeoutMs,
        // Like OpenSSH, ask for the key types we know for this host; otherwise the server may
        // present another of its keys and a correct known_hosts entry would look like a mismatch.
        algorithms: { serverHostKey: hostKeyAlgorithms(hostKeys.types) },
        hostVerifier: (key: Buffer) => !revoked.some((k) => k.equals(key)) && accepted.some((k) => k.equals(key)),
      },
    };
  }

  async defaultIdentity(): Promise<string | undefined> {
    // The keys ssh tries by default, in its order; one key because ssh2 takes one.
    for (const name of ['id_ed25519', 'id_ecdsa', 'id_rsa']) {
      const file = await existing(path.join(this.home, '.ssh', name));
      if (file) return file;
    }
    return undefined;
  }

  async readMaterial(file: string, what: string): Promise<Buffer> {
    try {
      return await readFile(file);
    } catch (error) {
      // The path and the reason only: never the content.
      this.fail(`cannot read ${what} ${file}: ${errorText(error)}`, error);
    }
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

/**
 * Parses a docker host address as the CLI does: `unix://PATH`, `tcp://HOST[:PORT]`,
 * `ssh://[USER@]HOST[:PORT]`, or a bare `HOST:PORT` meaning tcp. The tcp port defaults to 2376
 * with TLS and 2375 without.
 */
function parseHostUrl(raw: string, tls: boolean): Target {
  const value = raw.trim();
  // The address as messages show it: a password or a token in it is a secret.
  const shown = JSON.stringify(maskCredentials(value));
  const sep = value.indexOf('://');
  const scheme = sep === -1 ? 'tcp' : value.slice(0, sep);
  const rest = sep === -1 ? value : value.slice(sep + 3);
  if (scheme === 'unix') {
    const socketPath = rest === '' ? DEFAULT_DOCKER_SOCKET : rest;
    return { kind: 'socket', url: `unix://${socketPath}`, socketPath };
  }
  if (scheme !== 'tcp' && scheme !== 'ssh') {
    throw new Error(`unsupported engine address ${shown}: write unix://PATH, tcp://HOST:PORT or ssh://USER@HOST`);
  }
  let url: URL;
  try {
    // `http:` parses host, port, user and brackets for IPv6 the same way and is a special scheme.
    url = new URL(`http://${rest}`);
  } catch {
    throw new Error(`cannot parse engine address ${shown}`);
  }
  if (url.pathname !== '/' && url.pathname !== '') {
    throw new Error(`engine address ${shown} has a path; write ${scheme}://HOST:PORT`);
  }
  if (url.search !== '' || url.hash !== '' || /[?#]/.test(rest)) {
    throw new Error(`engine address ${shown} has a query; write ${scheme}://HOST:PORT`);
  }
  const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const host = hostname === '' ? 'localhost' : hostname;
  const hostForUrl = host.includes(':') ? `[${host}]` : host;
  if (scheme === 'ssh') {
    const port = url.port ? Number(url.port) : undefined;
    const username = url.username ? decodeURIComponent(url.username) : undefined;
    return {
      kind: 'ssh',
      // The password, if any, is a secret: keep it out of the display.
      url: `ssh://${username ? `${username}${url.password ? ':***' : ''}@` : ''}${hostForUrl}${port ? `:${port}` : ''}`,
      host,
      ...(port ? { port } : {}),
      ...(username ? { username } : {}),
      ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    };
  }
  if (url.username || url.password) {
    throw new Error(
      `engine address ${shown} cannot carry credentials: a Docker Engine knows TCP clients by their TLS client certificate (tls.cert and tls.key files, or DOCKER_CERT_PATH)`,
    );
  }
  const port = url.port ? Number(url.port) : tls ? 2376 : 2375;
  return { kind: 'tcp', url: `tcp://${hostForUrl}:${port}`, host, port };
}

/** Context names in the CLI's store, sorted, with the built-in `default` first. */
async function listContexts(dockerConfigDir: string): Promise<string[]> {
  const metaDir = path.join(dockerConfigDir, 'contexts', 'meta');
  let ids: string[];
  try {
    ids = await readdir(metaDir);
  } catch {
    return ['default'];
  }
  const names: string[] = [];
  for (const id of ids) {
    try {
      const meta = JSON.parse(await readFile(path.join(metaDir, id, 'meta.json'), 'utf8')) as { Name?: unknown };
      if (typeof meta.Name === 'string' && meta.Name !== '') names.push(meta.Name);
    } catch {
      // A broken entry is not a context the CLI would list either.
    }
  }
  names.sort();
  return ['default', ...names.filter((n) => n !== 'default')];
}

/** True for a private key ssh2 could only use with a passphrase. */
function isEncryptedKey(key: Buffer): boolean {
  const text = key.toString('utf8');
  if (/Proc-Type:\s*4,ENCRYPTED/.test(text) || text.includes('BEGIN ENCRYPTED PRIVATE KEY')) return true;
  const body = /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]*?)-----END OPENSSH PRIVATE KEY-----/.exec(text)?.[1];
  if (!body) return false;
  const raw = Buffer.from(body.replace(/\s+/g, ''), 'base64');
  const magic = 'openssh-key-v1\0';
  if (raw.subarray(0, magic.length).toString('latin1') !== magic || raw.length < magic.length + 4) return false;
  const length = raw.readUInt32BE(magic.length);
  const cipher = raw.subarray(magic.length + 4, magic.length + 4 + length).toString('latin1');
  return cipher !== 'none';
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

async function existing(file: string): Promise<string | undefined> {
  try {
    return (await stat(file)).isFile() ? file : undefined;
  } catch {
    return undefined;
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

function isErrno(error: unknown, code: string): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === code;
}

const ERRNO_TEXT: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EISDIR: 'is a directory',
};

function errorText(error: unknown): string {
  const e = error as NodeJS.ErrnoException;
  const text = (e?.code && ERRNO_TEXT[e.code]) ?? e?.code ?? e?.message ?? String(error);
  return text.replace(/\s+/g, ' ');
}
