/**
 * Where outputs may write: never over the config or another input, never into system folders,
 * never onto something that is not a regular file, and never two outputs onto one file (also
 * through symlinks and under --out-dir). Uses the real file system in a temp folder.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type CheckContext, checkConfig, systemLocation } from '../../src/config/check.ts';
import { probePath } from '../../src/config/probe.ts';
import { configSchema } from '../../src/config/schema.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'interlock-targets-'));
  await writeFile(path.join(dir, 'interlock.config.yaml'), 'clusters: {}\n');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function diagnose(input: Record<string, unknown>, extra: Partial<CheckContext> = {}) {
  const config = configSchema.parse({ clusters: { local: {} }, ...input });
  return checkConfig(config, {
    configDir: dir,
    configFile: path.join(dir, 'interlock.config.yaml'),
    displayFile: 'interlock.config.yaml',
    exists: existsSync,
    probe: probePath,
    locate: () => undefined,
    ...extra,
  });
}

/** The errors, as `code path`. */
function check(input: Record<string, unknown>, extra: Partial<CheckContext> = {}): string[] {
  return diagnose(input, extra)
    .filter((d) => d.severity === 'error')
    .map((d) => `${d.code} ${d.path}`);
}

/** Every diagnostic, as `path: message | fix`. */
function messages(input: Record<string, unknown>, extra: Partial<CheckContext> = {}): string[] {
  return diagnose(input, extra).map((d) => `${d.path}: ${d.message} | ${d.fix ?? ''}`);
}

describe('outputs never overwrite an input', () => {
  it('refuses the config file, a template, TLS files and a file in a certificate folder', async () => {
    await mkdir(path.join(dir, 'certs'));
    for (const f of ['custom.mustache', 'ca.pem', 'id_ed25519']) await writeFile(path.join(dir, f), 'x');
    expect(
      check({
        clusters: {
          local: { endpoint: { kind: 'tcp', host: 'tcp://h:2376', tls: { ca: 'ca.pem' } } },
          remote: { endpoint: { kind: 'ssh', host: 'ssh://u@h', identityFile: 'id_ed25519' } },
        },
        outputs: [
          { kind: 'haproxy', file: 'interlock.config.yaml', http: { port: 80 } },
          { kind: 'nginx', file: 'custom.mustache', template: './custom.mustache', http: { port: 81 } },
          { kind: 'nginx', file: 'ca.pem', http: { port: 82 } },
          { kind: 'nginx', file: 'id_ed25519', http: { port: 83 } },
          {
            kind: 'haproxy',
            file: 'certs/haproxy.cfg',
            http: { port: 84 },
            https: { certDir: 'certs', port: 85 },
          },
        ],
      }),
    ).toEqual([
      'output-overwrites-input outputs[0].file',
      'output-overwrites-input outputs[1].file',
      'output-overwrites-input outputs[2].file',
      'output-overwrites-input outputs[3].file',
      'output-overwrites-input outputs[4].file',
    ]);
  });

  it('checks the HAProxy host map written next to the file too, and says so', async () => {
    await writeFile(path.join(dir, 'edge.hosts.map'), 'x');
    const found = messages({
      outputs: [
        { kind: 'haproxy', file: 'edge.cfg', http: { port: 80 } },
        { kind: 'nginx', file: 'n.conf', template: 'edge.hosts.map', http: { port: 81 } },
      ],
    });
    expect(found).toEqual([
      'outputs[0].file: its host map edge.hosts.map would overwrite the template of outputs[1] | give every output a file of its own: interlock replaces what it writes',
    ]);
  });

  it('refuses a --snapshot file given at run time', async () => {
    await writeFile(path.join(dir, 'cluster.json'), '{}');
    expect(
      check(
        { outputs: [{ kind: 'nginx', file: 'cluster.json' }] },
        { inputs: [{ file: path.join(dir, 'cluster.json'), what: 'the snapshot cluster.json' }] },
      ),
    ).toEqual(['output-overwrites-input outputs[0].file']);
  });

  it('sees through symlinks: an input reached by another name is still the input', async () => {
    await mkdir(path.join(dir, 'real'));
    await writeFile(path.join(dir, 'real', 't.mustache'), 'x');
    await symlink(path.join(dir, 'real'), path.join(dir, 'link'));
    expect(check({ outputs: [{ kind: 'nginx', file: 'link/t.mustache', template: 'real/t.mustache' }] })).toEqual([
      'output-overwrites-input outputs[0].file',
    ]);
  });
});

