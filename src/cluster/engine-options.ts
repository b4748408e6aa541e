/**
 * The dockerode options of a resolved engine address, per transport: a unix socket; plain TCP
 * (a warning unless loopback); TCP with TLS, its CA, client certificate and key read and checked
 * now; ssh, with the host keys from known_hosts and a key from the config, the ssh agent or
 * ~/.ssh. Key material goes only into the options, never into a message.
 */
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createSecureContext } from 'node:tls';
import type Docker from 'dockerode';
import { type EndpointKind, isLoopback, type Target } from './host-url.ts';
import { hostKeyAlgorithms, knownHostKeys } from './known-hosts.ts';
import { errorText, existing, nonEmpty } from './local-files.ts';

/** dockerode constructor options, plus what connect() turns into an http(s) agent. */
export interface EndpointDockerOptions extends Docker.DockerOptions {
  pathPrefix?: string;
  /** TLS options for the agent (CA, client certificate and key, verification). */
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer; rejectUnauthorized: boolean };
}

/** What building needs from the resolution: names for messages, the environment, the bounds. */
export interface BuildContext {
  /** The cluster's name, for messages. */
  name: string;
  env: Record<string, string | undefined>;
  home: string;
  timeoutMs: number;
  /** ssh known_hosts file. */
  knownHostsFile: string;
  /** Throws the resolution's error for `message`. */
  fail(message: string, cause?: unknown): never;
}

/** TLS for a TCP address: verify or not, the material's files, and what turned verification off (for the warning). */
export interface TlsFiles {
  verify: boolean;
  files: { ca?: string | undefined; cert?: string | undefined; key?: string | undefined };
  what: string;
}

/** A resolved address with its dockerode options (key material included). */
export interface Built {
  kind: EndpointKind;
  display: string;
  tls: { verify: boolean } | undefined;
  warnings: string[];
  dockerOptions: EndpointDockerOptions;
}

/** The dockerode options for `target`, shown as `display`; reads the key material it names. */
export async function buildEndpoint(
  ctx: BuildContext,
  target: Target,
  display: string,
  extra: { tls?: TlsFiles | undefined; identityFile?: string | undefined },
): Promise<Built> {
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
          `cluster "${ctx.name}": ${display} is plain TCP without TLS: anyone on the network path can read and control the engine`,
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
        `cluster "${ctx.name}": TLS server verification is off for ${display} (${tls.what}): anyone on the network path can impersonate the engine`,
      );
    }
    if ((tls.files.cert === undefined) !== (tls.files.key === undefined)) {
      ctx.fail(`TLS for ${display} needs both a client certificate and its key, or neither`);
    }
    const material = {
      ...(tls.files.ca ? { ca: await readMaterial(ctx, tls.files.ca, 'CA certificate') } : {}),
      ...(tls.files.cert ? { cert: await readMaterial(ctx, tls.files.cert, 'client certificate') } : {}),
      ...(tls.files.key ? { key: await readMaterial(ctx, tls.files.key, 'client key') } : {}),
    };
    try {
      // Fails now, with the files named, rather than as an obscure error on the first request.
      createSecureContext(material);
    } catch (error) {
      const files = [tls.files.ca, tls.files.cert, tls.files.key].filter(Boolean).join(', ');
      const code = (error as NodeJS.ErrnoException).code;
      ctx.fail(
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
  return { kind: 'ssh', display, tls: undefined, warnings, dockerOptions: await sshOptions(ctx, target, extra) };
}

async function sshOptions(
  ctx: BuildContext,
  target: Target,
  extra: { identityFile?: string | undefined },
): Promise<EndpointDockerOptions> {
  const host = target.host ?? '';
  const port = target.port ?? 22;
  const knownHostsFile = ctx.knownHostsFile;
  const hostKeys = await knownHostKeys(knownHostsFile, host, port);
  const hostLabel = port === 22 ? host : `[${host}]:${port}`;
  if (hostKeys.accepted.length === 0) {
    // ssh would ask; a daemon cannot. Trusting any key would let anyone in the path run the engine.
    ctx.fail(
      `the ssh host key of ${hostLabel} is not in ${knownHostsFile}; check and accept it once with \`ssh ${port === 22 ? '' : `-p ${port} `}${target.username ? `${target.username}@` : ''}${host} true\``,
    );
  }
  let privateKey: Buffer | undefined;
  const identityFile =
    extra.identityFile ?? (nonEmpty(ctx.env.SSH_AUTH_SOCK) ? undefined : await defaultIdentity(ctx.home));
  if (identityFile) {
    privateKey = await readMaterial(ctx, identityFile, 'ssh identity file');
    if (isEncryptedKey(privateKey)) {
      ctx.fail(`ssh identity file ${identityFile} is passphrase-protected: load it into ssh-agent (ssh-add) instead`);
    }
  }
  const agent = nonEmpty(ctx.env.SSH_AUTH_SOCK);
  if (!privateKey && !agent) {
    ctx.fail(
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
    username: target.username ?? nonEmpty(ctx.env.USER) ?? os.userInfo().username,
    ...(target.password ? { password: target.password } : {}),
    sshOptions: {
      ...(agent ? { agent } : {}),
      ...(privateKey ? { privateKey } : {}),
      readyTimeout: ctx.timeoutMs,
      // Like OpenSSH, ask for the key types we know for this host; otherwise the server may
      // present another of its keys and a correct known_hosts entry would look like a mismatch.
      algorithms: { serverHostKey: hostKeyAlgorithms(hostKeys.types) },
      hostVerifier: (key: Buffer) => !revoked.some((k) => k.equals(key)) && accepted.some((k) => k.equals(key)),
    },
  };
}

async function defaultIdentity(home: string): Promise<string | undefined> {
  // The keys ssh tries by default, in its order; one key because ssh2 takes one.
  for (const name of ['id_ed25519', 'id_ecdsa', 'id_rsa']) {
    const file = await existing(path.join(home, '.ssh', name));
    if (file) return file;
  }
  return undefined;
}

async function readMaterial(ctx: BuildContext, file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (error) {
    // The path and the reason only: never the content.
    ctx.fail(`cannot read ${what} ${file}: ${errorText(error)}`, error);
  }
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
