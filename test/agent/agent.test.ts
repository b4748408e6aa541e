/**
 * `interlock agent` in process against a real agents listener on loopback: no proxy binary (the
 * check is a command, the reload `true`), files in a temp folder.
 */
import { spawnSync } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent, type AgentOptions } from '../../src/agent/agent.ts';
import { makeBundle } from '../../src/fleet/bundle.ts';
import { FleetHub, type RunningAgentsServer, startAgentsServer } from '../../src/fleet/server.ts';
import { createLogger } from '../../src/runtime/log.ts';
import { waitFor } from '../watch/it-helpers.ts';

const TOKEN = 'agent-unit-token';
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const bundle = (n: number, extra = '') =>
  makeBundle('edge', 'haproxy', '/srv/edge', [
    { name: 'certs/site.pem', content: `CERT AND KEY ${n}\n`, secret: true },
    { name: 'haproxy.hosts.0123456789ab.map', content: `h${n}.test/ be\n` },
    { name: 'haproxy.cfg', content: `# v${n}\ncrt /srv/edge/certs/site.pem\n${extra}` },
  ]);

async function controller(
  port = 0,
  token = TOKEN,
  tls?: { cert: string; key: string },
): Promise<{ hub: FleetHub; server: RunningAgentsServer }> {
  const log = createLogger({ format: 'logfmt', level: 'error', write: () => {} });
  const hub = new FleetHub({ token, waitMs: 1000, staleMs: 60_000, log });
  hub.setOutputs(['edge']);
  const server = await startAgentsServer(hub, { host: '127.0.0.1', port }, tls);
  cleanups.push(() => server.close());
  return { hub, server };
}

async function folder(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'il-agent-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function agent(port: number, dir: string, extra: Partial<AgentOptions> = {}) {
  const lines: string[] = [];
  const a = new Agent({
    controller: `http://127.0.0.1:${port}`,
    token: TOKEN,
    output: 'edge',
    dir,
    instance: 'a1',
    node: 'n1',
    check: { kind: 'none' },
    reload: { kind: 'command', command: ['true'] },
    log: createLogger({ format: 'logfmt', level: 'debug', write: (l) => lines.push(l) }),
    env: process.env,
    backoff: { initialMs: 20, maxMs: 200 },
    ...extra,
  });
  cleanups.push(() => a.stop());
  return { a, lines, count: (re: RegExp) => lines.filter((l) => re.test(l)).length };
}

const converged = (hub: FleetHub, hash: string) =>
  waitFor(
    'converged',
    () => hub.health().list.some((x) => x.instance === 'a1' && x.applied === hash && x.state === 'converged'),
    {
      timeoutMs: 10_000,
    },
  );