describe('outputs never write into system locations', () => {
  it.each([
    '/etc/passwd',
    '/etc/cron.d/interlock',
    '/usr/lib/x.cfg',
    '/bin/sh',
    '/sbin/init',
    '/lib64/x',
    '/boot/grub.cfg',
    '/proc/self/x',
    '/sys/kernel/x',
    '/dev/sda',
    '/root/.ssh/authorized_keys',
    '/home/deploy/.ssh/authorized_keys',
    '/private/etc/hosts',
  ])('refuses %s', (file) => {
    expect(systemLocation(file)).toBeDefined();
  });

  it.each([
    '/etc/haproxy/haproxy.cfg',
    '/etc/haproxy/conf.d/edge.cfg',
    '/etc/nginx/nginx.conf',
    '/etc/nginx/conf.d/interlock.conf',
    '/etc/nginx-edge/nginx.conf',
    '/usr/local/etc/haproxy/haproxy.cfg',
    '/usr/local/etc/haproxy.conf',
    '/usr/local/openresty/nginx/conf/nginx.conf',
    '/usr/local/nginx/conf/nginx.conf',
    '/var/lib/interlock/haproxy.cfg',
    '/srv/proxy/nginx.conf',
    '/run/haproxy/haproxy.cfg',
  ])('allows %s', (file) => {
    expect(systemLocation(file)).toBeUndefined();
  });

  it('reports the config path and the way out', () => {
    expect(messages({ outputs: [{ kind: 'nginx', file: '/etc/passwd' }] })).toEqual([
      'outputs[0].file: /etc/passwd lies in /etc, a system location interlock never writes to | write it to a folder of its own (e.g. /etc/haproxy/, /etc/nginx/ or /var/lib/interlock/) and point the proxy there',
    ]);
  });

  it('follows symlinks of existing folders and of the file itself', async () => {
    await symlink('/etc', path.join(dir, 'etc-link'));
    await symlink('/etc/shadow', path.join(dir, 'shadow.cfg'));
    expect(
      check({
        outputs: [
          { kind: 'nginx', file: 'etc-link/cron.d/interlock.conf', http: { port: 81 } },
          { kind: 'nginx', file: 'shadow.cfg', http: { port: 82 } },
        ],
      }),
    ).toEqual(['output-system-path outputs[0].file', 'output-system-path outputs[1].file']);
  });
});

