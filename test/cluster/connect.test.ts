import { execFileSync } from 'node:child_process';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connect,
  contextDirName,
  DEFAULT_TIMEOUT_MS,
  knownHostKeys,
  type ResolvedEndpoint,
  resolveEndpoint,
} from '../../src/cluster/connect.ts';
import { type ClusterConfig, configSchema } from '../../src/config/schema.ts';
import { ClusterError } from '../../src/errors.ts';

let tmp: string;
/** A DOCKER_CONFIG laid out as the docker CLI writes it. */
let dockerConfig: string;
let certPem: string;
let keyPem: string;

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: 'ignore' });
}

/** A self-signed certificate and its key, and a second key that does not match it. */
function makeTlsFiles(dir: string): void {
  mkdirSync(dir, { recursive: true });
  openssl([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    path.join(dir, 'key.pem'),
    '-out',
    path.join(dir, 'cert.pem'),
    '-days',
    '1',
    '-subj',
    '/CN=engine.test',
  ]);
  writeFileSync(path.join(dir, 'ca.pem'), readFileSync(path.join(dir, 'cert.pem')));
  openssl([
    'genpkey',
    '-algorithm',
    'EC',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-out',
    path.join(dir, 'other-key.pem'),
  ]);
}

function writeContext(name: string, host: string, options: { skipTlsVerify?: boolean; tlsFrom?: string } = {}): void {
  const id = createHash('sha256').update(name).digest('hex');
  const metaDir = path.join(dockerConfig, 'contexts', 'meta', id);
  mkdirSync(metaDir, { recursive: true });
  writeFileSync(
    path.join(metaDir, 'meta.json'),
    JSON.stringify({
      Name: name,
      Metadata: {},
      Endpoints: { docker: { Host: host, SkipTLSVerify: options.skipTlsVerify ?? false } },
    }),
  );
  if (options.tlsFrom) {
    const tlsDir = path.join(dockerConfig, 'contexts', 'tls', id, 'docker');
    mkdirSync(tlsDir, { recursive: true });
    for (const f of ['ca.pem', 'cert.pem', 'key.pem']) {
      writeFileSync(path.join(tlsDir, f), readFileSync(path.join(options.tlsFrom, f)));
    }
  }
}

function resolve(cluster: ClusterConfig, env: Record<string, string | undefined> = {}, dockerConfigDir = dockerConfig) {
  return resolveEndpoint(cluster, { HOME: tmp, ...env }, { name: 'prod', configDir: tmp, dockerConfigDir });
}

/** The cluster part of a config, parsed by the real schema so its defaults apply. */
function clusterFromSchema(cluster: unknown): ClusterConfig {
  const config = configSchema.parse({ clusters: { prod: cluster }, outputs: [] });
  return config.clusters.prod as ClusterConfig;
}

async function failure(promise: Promise<unknown>): Promise<ClusterError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ClusterError);
  const message = (error as ClusterError).message;
  expect(message).not.toContain('\n');
  return error as ClusterError;
}

/** Everything a log line or a crash dump could show of a resolved endpoint. */
function printed(resolved: ResolvedEndpoint): string {
  return [resolved.display, JSON.stringify(resolved), inspect(resolved, { depth: 10 }), ...resolved.warnings].join(
    '\n',
  );
}

function pemBody(pem: string): string {
  return pem
    .split('\n')
    .filter((l) => !l.startsWith('-----'))
    .join('');
}

beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'interlock-connect-'));
  dockerConfig = path.join(tmp, 'docker-config');
  mkdirSync(dockerConfig);
  makeTlsFiles(path.join(tmp, 'tls'));
  certPem = readFileSync(path.join(tmp, 'tls', 'cert.pem'), 'utf8');
  keyPem = readFileSync(path.join(tmp, 'tls', 'key.pem'), 'utf8');
  writeContext('prod-ctx', 'tcp://10.1.2.3:2376', { tlsFrom: path.join(tmp, 'tls') });
  writeContext('insecure', 'tcp://10.1.2.4:2376', { skipTlsVerify: true });
  writeContext('plain', 'tcp://127.0.0.1:2375');
  writeContext('socket-ctx', 'unix:///run/other.sock');
});

afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

describe('the environment default, as the docker CLI resolves it', () => {
  it('falls back to the default socket when nothing is set', async () => {
    const r = await resolve({});
    expect(r).toMatchObject({ kind: 'socket', display: 'unix:///var/run/docker.sock', tls: undefined });
    expect(r.dockerOptions.socketPath).toBe('/var/run/docker.sock');
    expect(r.timeoutMs).toBe(DEFAULT_TIMEOUT_MS);
    expect(DEFAULT_TIMEOUT_MS).toBeLessThan(10_000);
  });

  it('DOCKER_HOST beats DOCKER_CONTEXT, which beats currentContext in config.json', async () => {
    const withCurrent = path.join(tmp, 'with-current');
    mkdirSync(withCurrent, { recursive: true });
    // Same context store, plus a config.json naming a current context.
    execFileSync('cp', ['-r', path.join(dockerConfig, 'contexts'), withCurrent]);
    writeFileSync(path.join(withCurrent, 'config.json'), JSON.stringify({ auths: {}, currentContext: 'plain' }));

    const all = await resolve(
      { endpoint: { kind: 'env' } },
      { DOCKER_HOST: 'unix:///tmp/from-host.sock', DOCKER_CONTEXT: 'socket-ctx' },
      withCurrent,
    );
    expect(all.display).toBe('unix:///tmp/from-host.sock from DOCKER_HOST');

    const noHost = await resolve({ endpoint: { kind: 'env' } }, { DOCKER_CONTEXT: 'socket-ctx' }, withCurrent);
    expect(noHost.display).toBe('unix:///run/other.sock via context "socket-ctx" from DOCKER_CONTEXT');

    const onlyConfig = await resolve({}, {}, withCurrent);
    expect(onlyConfig.display).toBe('tcp://127.0.0.1:2375 via context "plain" from config.json');
  });

  it('reads DOCKER_CONFIG for the context store when no directory is given', async () => {
    const r = await resolveEndpoint(
      {},
      { HOME: '/nonexistent', DOCKER_CONFIG: dockerConfig, DOCKER_CONTEXT: 'plain' },
      { name: 'prod', configDir: tmp },
    );
    expect(r.display).toBe('tcp://127.0.0.1:2375 via context "plain" from DOCKER_CONTEXT');
  });

  it('DOCKER_CONTEXT=default means DOCKER_HOST or the socket', async () => {
    const r = await resolve({}, { DOCKER_CONTEXT: 'default' });
    expect(r.display).toBe('unix:///var/run/docker.sock');
  });

  it('DOCKER_TLS_VERIFY turns on verified TLS with the material in DOCKER_CERT_PATH (any non-empty value, as the CLI)', async () => {
    for (const value of ['1', '0', 'yes']) {
      const r = await resolve(
        {},
        { DOCKER_HOST: 'tcp://engine.test', DOCKER_TLS_VERIFY: value, DOCKER_CERT_PATH: path.join(tmp, 'tls') },
      );
      expect(r).toMatchObject({
        kind: 'tcp',
        display: 'tcp://engine.test:2376 from DOCKER_HOST',
        tls: { verify: true },
      });
      expect(r.warnings).toEqual([]);
      expect(r.dockerOptions.tls?.rejectUnauthorized).toBe(true);
      expect(r.dockerOptions.tls?.ca?.toString()).toBe(certPem);
      expect(r.dockerOptions.tls?.key?.toString()).toBe(keyPem);
    }
  });

  it('DOCKER_TLS alone is TLS without verification, and says so', async () => {
    const r = await resolve(
      {},
      { DOCKER_HOST: 'tcp://10.0.0.9:2376', DOCKER_TLS: '1', DOCKER_CERT_PATH: path.join(tmp, 'tls') },
    );
    expect(r.tls).toEqual({ verify: false });
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toContain('cluster "prod"');
    expect(r.warnings[0]).toContain('verification is off');
  });

  it('parses DOCKER_HOST forms the CLI accepts', async () => {
    expect((await resolve({}, { DOCKER_HOST: '127.0.0.1:2375' })).display).toBe(
      'tcp://127.0.0.1:2375 from DOCKER_HOST',
    );
    expect((await resolve({}, { DOCKER_HOST: 'tcp://127.0.0.1' })).display).toBe(
      'tcp://127.0.0.1:2375 from DOCKER_HOST',
    );
    expect((await resolve({}, { DOCKER_HOST: 'tcp://[::1]:2375' })).display).toBe('tcp://[::1]:2375 from DOCKER_HOST');
    expect((await resolve({}, { DOCKER_HOST: 'unix://' })).display).toBe(
      'unix:///var/run/docker.sock from DOCKER_HOST',
    );
    const bad = await failure(resolve({}, { DOCKER_HOST: 'ftp://example.com' }));
    expect(bad.message).toMatch(/^cluster "prod": DOCKER_HOST: unsupported engine address/);
  });

  it('warns about plain TCP to another host, not to loopback', async () => {
    expect((await resolve({}, { DOCKER_HOST: 'tcp://127.0.0.1:2375' })).warnings).toEqual([]);
    const remote = await resolve({}, { DOCKER_HOST: 'tcp://10.0.0.9:2375' });
    expect(remote.warnings[0]).toContain('plain TCP without TLS');
  });
});