describe('interlock agent', () => {
  it('applies a bundle under its folder (root rebased, key 0600), remembers it, reports it', async () => {
    const { hub, server } = await controller();
    const dir = await folder();
    hub.publish(bundle(1));
    const { a, count } = agent(server.address.port, dir);
    await a.start();
    await converged(hub, bundle(1).hash);
    expect(await readFile(path.join(dir, 'haproxy.cfg'), 'utf8')).toBe(`# v1\ncrt ${dir}/certs/site.pem\n`);
    expect(await readFile(path.join(dir, 'haproxy.hosts.0123456789ab.map'), 'utf8')).toBe('h1.test/ be\n');
    expect((await stat(path.join(dir, 'certs/site.pem'))).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(path.join(dir, '.interlock-agent.json'), 'utf8'))).toMatchObject({
      output: 'edge',
      hash: bundle(1).hash,
    });
    expect(count(/no proxy files yet/)).toBe(1);
    // The next change arrives through the held poll.
    hub.publish(bundle(2));
    await converged(hub, bundle(2).hash);
    expect(await readFile(path.join(dir, 'certs/site.pem'), 'utf8')).toBe('CERT AND KEY 2\n');
    expect(a.applies).toBe(2);
  });

  it('writes files holding password hashes 0640, as the controller does (basic auth)', async () => {
    const { hub, server } = await controller();
    const dir = await folder();
    const b = makeBundle('edge', 'nginx', '/srv/edge', [
      { name: 'nginx.r1.nginx.htpasswd', content: 'alice:$2b$04$hash\n', private: true },
      { name: 'nginx.conf', content: 'auth_basic_user_file /srv/edge/nginx.r1.nginx.htpasswd;\n' },
    ]);
    hub.publish(b);
    const { a } = agent(server.address.port, dir);
    await a.start();
    await converged(hub, b.hash);
    expect((await stat(path.join(dir, 'nginx.r1.nginx.htpasswd'))).mode & 0o777).toBe(0o640);
    expect(await readFile(path.join(dir, 'nginx.conf'), 'utf8')).toBe(
      `auth_basic_user_file ${dir}/nginx.r1.nginx.htpasswd;\n`,
    );
    // The flag is part of the hash: the same bytes without it are another bundle.
    expect(
      makeBundle('edge', 'nginx', '/srv/edge', [
        { name: 'nginx.r1.nginx.htpasswd', content: 'alice:$2b$04$hash\n' },
        { name: 'nginx.conf', content: 'auth_basic_user_file /srv/edge/nginx.r1.nginx.htpasswd;\n' },
      ]).hash,
    ).not.toBe(b.hash);
  });

  it("creates the bundle's folders (Nginx's run folder) for the check and in its own folder", async () => {
    const { hub, server } = await controller();
    const dir = await folder();
    const b = makeBundle(
      'edge',
      'nginx',
      '/srv/edge',
      [{ name: 'nginx.conf', content: 'pid /srv/edge/run/nginx.pid;\n' }],
      ['run'],
    );
    hub.publish(b);
    // the check runs in a scratch copy of the folder: it fails unless run/ is there too
    const check = {
      kind: 'command' as const,
      command: ['sh', '-c', 'test -d "$(dirname "$1")/run"', 'check', '{file}'],
    };
    const { a } = agent(server.address.port, dir, { check });
    await a.start();
    await converged(hub, b.hash);
    expect((await stat(path.join(dir, 'run'))).isDirectory()).toBe(true);
    expect(await readFile(path.join(dir, 'nginx.conf'), 'utf8')).toBe(`pid ${dir}/run/nginx.pid;\n`);
  });

  it('removes the ACME certificate copies a renewal replaced (no old keys left on the proxy node)', async () => {
    const { hub, server } = await controller();
    const dir = await folder();
    const acmeBundle = (hash: string) =>
      makeBundle('edge', 'haproxy', '/srv/edge', [
        { name: `interlock-acme/a.test.${hash}.pem`, content: `CHAIN AND KEY ${hash}\n`, secret: true },
        { name: 'haproxy.cfg', content: `crt /srv/edge/interlock-acme/a.test.${hash}.pem\n` },
      ]);
    hub.publish(acmeBundle('111111111111'));
    const { a } = agent(server.address.port, dir);
    await a.start();
    await converged(hub, acmeBundle('111111111111').hash);
    await writeFile(path.join(dir, 'interlock-acme', 'not-a-certificate.txt'), 'left alone\n');
    hub.publish(acmeBundle('222222222222'));
    await converged(hub, acmeBundle('222222222222').hash);
    const { readdir } = await import('node:fs/promises');
    expect((await readdir(path.join(dir, 'interlock-acme'))).sort()).toEqual([
      'a.test.222222222222.pem',
      'not-a-certificate.txt',
    ]);
  });

  it('a success is reported by the next poll alone; a POST carries a refusal and the success that clears it', async () => {
    const { hub, server } = await controller();
    const posts: string[] = [];
    const handle = hub.handle.bind(hub);
    hub.handle = (req, res) => {
      if (req.method === 'POST') posts.push(req.url ?? '');
      handle(req, res);
    };
    const dir = await folder();
    const check = path.join(dir, '..', `${path.basename(dir)}-check.sh`);
    await writeFile(check, '#!/bin/sh\nif grep -q forbidden "$1"; then echo "forbidden here" >&2; exit 1; fi\n');
    await chmod(check, 0o755);
    cleanups.push(() => rm(check, { force: true }));
    hub.publish(bundle(1));
    const { a } = agent(server.address.port, dir, { check: { kind: 'command', command: [check, '{file}'] } });
    await a.start();
    await converged(hub, bundle(1).hash);
    hub.publish(bundle(2));
    await converged(hub, bundle(2).hash);
    expect(posts).toEqual([]);
    hub.publish(bundle(3, 'forbidden\n'));
    await waitFor('the refusal reported', () => hub.health().list.find((x) => x.error !== null), { timeoutMs: 10_000 });
    expect(posts).toEqual(['/v1/reports']);
    hub.publish(bundle(4));
    await converged(hub, bundle(4).hash);
    await waitFor('the error cleared', () => hub.health().list[0]?.error === null, { timeoutMs: 10_000 });
    expect(posts).toEqual(['/v1/reports', '/v1/reports']);
  });

  it('a bundle its check rejects: files kept, the check words reported, said once; the next one applies', async () => {
    const { hub, server } = await controller();
    const dir = await folder();
    const check = path.join(dir, '..', `${path.basename(dir)}-check.sh`);
    await writeFile(
      check,
      '#!/bin/sh\nif grep -q forbidden "$1"; then echo "[ALERT] (7) : forbidden here" >&2; exit 1; fi\n',
    );
    await chmod(check, 0o755);
    cleanups.push(() => rm(check, { force: true }));
    hub.publish(bundle(1));
    const { a, count } = agent(server.address.port, dir, { check: { kind: 'command', command: [check, '{file}'] } });
    await a.start();
    await converged(hub, bundle(1).hash);
    const kept = await readFile(path.join(dir, 'haproxy.cfg'), 'utf8');
    hub.publish(bundle(2, 'forbidden\n'));
    await waitFor('the refusal reported', () => hub.health().list.find((x) => x.error !== null), { timeoutMs: 10_000 });
    const view = hub.health().list[0];
    expect(view).toMatchObject({ state: 'not_converged', applied: bundle(1).hash });
    expect(view?.error).toMatch(/forbidden here/);
    expect(await readFile(path.join(dir, 'haproxy.cfg'), 'utf8')).toBe(kept);
    await new Promise((r) => setTimeout(r, 300));
    expect(count(/local proxy rejected the bundle/)).toBe(1);
    hub.publish(bundle(3));
    await converged(hub, bundle(3).hash);
    expect(hub.health().list[0]?.error).toBeNull();
  });

  it('skips the local check when only servers and map entries moved (as the controller does); checks anything else', async () => {
    const { hub, server } = await controller();
    const dir = await folder();
    const calls = path.join(dir, '..', `${path.basename(dir)}-calls`);
    const binary = path.join(dir, '..', `${path.basename(dir)}-haproxy.sh`);
    await writeFile(binary, `#!/bin/sh\necho "$@" >> ${calls}\nexit 0\n`);
    await chmod(binary, 0o755);
    cleanups.push(() => rm(binary, { force: true }));
    cleanups.push(() => rm(calls, { force: true }));
    const checks = async () => (await readFile(calls, 'utf8').catch(() => '')).split('\n').filter(Boolean).length;
    const edge = (address: string, cert: string, extraBackend = '') =>
      makeBundle('edge', 'haproxy', '/srv/edge', [
        { name: 'certs/site.pem', content: cert, secret: true },
        { name: 'haproxy.hosts.0123456789ab.map', content: 'h.test/ be\n' },
        {
          name: 'haproxy.cfg',
          content: [
            'frontend http',
            '    bind 127.0.0.1:80',
            '    http-request set-var(txn.backend) var(txn.host),map_beg(haproxy.hosts.0123456789ab.map)',
            'backend be',
            `    server s1 ${address}:80 check`,
            extraBackend,
          ].join('\n'),
        },
      ]);
    const { a, count } = agent(server.address.port, dir, { check: { kind: 'binary', path: binary } });
    hub.publish(edge('10.0.0.1', 'CERT 1\n'));
    await a.start();
    await converged(hub, edge('10.0.0.1', 'CERT 1\n').hash);
    expect(await checks()).toBe(1);
    // A task moved: applied with no check, and says so.
    hub.publish(edge('10.0.0.2', 'CERT 1\n'));
    await converged(hub, edge('10.0.0.2', 'CERT 1\n').hash);
    expect(await checks()).toBe(1);
    expect(count(/check="skipped: only servers and map entries changed"/)).toBe(1);
    expect(await readFile(path.join(dir, 'haproxy.cfg'), 'utf8')).toContain('server s1 10.0.0.2:80 check');
    // A certificate renewed along with it: checked.
    hub.publish(edge('10.0.0.3', 'CERT 2\n'));
    await converged(hub, edge('10.0.0.3', 'CERT 2\n').hash);
    expect(await checks()).toBe(2);
    // A new backend: checked.
    hub.publish(edge('10.0.0.3', 'CERT 2\n', 'backend other\n    server s1 10.0.0.9:80'));
    await converged(hub, edge('10.0.0.3', 'CERT 2\n', 'backend other\n    server s1 10.0.0.9:80').hash);
    expect(await checks()).toBe(3);
  });

  it('a failed reload is retried on its own (the proxy was not up yet), not on the next change', async () => {
    const { hub, server } = await controller();
    const dir = await folder();
    const flag = path.join(dir, 'proxy-up');
    hub.publish(bundle(1));
    const { a, count } = agent(server.address.port, dir, {
      reload: { kind: 'command', command: ['test', '-f', flag] },
    });
    await a.start();
    await waitFor(
      'the reload failure reported',
      () => hub.health().list.find((x) => x.error?.includes('reload failed')),
      {
        timeoutMs: 10_000,
      },
    );
    await writeFile(flag, '');
    await converged(hub, bundle(1).hash);
    expect(count(/reload failed/)).toBe(1);
  });

  it('restarted: reports the hash on disk without applying it again', async () => {
    const { hub, server } = await controller();
    const dir = await folder();
    hub.publish(bundle(1));
    const first = agent(server.address.port, dir);
    await first.a.start();
    await converged(hub, bundle(1).hash);
    await first.a.stop();
    const second = agent(server.address.port, dir);
    await second.a.start();
    await waitFor('the poll of the restarted agent', () => hub.waiting() === 1, { timeoutMs: 10_000 });
    expect(second.a.applies).toBe(0);
    expect(second.count(/proxy files in place/)).toBe(1);
    expect(second.a.status().applied).toBe(bundle(1).hash);
  });

  it('controller unreachable, then back: one line each, then it converges', async () => {
    const dir = await folder();
    const { server: probe } = await controller();
    const port = probe.address.port;
    await probe.close();
    const { a, count } = agent(port, dir);
    await a.start();
    await waitFor('the unreachable line', () => count(/controller unreachable/) === 1, { timeoutMs: 10_000 });
    await new Promise((r) => setTimeout(r, 500));
    expect(count(/controller unreachable/)).toBe(1);
    const { hub } = await controller(port);
    hub.publish(bundle(1));
    await converged(hub, bundle(1).hash);
    expect(count(/controller answers again/)).toBe(1);
  });

  it('over HTTPS: the agent trusts the CA it is given, and refuses a controller it cannot verify', async () => {
    const dir = await folder();
    const cert = path.join(dir, 'agents.crt');
    const key = path.join(dir, 'agents.key');
    const r = spawnSync('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      '/CN=controller',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-days',
      '1',
      '-keyout',
      key,
      '-out',
      cert,
    ]);
    expect(r.status, String(r.stderr)).toBe(0);
    const { hub, server } = await controller(0, TOKEN, { cert, key });
    hub.publish(bundle(1));
    const url = `https://127.0.0.1:${server.address.port}`;
    const untrusted = agent(server.address.port, path.join(dir, 'u'), {
      controller: url,
      instance: 'u',
    } as Partial<AgentOptions>);
    await untrusted.a.start();
    await waitFor('the TLS failure', () => untrusted.count(/controller unreachable.*(self.signed|certificate)/) === 1, {
      timeoutMs: 10_000,
    });
    const trusted = agent(server.address.port, path.join(dir, 't'), {
      controller: url,
      ca: await readFile(cert, 'utf8'),
    });
    await trusted.a.start();
    await converged(hub, bundle(1).hash);
  });

  it('a wrong token: one line, the controller lists it, no file written', async () => {
    const { hub, server } = await controller(0, 'another-token');
    const dir = await folder();
    hub.publish(bundle(1));
    const { a, count } = agent(server.address.port, dir);
    await a.start();
    await waitFor('the token line', () => count(/refused the token/) === 1, { timeoutMs: 10_000 });
    await new Promise((r) => setTimeout(r, 500));
    expect(count(/refused the token/)).toBe(1);
    expect(hub.health().list).toMatchObject([{ instance: 'a1', state: 'unauthorized' }]);
    await expect(stat(path.join(dir, 'haproxy.cfg'))).rejects.toThrow(/ENOENT/);
  });
});
