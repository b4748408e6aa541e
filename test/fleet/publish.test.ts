/** A planned output → the bundle: rendered files relative to the output's folder, TLS files read in. */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema, type HaproxyOutput } from '../../src/config/schema.ts';
import { parseBundle } from '../../src/fleet/bundle.ts';
import { bundleOf } from '../../src/fleet/publish.ts';
import type { PlannedOutput } from '../../src/pipeline.ts';
import { route } from '../fixtures/routes/base.ts';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'il-publish-'));
  await mkdir(path.join(dir, 'edge', 'certs'), { recursive: true });
  await mkdir(path.join(dir, 'elsewhere'), { recursive: true });
  await writeFile(path.join(dir, 'edge', 'certs', 'a.test.pem'), 'CERT+KEY a\n');
  await writeFile(path.join(dir, 'elsewhere', 'a.test.pem'), 'CERT+KEY a\n');
  for (const storage of ['acme', 'edge/acme']) {
    await mkdir(path.join(dir, storage, 'certs'), { recursive: true });
    await writeFile(path.join(dir, storage, 'certs', 'b.test.0123456789ab.pem'), 'ACME KEY+CHAIN b\n');
    await writeFile(path.join(dir, storage, 'certs', 'd.test.0123456789ab.pem'), 'ACME KEY+CHAIN d\n');
  }
});
afterAll(() => rm(dir, { recursive: true, force: true }));

function planned(certDir: string): PlannedOutput {
  const config = configSchema.parse({
    clusters: { c: {} },
    agents: { tokenFile: 't' },
    outputs: [{ kind: 'haproxy', name: 'edge', file: 'edge/haproxy.cfg', serve: true, https: { certDir } }],
  });
  const output = config.outputs[0] as HaproxyOutput;
  const routeList = [route({ service: 'a', hosts: ['a.test'] })];
  return {
    index: 0,
    name: 'edge',
    output,
    files: [
      { path: path.join(dir, 'edge', 'haproxy.hosts.0123456789ab.map'), content: 'a.test/ be\n' },
      { path: path.join(dir, 'edge', 'haproxy.cfg'), content: `crt-list ${dir}/edge/x\n` },
    ],
    routes: 1,
    backends: 1,
    skipped: [],
    refused: [],
    routeList,
    leftOut: [],
  };
}

/** ACME hosts b.test and d.test (issued, in `storage`), c.test (not yet), a.test (own certificate). */
function plannedAcme(storage: string): PlannedOutput {
  const base = planned('edge/certs');
  const b = path.join(dir, storage, 'certs', 'b.test.0123456789ab.pem');
  const d = path.join(dir, storage, 'certs', 'd.test.0123456789ab.pem');
  return {
    ...base,
    files: [
      { path: path.join(dir, 'edge', 'haproxy.0123456789ab.crt-list'), content: `${b} b.test\n${d} d.test\n` },
      { path: path.join(dir, 'edge', 'haproxy.cfg'), content: 'crt-list haproxy.0123456789ab.crt-list\n' },
    ],
    routeList: [
      route({ service: 'a', hosts: ['a.test'], sslCert: 'a.test.pem' }),
      route({ service: 'b', hosts: ['b.test'] }),
      route({ service: 'c', hosts: ['c.test'] }),
      route({ service: 'd', hosts: ['d.test'] }),
    ],
    acmeHosts: new Set(['a.test', 'b.test', 'c.test', 'd.test']),
    acmeCertificates: new Map([
      ['a.test', null],
      ['b.test', b],
      ['c.test', null],
      ['d.test', d],
    ]),
  };
}

describe('bundleOf', () => {
  it('carries the rendered files and the TLS files the routes load, named under the folder', async () => {
    const b = parseBundle(JSON.parse(JSON.stringify(await bundleOf(planned('edge/certs'), dir))));
    expect(b.root).toBe(path.join(dir, 'edge'));
    expect(b.files.map((f) => [f.name, f.secret === true])).toEqual([
      ['certs/a.test.pem', true],
      ['haproxy.hosts.0123456789ab.map', false],
      ['haproxy.cfg', false],
    ]);
    expect(b.files[0]?.content).toBe('CERT+KEY a\n');
    expect(b.main).toBe('haproxy.cfg');
  });

  it("refuses TLS files outside the output's folder, naming the fix", async () => {
    await expect(bundleOf(planned('elsewhere'), dir)).rejects.toThrow(/outside the output's folder.*put certDir/);
  });

  it('carries the ACME certificates the routes load from acme.storage outside the folder, renamed under it', async () => {
    const b = parseBundle(JSON.parse(JSON.stringify(await bundleOf(plannedAcme('acme'), dir))));
    expect(b.files.map((f) => [f.name, f.secret === true])).toEqual([
      ['certs/a.test.pem', true],
      ['interlock-acme/b.test.0123456789ab.pem', true],
      ['interlock-acme/d.test.0123456789ab.pem', true],
      ['haproxy.0123456789ab.crt-list', false],
      ['haproxy.cfg', false],
    ]);
    expect(b.files[1]?.content).toBe('ACME KEY+CHAIN b\n');
    // The crt-list names the carried copy under the root, which each agent rebases onto its folder.
    const copy = (host: string) => path.join(dir, 'edge', 'interlock-acme', `${host}.0123456789ab.pem`);
    expect(b.files[3]?.content).toBe(`${copy('b.test')} b.test\n${copy('d.test')} d.test\n`);
    expect(JSON.stringify(b)).not.toContain(path.join(dir, 'acme'));
  });

  it('carries ACME certificates under their own name when acme.storage is inside the folder', async () => {
    const b = parseBundle(JSON.parse(JSON.stringify(await bundleOf(plannedAcme('edge/acme'), dir))));
    expect(b.files.map((f) => f.name)).toContain('acme/certs/b.test.0123456789ab.pem');
    expect(b.files.find((f) => f.name.endsWith('crt-list'))?.content).toBe(
      `${path.join(dir, 'edge', 'acme', 'certs', 'b.test.0123456789ab.pem')} b.test\n${path.join(dir, 'edge', 'acme', 'certs', 'd.test.0123456789ab.pem')} d.test\n`,
    );
  });
});

describe('run folders', () => {
  it("carry Nginx's run folder under the output's folder for the agents to create; not the folder itself", async () => {
    const base = planned('edge/certs');
    const inside = await bundleOf({ ...base, runDirs: [path.join(dir, 'edge', 'run')] }, dir);
    expect(inside.dirs).toEqual(['run']);
    expect(await bundleOf({ ...base, runDirs: [path.join(dir, 'edge')] }, dir)).not.toHaveProperty('dirs');
  });
});

describe('files with password hashes', () => {
  it('travel marked private, so agents write them 0640 as the controller does', async () => {
    const base = planned('edge/certs');
    const htpasswd = {
      path: path.join(dir, 'edge', 'users.htpasswd'),
      content: 'alice:$2b$04$x\n',
      private: true as const,
    };
    // Through JSON and the agent's parser, as on the wire.
    const b = parseBundle(
      JSON.parse(JSON.stringify(await bundleOf({ ...base, files: [htpasswd, ...base.files] }, dir))),
    );
    expect(b.files.find((f) => f.name === 'users.htpasswd')).toMatchObject({ private: true });
    expect(b.files.find((f) => f.name === 'haproxy.cfg')).not.toHaveProperty('private');
  });
});
