/**
 * `interlock snapshot` against a fake Engine API on a unix socket that answers with the demo
 * capture's bodies, secrets added where the Engine keeps them (a service's Env, Args, Command).
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runSnapshot } from '../../src/cli/snapshot.ts';
import { mapSnapshot, parseSnapshotText } from '../../src/cluster/snapshot-map.ts';
import { captureIo, ROOT } from '../helpers/exec.ts';

const demo = JSON.parse(readFileSync(path.join(ROOT, 'examples', 'swarm-demo.snapshot.json'), 'utf8')) as Record<
  string,
  Record<string, unknown>[]
>;
for (const s of demo.services ?? []) {
  const spec = (s.Spec as { TaskTemplate: { ContainerSpec: Record<string, unknown> } }).TaskTemplate.ContainerSpec;
  Object.assign(spec, { Env: ['DB_PASSWORD=hunter2'], Args: ['--token', 'hunter2'], Command: ['/run', 'hunter2'] });
}

function fakeEngine(socketPath: string): Promise<http.Server> {
  const bodies: Record<string, unknown> = {
    '/version': { ApiVersion: '1.41', Version: '20.10.24' },
    '/info': { Swarm: { LocalNodeState: 'active', ControlAvailable: true } },
    '/services': demo.services,
    '/tasks': demo.tasks,
    '/networks': demo.networks,
    '/nodes': demo.nodes,
    '/containers/json': demo.containers,
  };
  const server = http.createServer((req, res) => {
    const route = new URL(req.url ?? '/', 'http://docker').pathname.replace(/^\/v[\d.]+/, '');
    const body = bodies[route];
    if (body === undefined) res.writeHead(404).end('{"message":"page not found"}');
    else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  return new Promise((resolve) => server.listen(socketPath, () => resolve(server)));
}

describe('interlock snapshot', () => {
  let dir = '';
  let server: http.Server | undefined;
  const run = async (args: { out?: string }) => {
    const c = captureIo(dir);
    await runSnapshot(c.io, { format: 'text', ...args } as Parameters<typeof runSnapshot>[1]);
    return { code: c.code(), stdout: c.out.join(''), stderr: c.err.join('') };
  };

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'il-snap-'));
    server = await fakeEngine(path.join(dir, 'docker.sock'));
    writeFileSync(
      path.join(dir, 'interlock.config.yaml'),
      'clusters:\n  local:\n    endpoint: { kind: socket, path: docker.sock }\noutputs:\n  - { kind: log }\n',
    );
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes only the fields interlock reads, to a file only its owner can read', async () => {
    const file = path.join(dir, 'cluster.snapshot.json');
    const r = await run({ out: 'cluster.snapshot.json' });
    expect(r.stderr).toContain('→ cluster.snapshot.json');
    expect(r.code).toBe(0);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const text = readFileSync(file, 'utf8');
    for (const secret of ['hunter2', '"Env"', '"Args"', '"Command"']) expect(text).not.toContain(secret);
    // Nothing interlock reads is lost: the file maps as the Engine's full answer does.
    const full = { ...demo, metadata: undefined };
    const options = { cluster: 'local' };
    expect(mapSnapshot(parseSnapshotText(text, 'f'), options)).toEqual(mapSnapshot(full, options));
  });

  it('makes an existing, world-readable snapshot file private when it replaces it', async () => {
    const file = path.join(dir, 'old.json');
    writeFileSync(file, '{"services": []}', { mode: 0o644 });
    expect((await run({ out: 'old.json' })).code).toBe(0);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('prints the same trimmed document on stdout', async () => {
    const r = await run({});
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('hunter2');
    expect(JSON.parse(r.stdout)).toHaveProperty('services');
  });
});
