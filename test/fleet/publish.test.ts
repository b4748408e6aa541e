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
});
