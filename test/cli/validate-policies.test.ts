/**
 * `interlock validate --snapshot` warns where HAProxy and Nginx cannot carry out a service's
 * traffic policy the same way (issue 14), naming the service; a service without policies, or a
 * config with one proxy kind where only both differ, gets no such warning.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { interlock } from '../helpers/exec.ts';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function validate(
  kinds: Array<'haproxy' | 'nginx'>,
  proxyProtocol = false,
): Promise<{ code: number | null; stdout: string }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'interlock-vpol-'));
  dirs.push(dir);
  const container = (name: string, labels: Record<string, string>) => ({
    Id: `${name}00000000`,
    Names: [`/${name}`],
    State: 'running',
    Labels: labels,
    Ports: [{ IP: '127.0.0.1', PrivatePort: 8080, PublicPort: 18080, Type: 'tcp' }],
  });
  const canary = {
    'com.docker.lb.hosts': 'canary.example.com',
    'com.docker.lb.port': '8080',
    'com.docker.lb.canary_group': 'web',
  };
  await writeFile(
    path.join(dir, 'snapshot.json'),
    JSON.stringify({
      services: [],
      tasks: [],
      networks: [],
      nodes: [],
      containers: [
        container('limited', {
          'com.docker.lb.hosts': 'limited.example.com',
          'com.docker.lb.port': '8080',
          'com.docker.lb.rate_limit': '10',
          'com.docker.lb.rate_limit_burst': '5',
          'com.docker.lb.compress_types': 'text/css',
          'com.docker.lb.request_id': 'true',
        }),
        container('plain', { 'com.docker.lb.hosts': 'plain.example.com', 'com.docker.lb.port': '8080' }),
        container('maint', {
          'com.docker.lb.hosts': 'maint.example.com',
          'com.docker.lb.port': '8080',
          'com.docker.lb.maintenance': 'true',
        }),
        { ...container('stable', { ...canary, 'com.docker.lb.weight': '90' }), Created: 1_700_000_000 },
        { ...container('canary', { ...canary, 'com.docker.lb.weight': '10' }), Created: 1_700_000_100 },
      ],
    }),
  );
  const http = (i: number) => ({
    address: '127.0.0.1',
    port: 18000 + i,
    ...(proxyProtocol ? { proxyProtocol: { trusted: ['127.0.0.1'] } } : {}),
  });
  const outputs = kinds.map((kind, i) =>
    kind === 'haproxy'
      ? { kind, file: 'out/haproxy.cfg', http: http(i) }
      : { kind, file: 'out/nginx.conf', runDir: 'run', http: http(i) },
  );
  await writeFile(
    path.join(dir, 'interlock.config.yaml'),
    stringify({ clusters: { local: {} }, rules: [{ kind: 'docker-lb' }], outputs }),
  );
  const r = await interlock(['validate', '--snapshot', 'snapshot.json'], { cwd: dir, timeoutMs: 60_000 });
  return { code: r.code, stdout: r.stdout };
}

describe('interlock validate: policies the proxies carry out differently', () => {
  it('warns for each such policy of the service, naming it, and stays valid', async () => {
    const r = await validate(['haproxy', 'nginx']);
    expect(r.code).toBe(0);
    const warnings = r.stdout.split('\n').filter((l) => l.includes('policy-differs') || l.includes('warning:'));
    const about = warnings.filter((l) => l.includes('limited'));
    expect(about.some((l) => l.includes('rate limit 10/s with burst 5'))).toBe(true);
    expect(about.some((l) => l.includes('Nginx also compresses text/html'))).toBe(true);
    expect(about.some((l) => l.includes('X-Request-Id'))).toBe(true);
    expect(warnings.filter((l) => l.includes('plain'))).toEqual([]);
  }, 60_000);

  it('with HAProxy alone: the rate limit still differs from the documented Nginx behaviour, the rest does not', async () => {
    const r = await validate(['haproxy']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('rate limit 10/s with burst 5');
    expect(r.stdout).not.toContain('Nginx also compresses');
    expect(r.stdout).not.toContain('X-Request-Id');
  }, 60_000);

  it('lists the services in maintenance and how each canary group splits its traffic', async () => {
    const r = await validate(['haproxy', 'nginx']);
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines.some((l) => l.includes('maint') && l.includes('in maintenance: maint.example.com answers 503'))).toBe(
      true,
    );
    expect(
      lines.some(
        (l) =>
          l.includes('canary group web shares canary.example.com by weight: stable 90 %') && l.includes('canary 10 %'),
      ),
    ).toBe(true);
    expect(lines.filter((l) => l.includes('plain'))).toEqual([]);
  }, 60_000);

  it('warns that Nginx needs the PROXY header on every connection of a listener that takes it', async () => {
    const both = await validate(['haproxy', 'nginx'], true);
    expect(both.code).toBe(0);
    expect(both.stdout).toContain('Nginx needs a PROXY header on every connection');
    const haproxy = await validate(['haproxy'], true);
    expect(haproxy.stdout).not.toContain('Nginx needs a PROXY header');
  }, 60_000);
});
