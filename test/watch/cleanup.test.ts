/**
 * Start-up clean-up (issue 9): what killed runs leave behind goes, and only that: interlock's own
 * names, whose process is gone; a live interlock's temp files and scratch folders stay.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkRendered } from '../../src/apply/check-proxy.ts';
import { ownerGone, removeLeftovers, STALE_MS } from '../../src/apply/cleanup.ts';
import { MAP_GRACE_MS } from '../../src/apply/write.ts';
import { configSchema, type FileOutput } from '../../src/config/schema.ts';

let dir: string;
let scratch: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'interlock-cleanup-'));
  scratch = await mkdtemp(path.join(tmpdir(), 'interlock-cleanup-tmp-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
  await rm(scratch, { recursive: true, force: true });
});

const config = configSchema.parse({
  clusters: { local: {} },
  outputs: [
    { kind: 'haproxy', file: 'out/haproxy.cfg' },
    { kind: 'nginx', file: 'out/nginx.conf', http: { port: 81 } },
    { kind: 'log' },
  ],
});

/** The pid of a process that has exited. */
function deadPid(): number {
  const r = spawnSync('true');
  if (r.pid === undefined || !ownerGone(r.pid)) throw new Error('no dead pid to test with');
  return r.pid;
}

/** A live process other than this one: the test runner's parent. */
const livePid = process.ppid;
const ago = (file: string, ms: number) => utimes(file, new Date(Date.now() - ms), new Date(Date.now() - ms));

async function touch(file: string, content = 'x\n'): Promise<string> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, content);
  return file;
}

describe('ownerGone', () => {
  it('tells a live process from a gone one; this very process counts as gone (a dead run may have had its pid)', () => {
    expect(ownerGone(livePid)).toBe(false);
    expect(ownerGone(1)).toBe(false);
    expect(ownerGone(deadPid())).toBe(true);
    expect(ownerGone(process.pid)).toBe(true);
    expect(ownerGone(0)).toBe(true);
  });
});

describe('scratch check folders', () => {
  it('carry the pid of their process, so a clean-up can tell whether it is gone', async () => {
    const output = configSchema.parse({
      clusters: { local: {} },
      outputs: [{ kind: 'haproxy', file: 'haproxy.cfg', validate: { kind: 'command', command: ['pwd', '{file}'] } }],
    }).outputs[0] as FileOutput;
    const r = await checkRendered(output, [{ name: 'haproxy.cfg', content: '' }], { env: {}, missingBinary: 'fail' });
    const scratch = r.output.split('\n')[0] ?? '';
    expect(path.basename(scratch)).toMatch(new RegExp(`^interlock-check-${process.pid}-haproxy-[A-Za-z0-9]{6}$`));
    expect(existsSync(scratch)).toBe(false);
  });
});

describe('removeLeftovers', () => {
  it("removes dead runs' temp files next to the outputs and keeps everything else", async () => {
    const dead = deadPid();
    const out = path.join(dir, 'out');
    const gone = [
      `.haproxy.cfg.${dead}.0123456789ab.tmp`,
      `.haproxy.hosts.0123456789ab.map.${dead}.aaaaaaaaaaaa.tmp`,
      `.haproxy.hosts.map.${dead}.aaaaaaaaaaaa.tmp`,
      `.nginx.conf.${dead}.bbbbbbbbbbbb.tmp`,
      `.haproxy.cfg.${process.pid}.cccccccccccc.tmp`,
    ];
    const kept = [
      `.haproxy.cfg.${livePid}.0123456789ab.tmp`,
      '.haproxy.cfg.0123456789ab.tmp',
      `.edge.cfg.${dead}.0123456789ab.tmp`,
      `.haproxy.cfg.${dead}.0123456789ab.tmp.keep`,
      `haproxy.cfg.${dead}.0123456789ab.tmp`,
      'notes.txt',
    ];
    for (const f of [...gone, ...kept]) await touch(path.join(out, f));
    // Without a pid (versions before this one): only once surely abandoned.
    const legacyOld = await touch(path.join(out, '.nginx.conf.dddddddddddd.tmp'));
    await ago(legacyOld, STALE_MS + 60_000);

    const removed = await removeLeftovers(config, { configDir: dir, tmpDir: scratch });
    expect(removed.sort()).toEqual([...gone.map((f) => path.join(out, f)), legacyOld].sort());
    expect((await readdir(out)).sort()).toEqual([...kept].sort());
  });

  it('removes the scratch folders of dead runs only', async () => {
    const dead = deadPid();
    const gone = [`interlock-check-${dead}-haproxy-AbC123`, `interlock-check-${process.pid}-nginx-AbC123`];
    const kept = [
      `interlock-check-${livePid}-haproxy-AbC123`,
      'interlock-check-nginx-XyZ789',
      `interlock-render-${dead}-AbC123`,
      `interlock-check-${dead}-haproxy-AbC123x`,
    ];
    for (const d of [...gone, ...kept]) await touch(path.join(scratch, d, 'haproxy.cfg'));
    const legacyOld = path.join(scratch, 'interlock-check-haproxy-Old123');
    await touch(path.join(legacyOld, 'haproxy.cfg'));
    await ago(legacyOld, STALE_MS + 60_000);

    const removed = await removeLeftovers(config, { configDir: dir, tmpDir: scratch });
    expect(removed.sort()).toEqual([...gone.map((d) => path.join(scratch, d)), legacyOld].sort());
    expect((await readdir(scratch)).sort()).toEqual([...kept].sort());
  });

  it('removes old HAProxy maps the config on disk does not name', async () => {
    const out = path.join(dir, 'out');
    await touch(path.join(out, 'haproxy.cfg'), 'map_beg(haproxy.hosts.aaaaaaaaaaaa.map)\n');
    const named = await touch(path.join(out, 'haproxy.hosts.aaaaaaaaaaaa.map'));
    const unused = await touch(path.join(out, 'haproxy.hosts.bbbbbbbbbbbb.map'));
    await touch(path.join(out, 'haproxy.hosts.cccccccccccc.map'));
    for (const f of [named, unused]) await ago(f, 2 * MAP_GRACE_MS);
    expect(await removeLeftovers(config, { configDir: dir, tmpDir: scratch })).toEqual([unused]);
    expect((await readdir(out)).sort()).toEqual([
      'haproxy.cfg',
      'haproxy.hosts.aaaaaaaaaaaa.map',
      'haproxy.hosts.cccccccccccc.map',
    ]);
  });

  it('looks under --out-dir when given, relative to the working directory', async () => {
    const dead = deadPid();
    const temp = await touch(path.join(dir, 'elsewhere', `.haproxy.cfg.${dead}.0123456789ab.tmp`));
    const notThere = await touch(path.join(dir, 'out', `.haproxy.cfg.${dead}.0123456789ab.tmp`));
    const removed = await removeLeftovers(config, { configDir: dir, cwd: dir, outDir: 'elsewhere', tmpDir: scratch });
    expect(removed).toEqual([temp]);
    expect(await readdir(path.dirname(notThere))).toEqual([path.basename(notThere)]);
  });
});