describe('outputs must be regular files in folders', () => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
  });

  it('refuses a directory, a FIFO, a socket and a device', async () => {
    await mkdir(path.join(dir, 'a-dir.cfg'));
    execFileSync('mkfifo', [path.join(dir, 'fifo.conf')]);
    const sock = path.join(dir, 'sock.conf');
    server = createServer();
    await new Promise<void>((resolve) => server?.listen(sock, resolve));
    const found = messages({
      outputs: [
        { kind: 'haproxy', file: 'a-dir.cfg', http: { port: 80 } },
        { kind: 'nginx', file: 'fifo.conf', http: { port: 81 } },
        { kind: 'nginx', file: 'sock.conf', http: { port: 82 } },
        { kind: 'nginx', file: '/dev/null', http: { port: 83 } },
      ],
    });
    expect(found).toEqual([
      'outputs[0].file: a-dir.cfg is a directory, not a regular file | name a file (interlock creates it), or remove what is there',
      'outputs[1].file: fifo.conf is a FIFO, not a regular file | name a file (interlock creates it), or remove what is there',
      'outputs[2].file: sock.conf is a socket, not a regular file | name a file (interlock creates it), or remove what is there',
      // One problem per file: the first that applies.
      'outputs[3].file: /dev/null lies in /dev, a system location interlock never writes to | write it to a folder of its own (e.g. /etc/haproxy/, /etc/nginx/ or /var/lib/interlock/) and point the proxy there',
    ]);
  });

  it('refuses a host map path that is a directory', async () => {
    await mkdir(path.join(dir, 'haproxy.hosts.map'));
    expect(check({ outputs: [{ kind: 'haproxy', file: 'haproxy.cfg' }] })).toEqual(['output-not-file outputs[0].file']);
  });

  it('refuses a path under a file (ENOTDIR), however deep', async () => {
    await writeFile(path.join(dir, 'out'), 'x');
    expect(
      messages({
        outputs: [
          { kind: 'haproxy', file: 'out/haproxy.cfg', http: { port: 80 } },
          { kind: 'nginx', file: 'out/deep/nginx.conf', http: { port: 81 } },
        ],
      }),
    ).toEqual([
      'outputs[0].file: out/haproxy.cfg cannot be created: out is a file, not a folder | fix the path, or move that file away',
      'outputs[1].file: out/deep/nginx.conf cannot be created: out is a file, not a folder | fix the path, or move that file away',
    ]);
  });

  it('accepts existing regular files, symlinks to them, and paths still to be created', async () => {
    await mkdir(path.join(dir, 'out'));
    await writeFile(path.join(dir, 'out', 'haproxy.cfg'), 'old');
    await writeFile(path.join(dir, 'real.conf'), 'old');
    await symlink(path.join(dir, 'real.conf'), path.join(dir, 'out', 'nginx.conf'));
    expect(
      check({
        outputs: [
          { kind: 'haproxy', file: 'out/haproxy.cfg', http: { port: 80 } },
          { kind: 'nginx', file: 'out/nginx.conf', http: { port: 81 } },
          { kind: 'nginx', file: 'new/deeper/nginx.conf', http: { port: 82 } },
        ],
      }),
    ).toEqual([]);
  });
});

describe('two outputs never write one file', () => {
  it('finds the same file reached through a symlinked folder', async () => {
    await mkdir(path.join(dir, 'out'));
    await symlink(path.join(dir, 'out'), path.join(dir, 'live'));
    expect(
      check({
        outputs: [
          { kind: 'nginx', file: 'out/proxy.conf', http: { port: 80 } },
          { kind: 'nginx', file: 'live/proxy.conf', http: { port: 81 } },
        ],
      }),
    ).toEqual(['duplicate-file outputs[1].file']);
  });

  it('with --out-dir, refuses outputs whose files share a name (the host map included)', () => {
    const outputs = [
      { kind: 'haproxy', file: 'a/proxy.cfg', http: { port: 80 } },
      { kind: 'nginx', file: 'b/proxy.cfg', http: { port: 81 } },
      { kind: 'nginx', file: 'c/proxy.hosts.map', http: { port: 82 } },
      { kind: 'nginx', file: 'd/nginx.conf', http: { port: 83 } },
    ];
    expect(check({ outputs })).toEqual([]);
    const out = path.join(dir, 'rendered');
    expect(messages({ outputs }, { outDir: out })).toEqual([
      `outputs[1].file: with --out-dir ${out}, outputs[0] and outputs[1] both write ${out}/proxy.cfg | give the outputs different file names, or render them without --out-dir`,
      `outputs[2].file: with --out-dir ${out}, outputs[0] and outputs[2] both write ${out}/proxy.hosts.map | give the outputs different file names, or render them without --out-dir`,
    ]);
  });

  it('with --out-dir, checks the files under it like any output file', async () => {
    await mkdir(path.join(dir, 'rendered', 'nginx.conf'), { recursive: true });
    expect(check({ outputs: [{ kind: 'nginx', file: 'nginx.conf' }] }, { outDir: path.join(dir, 'rendered') })).toEqual(
      ['output-not-file outputs[0].file'],
    );
    expect(check({ outputs: [{ kind: 'nginx', file: 'passwd' }] }, { outDir: '/etc' })).toEqual([
      'output-system-path outputs[0].file',
    ]);
  });
});