describe('credentials in an engine address are never printed', () => {
  const SECRET = 's3cr3t-pa55';
  it.each([
    ['the config', { endpoint: { kind: 'tcp', host: `tcp://admin:${SECRET}@10.0.0.9:2375` } }, {}],
    ['DOCKER_HOST', {}, { DOCKER_HOST: `tcp://admin:${SECRET}@10.0.0.9:2375` }],
    ['DOCKER_HOST with @ in the password', {}, { DOCKER_HOST: `tcp://admin:${SECRET}@x@10.0.0.9:2375` }],
    ['a context', { endpoint: { kind: 'context', name: 'with-password' } }, {}],
  ] as const)('a tcp:// address with a password, from %s: refused, password masked', async (_from, cluster, env) => {
    // A store of its own, so the other tests' list of contexts stays as it is.
    const store = path.join(tmp, 'docker-config-credentials');
    const metaDir = path.join(store, 'contexts', 'meta', contextDirName('with-password'));
    mkdirSync(metaDir, { recursive: true });
    writeFileSync(
      path.join(metaDir, 'meta.json'),
      JSON.stringify({ Name: 'with-password', Endpoints: { docker: { Host: `tcp://admin:${SECRET}@10.0.0.9:2375` } } }),
    );
    const error = await failure(resolve(cluster as ClusterConfig, env, store));
    expect(error.message).toMatch(/tcp:\/\/admin:\*\*\*@(x@)?10\.0\.0\.9:2375" cannot carry credentials/);
    expect(`${error.message} ${inspect(error)}`).not.toContain(SECRET);
  });

  it('masks the password in every other refusal of an address, and refuses a query string', async () => {
    for (const host of [
      `ftp://admin:${SECRET}@example.com`,
      `tcp://admin:${SECRET}@example.com:2375/path`,
      `tcp://10.0.0.9:2375?token=${SECRET}`,
      `ssh://deploy@10.0.0.9?password=${SECRET}`,
    ]) {
      const error = await failure(resolve({}, { DOCKER_HOST: host }));
      expect(error.message, host).not.toContain(SECRET);
      expect(error.message, host).toContain('***');
    }
    expect((await failure(resolve({}, { DOCKER_HOST: `tcp://10.0.0.9:2375?token=${SECRET}` }))).message).toContain(
      'has a query',
    );
  });
});

describe('Docker CLI contexts from the CLI store', () => {
  it('uses sha256 of the name as the directory, as the CLI does', () => {
    expect(contextDirName('tls1')).toBe('5c4200c8a7b6ff9e78145e881517e7aee2bd7ee7e5f1ddeeedfe43489fb36161');
  });

  it('reads host and TLS material of a context, verification on', async () => {
    const r = await resolve({ endpoint: { kind: 'context', name: 'prod-ctx' } });
    expect(r).toMatchObject({
      kind: 'tcp',
      display: 'tcp://10.1.2.3:2376 via context "prod-ctx"',
      source: { kind: 'context', name: 'prod-ctx', via: 'config' },
      tls: { verify: true },
      warnings: [],
    });
    expect(r.dockerOptions.tls?.cert?.toString()).toBe(certPem);
    expect(r.dockerOptions.tls?.key?.toString()).toBe(keyPem);
    expect(printed(r)).not.toContain(pemBody(keyPem));
  });

  it('honours SkipTLSVerify with a warning', async () => {
    const r = await resolve({ endpoint: { kind: 'context', name: 'insecure' } });
    expect(r.tls).toEqual({ verify: false });
    expect(r.dockerOptions.tls?.rejectUnauthorized).toBe(false);
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toContain('SkipTLSVerify');
  });

  it('a context without TLS material is plain TCP', async () => {
    const r = await resolve({ endpoint: { kind: 'context', name: 'plain' } });
    expect(r).toMatchObject({ kind: 'tcp', tls: undefined });
  });

  it('the context named default is the environment default', async () => {
    const r = await resolve({ endpoint: { kind: 'context', name: 'default' } }, { DOCKER_HOST: 'unix:///tmp/d.sock' });
    expect(r.display).toBe('unix:///tmp/d.sock from DOCKER_HOST');
  });

  it('a missing context names the cluster and the context and lists those that exist', async () => {
    const error = await failure(resolve({ endpoint: { kind: 'context', name: 'staging' } }));
    expect(error.message).toBe(
      `cluster "prod": Docker context "staging" does not exist in ${dockerConfig}/contexts; contexts there: default, insecure, plain, prod-ctx, socket-ctx. Create it with \`docker context create\` or name one of those.`,
    );
  });

  it('a missing context from DOCKER_CONTEXT says where the name came from', async () => {
    const error = await failure(resolve({}, { DOCKER_CONTEXT: 'nope' }));
    expect(error.message).toContain('Docker context "nope" (named by DOCKER_CONTEXT) does not exist');
  });

  it('with no context store at all, only default exists', async () => {
    const error = await failure(resolve({ endpoint: { kind: 'context', name: 'x' } }, {}, path.join(tmp, 'empty')));
    expect(error.message).toContain('contexts there: default.');
  });
});

describe('tcp endpoints with TLS from the config', () => {
  const files = { ca: 'tls/ca.pem', cert: 'tls/cert.pem', key: 'tls/key.pem' };

  it('verifies the server by default and reads files relative to the config directory', async () => {
    const r = await resolve(
      clusterFromSchema({ endpoint: { kind: 'tcp', host: 'tcp://engine.test:2376', tls: files } }),
    );
    expect(r).toMatchObject({ kind: 'tcp', display: 'tcp://engine.test:2376', tls: { verify: true }, warnings: [] });
    expect(r.dockerOptions.tls?.rejectUnauthorized).toBe(true);
  });

  it('turns verification off only when told, and warns', async () => {
    const r = await resolve(
      clusterFromSchema({
        endpoint: { kind: 'tcp', host: 'tcp://engine.test:2376', tls: { ...files, verify: false } },
      }),
    );
    expect(r.tls).toEqual({ verify: false });
    expect(r.dockerOptions.tls?.rejectUnauthorized).toBe(false);
    expect(r.warnings).toEqual([
      'cluster "prod": TLS server verification is off for tcp://engine.test:2376 (tls.verify: false): anyone on the network path can impersonate the engine',
    ]);
  });

  it('never shows key material in the display, JSON, inspect output or warnings', async () => {
    const r = await resolve(
      clusterFromSchema({
        endpoint: { kind: 'tcp', host: 'tcp://engine.test:2376', tls: { ...files, verify: false } },
      }),
    );
    expect(r.dockerOptions.tls?.key?.toString()).toBe(keyPem);
    expect(printed(r)).not.toContain(pemBody(keyPem));
    expect(Object.keys(r)).not.toContain('dockerOptions');
  });

  it('a key that does not match the certificate fails at resolution, naming the files', async () => {
    const error = await failure(
      resolve(
        clusterFromSchema({
          endpoint: { kind: 'tcp', host: 'tcp://engine.test:2376', tls: { ...files, key: 'tls/other-key.pem' } },
        }),
      ),
    );
    expect(error.message).toContain(
      'cluster "prod": TLS failure: the client key does not match the client certificate',
    );
    expect(error.message).toContain('other-key.pem');
    expect(error.message).not.toContain(pemBody(readFileSync(path.join(tmp, 'tls', 'other-key.pem'), 'utf8')));
  });

  it('a missing file is named with the reason', async () => {
    const error = await failure(
      resolve(
        clusterFromSchema({ endpoint: { kind: 'tcp', host: 'tcp://engine.test:2376', tls: { ca: 'tls/none.pem' } } }),
      ),
    );
    expect(error.message).toBe(`cluster "prod": cannot read CA certificate ${tmp}/tls/none.pem: no such file`);
  });

  it('a certificate without its key is refused', async () => {
    const error = await failure(
      resolve(
        clusterFromSchema({ endpoint: { kind: 'tcp', host: 'tcp://engine.test:2376', tls: { cert: files.cert } } }),
      ),
    );
    expect(error.message).toContain('needs both a client certificate and its key');
  });

  it('takes the timeout from the config', async () => {
    const r = await resolve(
      clusterFromSchema({ endpoint: { kind: 'socket', path: 'docker.sock' }, timeout: '1500ms' }),
    );
    expect(r.timeoutMs).toBe(1500);
    expect(r.display).toBe(`unix://${tmp}/docker.sock`);
  });
});

describe('ssh endpoints', () => {
  let sshDir: string;
  let hostKey: string;

  beforeAll(() => {
    sshDir = path.join(tmp, 'ssh');
    mkdirSync(sshDir, { recursive: true });
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(sshDir, 'id'), '-C', 'test']);
    execFileSync('ssh-keygen', [
      '-q',
      '-t',
      'ed25519',
      '-N',
      'secret',
      '-f',
      path.join(sshDir, 'locked'),
      '-C',
      'test',
    ]);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(sshDir, 'host'), '-C', 'host']);
    hostKey = readFileSync(path.join(sshDir, 'host.pub'), 'utf8').split(' ')[1] as string;
    const salt = randomBytes(20);
    const hashed = createHmac('sha1', salt).update('[hashed.test]:2222').digest('base64');
    writeFileSync(
      path.join(sshDir, 'known_hosts'),
      [
        `engine.test,10.0.0.7 ssh-ed25519 ${hostKey}`,
        `|1|${salt.toString('base64')}|${hashed} ssh-ed25519 ${hostKey}`,
        `*.wild.test,!bad.wild.test ssh-ed25519 ${hostKey}`,
        '',
      ].join('\n'),
    );
  });

  function resolveSsh(host: string, identityFile?: string, env: Record<string, string> = {}) {
    return resolveEndpoint(
      { endpoint: { kind: 'ssh', host, ...(identityFile ? { identityFile } : {}) } },
      { HOME: tmp, ...env },
      { name: 'prod', configDir: tmp, knownHostsFile: path.join(sshDir, 'known_hosts') },
    );
  }

  it('reads the identity file and keeps it out of everything printable', async () => {
    const r = await resolveSsh('ssh://deploy@engine.test', 'ssh/id');
    expect(r).toMatchObject({ kind: 'ssh', display: 'ssh://deploy@engine.test', tls: undefined });
    expect(r.dockerOptions).toMatchObject({ protocol: 'ssh', host: 'engine.test', port: 22, username: 'deploy' });
    const privateKey = readFileSync(path.join(sshDir, 'id'), 'utf8');
    expect(r.dockerOptions.sshOptions?.privateKey?.toString()).toBe(privateKey);
    expect(printed(r)).not.toContain(pemBody(privateKey).slice(40, 80));
  });

  it('uses the ssh agent when there is no identity file', async () => {
    const r = await resolveSsh('ssh://deploy@engine.test:22', undefined, { SSH_AUTH_SOCK: '/tmp/agent.sock' });
    expect(r.dockerOptions.sshOptions).toMatchObject({ agent: '/tmp/agent.sock' });
    expect(r.dockerOptions.sshOptions?.privateKey).toBeUndefined();
  });

  it('accepts only the host keys in known_hosts (plain, hashed with port, wildcard)', async () => {
    const key = Buffer.from(hostKey, 'base64');
    for (const host of ['ssh://a@engine.test', 'ssh://a@hashed.test:2222', 'ssh://a@x.wild.test']) {
      const verify = (await resolveSsh(host, 'ssh/id')).dockerOptions.sshOptions?.hostVerifier as (
        k: Buffer,
      ) => boolean;
      expect(verify(key)).toBe(true);
      expect(verify(randomBytes(51))).toBe(false);
    }
  });

  it('refuses a host that is not in known_hosts, saying how to accept it', async () => {
    const error = await failure(resolveSsh('ssh://a@bad.wild.test:2200', 'ssh/id'));
    expect(error.message).toBe(
      `cluster "prod": the ssh host key of [bad.wild.test]:2200 is not in ${sshDir}/known_hosts; check and accept it once with \`ssh -p 2200 a@bad.wild.test true\``,
    );
  });

  it('refuses a passphrase-protected key, and no key at all', async () => {
    expect((await failure(resolveSsh('ssh://a@engine.test', 'ssh/locked'))).message).toContain('passphrase-protected');
    expect((await failure(resolveSsh('ssh://a@engine.test'))).message).toContain('needs an ssh key');
  });

  it('keeps a password in the address out of the display', async () => {
    const r = await resolveSsh('ssh://a:hunter2@engine.test', 'ssh/id');
    expect(r.display).toBe('ssh://a:***@engine.test');
    expect(printed(r)).not.toContain('hunter2');
  });

  it('revoked keys win over accepted ones', async () => {
    const file = path.join(sshDir, 'revoked_hosts');
    writeFileSync(file, `engine.test ssh-ed25519 ${hostKey}\n@revoked * ssh-ed25519 ${hostKey}\n`);
    const keys = await knownHostKeys(file, 'engine.test', 22);
    expect(keys.revoked).toHaveLength(1);
  });
});

describe('connect', () => {
  it('builds a client for the resolved endpoint whatever DOCKER_HOST says in this process', async () => {
    const r = await resolve({ endpoint: { kind: 'socket', path: '/run/x.sock' } });
    const saved = process.env.DOCKER_HOST;
    process.env.DOCKER_HOST = 'tcp://192.0.2.1:2375';
    try {
      const docker = connect(r);
      const modem = docker.modem as { socketPath?: unknown; host?: unknown };
      expect(modem.socketPath).toBe('/run/x.sock');
      expect(modem.host).toBeUndefined();
    } finally {
      if (saved === undefined) delete process.env.DOCKER_HOST;
      else process.env.DOCKER_HOST = saved;
    }
    expect(process.env.DOCKER_HOST).toBe(saved);
  });
});
