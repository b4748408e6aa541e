import { mkdtempSync, openSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MAX_SNAPSHOT_BYTES, readSnapshotFiles } from '../../src/cluster/sources.ts';
import type { Config } from '../../src/config/schema.ts';
import { SnapshotError } from '../../src/errors.ts';
import { interlock, ROOT } from '../helpers/exec.ts';
import { readHaproxyMap } from '../helpers/haproxy-map.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'il-sources-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const config = { clusters: { local: {} }, outputs: [] } as unknown as Config;
const demoText = readFileSync(path.join(ROOT, 'examples', 'swarm-demo.snapshot.json'), 'utf8');

describe('reading snapshot files', () => {
  it('accepts a UTF-8 byte order mark, as editors on Windows write it', async () => {
    const file = path.join(dir, 'bom.json');
    writeFileSync(file, `\uFEFF${demoText}`);
    const [read] = await readSnapshotFiles([file], config, dir);
    expect(read?.doc.services).toHaveLength(6);
  });

  it('refuses a file over the limit before reading it, saying what the limit is', async () => {
    const file = path.join(dir, 'huge.json');
    // Sparse: takes no disk space and, read, no memory until read.
    openSync(file, 'w');
    truncateSync(file, 600 * 1024 * 1024);
    const error = await readSnapshotFiles([file], config, dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SnapshotError);
    expect((error as Error).message).toBe(
      `snapshot ${file} is 600 MiB; the limit is ${MAX_SNAPSHOT_BYTES / 1024 / 1024} MiB: take a new one with \`interlock snapshot\`, which keeps only the fields interlock reads`,
    );
  });

  it('render --snapshot: a BOM renders, an oversized file exits 2 with that one line and writes nothing', async () => {
    const out = path.join(dir, 'out');
    const bom = path.join(dir, 'bom.json');
    const ok = await interlock(['render', '--snapshot', bom, '--out-dir', out]);
    expect(ok.stderr).not.toContain('not valid JSON');
    expect(ok.code).toBe(0);
    const huge = path.join(dir, 'huge.json');
    const out2 = path.join(dir, 'out2');
    const r = await interlock(['render', '--snapshot', huge, '--out-dir', out2], { cwd: ROOT });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^interlock: snapshot .*huge\.json is 600 MiB; the limit is \d+ MiB: .*\n$/);
    expect(() => readdirSync(out2)).toThrow();
  });

  it('render --snapshot: a container Created out of range is a warning, not a crash; the rest renders', async () => {
    const doc = JSON.parse(demoText) as { containers: Record<string, unknown>[] };
    doc.containers.push({
      Id: `c0ffee${'0'.repeat(58)}`,
      Names: ['/legacy'],
      Labels: { 'interlock.hostname': 'legacy', 'interlock.domain': 'example.com' },
      State: 'running',
      Created: 1e300,
      Ports: [{ IP: '0.0.0.0', PrivatePort: 80, PublicPort: 8099, Type: 'tcp' }],
    });
    const file = path.join(dir, 'created.json');
    writeFileSync(file, JSON.stringify(doc));
    const out = path.join(dir, 'out-created');
    const r = await interlock(['render', '--snapshot', file, '--out-dir', out]);
    expect(r.stderr).not.toContain('bug');
    expect(r.stdout + r.stderr).toContain('Created 1e+300 is not a time; ignored');
    expect(r.code).toBe(0);
    expect(await readHaproxyMap(out)).toContain('legacy.example.com');
  });
});
