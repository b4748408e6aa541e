/**
 * Writing files: a replaced file keeps its mode and owner; a new one is 0644; an output's maps
 * switch with its main file and the ones left unused go (issue 9).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { chmod, chown, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  MAP_GRACE_MS,
  readIfExists,
  removeUnusedMaps,
  writeIfChanged,
  writeOutputFiles,
} from '../../src/apply/write.ts';
import { configSchema, type FileOutput } from '../../src/config/schema.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'interlock-write-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
/** `nobody` on Debian and most Linux systems. */
const NOBODY = { uid: 65534, gid: 65534 };

const [haproxy, nginx] = configSchema.parse({
  clusters: { local: {} },
  outputs: [
    { kind: 'haproxy', file: 'haproxy.cfg' },
    { kind: 'nginx', file: 'nginx.conf', http: { port: 81 } },
  ],
}).outputs as [FileOutput, FileOutput];

/** Root with the right to mount (a container may lack it). */
function canBindMount(): boolean {
  if (!isRoot) return false;
  const probe = mkdtempSync(path.join(tmpdir(), 'interlock-mount-probe-'));
  try {
    writeFileSync(path.join(probe, 'a'), '');
    writeFileSync(path.join(probe, 'b'), '');
    execFileSync('mount', ['--bind', path.join(probe, 'a'), path.join(probe, 'b')], { stdio: 'ignore' });
    execFileSync('umount', [path.join(probe, 'b')], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}

async function mode(file: string): Promise<number> {
  return (await stat(file)).mode & 0o7777;
}

describe('writeIfChanged: mode and owner', () => {
  it('keeps the mode of the file it replaces', async () => {
    const file = path.join(dir, 'haproxy.cfg');
    await writeFile(file, 'old\n');
    await chmod(file, 0o600);
    expect(await writeIfChanged(file, 'new\n')).toBe('replaced');
    expect(await readFile(file, 'utf8')).toBe('new\n');
    expect(await mode(file)).toBe(0o600);
    await chmod(file, 0o640);
    await writeIfChanged(file, 'newer\n');
    expect(await mode(file)).toBe(0o640);
  });

  it.skipIf(!isRoot)('keeps the owner of the file it replaces (needs root to chown to nobody)', async () => {
    const file = path.join(dir, 'haproxy.cfg');
    await writeFile(file, 'old\n');
    await chmod(file, 0o600);
    await chown(file, NOBODY.uid, NOBODY.gid);
    expect(await writeIfChanged(file, 'new\n')).toBe('replaced');
    const s = await stat(file);
    expect({ uid: s.uid, gid: s.gid, mode: s.mode & 0o7777 }).toEqual({ ...NOBODY, mode: 0o600 });
  });

  it.skipIf(!canBindMount())(
    'writes a single-file bind mount in place, keeping its mode and owner (needs root and mount)',
    async () => {
      const source = path.join(dir, 'host-haproxy.cfg');
      const file = path.join(dir, 'haproxy.cfg');
      await writeFile(source, 'old\n');
      await writeFile(file, '');
      await chmod(source, 0o600);
      await chown(source, NOBODY.uid, NOBODY.gid);
      execFileSync('mount', ['--bind', source, file]);
      try {
        expect(await writeIfChanged(file, 'new\n')).toBe('replaced-in-place');
        const s = await stat(source);
        expect({ uid: s.uid, gid: s.gid, mode: s.mode & 0o7777 }).toEqual({ ...NOBODY, mode: 0o600 });
        expect(await readFile(source, 'utf8')).toBe('new\n');
      } finally {
        execFileSync('umount', [file]);
      }
    },
  );

  it('creates new files 0644 whatever the umask', async () => {
    const old = process.umask(0o077);
    try {
      const file = path.join(dir, 'sub', 'nginx.conf');
      expect(await writeIfChanged(file, 'x\n')).toBe('created');
      expect(await mode(file)).toBe(0o644);
    } finally {
      process.umask(old);
    }
  });

  it('writes a file holding password hashes 0640, and closes up a wider one it replaces or keeps', async () => {
    const file = path.join(dir, 'nginx.web.htpasswd');
    expect(await writeIfChanged(file, 'alice:$2b$...\n', true)).toBe('created');
    expect(await mode(file)).toBe(0o640);
    // A config that did not hold hashes before (0644) and does now.
    const cfg = path.join(dir, 'haproxy.cfg');
    await writeIfChanged(cfg, 'a\n');
    expect(await mode(cfg)).toBe(0o644);
    expect(await writeIfChanged(cfg, 'b\n', true)).toBe('replaced');
    expect(await mode(cfg)).toBe(0o640);
    await chmod(cfg, 0o644);
    expect(await writeIfChanged(cfg, 'b\n', true)).toBe('unchanged');
    expect(await mode(cfg)).toBe(0o640);
    // Narrower modes chosen by the operator stay.
    await chmod(file, 0o600);
    await writeIfChanged(file, 'bob:$2b$...\n', true);
    expect(await mode(file)).toBe(0o600);
  });

  it('leaves no temp file behind', async () => {
    const file = path.join(dir, 'haproxy.cfg');
    await writeIfChanged(file, 'a\n');
    await writeIfChanged(file, 'b\n');
    expect(await readdir(dir)).toEqual(['haproxy.cfg']);
  });
});

describe('writeOutputFiles: maps switch with the main file', () => {
  const map = (hash: string) => path.join(dir, `haproxy.hosts.${hash}.map`);
  let cfg = '';
  beforeEach(() => {
    cfg = path.join(dir, 'haproxy.cfg');
  });
  const render = (hash: string) => [
    { path: map(hash), content: `# map ${hash}\n` },
    { path: cfg, content: `use map_beg(haproxy.hosts.${hash}.map)\n` },
  ];
  /** Makes a file look written `ms` ago. */
  const age = (file: string, ms: number) => utimes(file, new Date(Date.now() - ms), new Date(Date.now() - ms));

  it('writes the map first and the main file last, then removes the maps no config names', async () => {
    const a = 'aaaaaaaaaaaa';
    const b = 'bbbbbbbbbbbb';
    const c = 'cccccccccccc';
    expect((await writeOutputFiles(haproxy, render(a))).map((w) => w.result)).toEqual(['created', 'created']);
    await age(map(a), 2 * MAP_GRACE_MS);
    // a → b: a is what the replaced config named (a reload still starting may read it): kept.
    await writeOutputFiles(haproxy, render(b));
    expect((await readdir(dir)).sort()).toEqual(['haproxy.cfg', `haproxy.hosts.${a}.map`, `haproxy.hosts.${b}.map`]);
    await age(map(b), 2 * MAP_GRACE_MS);
    // b → c: a is named by neither the new config nor the replaced one, and is old: removed.
    await writeOutputFiles(haproxy, render(c));
    expect((await readdir(dir)).sort()).toEqual(['haproxy.cfg', `haproxy.hosts.${b}.map`, `haproxy.hosts.${c}.map`]);
    expect(await readFile(cfg, 'utf8')).toContain(c);
  });

  it('with the contents the caller just read (onDisk), writes and cleans up the same way', async () => {
    const a = 'aaaaaaaaaaaa';
    const b = 'bbbbbbbbbbbb';
    const c = 'cccccccccccc';
    const read = async (files: { path: string }[]) =>
      new Map(await Promise.all(files.map(async (f) => [f.path, await readIfExists(f.path)] as const)));
    expect((await writeOutputFiles(haproxy, render(a), [], await read(render(a)))).map((w) => w.result)).toEqual([
      'created',
      'created',
    ]);
    expect((await writeOutputFiles(haproxy, render(a), [], await read(render(a)))).map((w) => w.result)).toEqual([
      'unchanged',
      'unchanged',
    ]);
    await age(map(a), 2 * MAP_GRACE_MS);
    await writeOutputFiles(haproxy, render(b), [], await read(render(b)));
    await age(map(b), 2 * MAP_GRACE_MS);
    expect((await writeOutputFiles(haproxy, render(c), [], await read(render(c)))).map((w) => w.result)).toEqual([
      'created',
      'replaced',
    ]);
    // a was named by neither the config written nor the one it replaced (b's)
    expect((await readdir(dir)).sort()).toEqual(['haproxy.cfg', `haproxy.hosts.${b}.map`, `haproxy.hosts.${c}.map`]);
    expect(await readFile(cfg, 'utf8')).toContain(c);
  });

  it('keeps a young unused map (another writer may be about to name it), and other files', async () => {
    await writeOutputFiles(haproxy, render('aaaaaaaaaaaa'));
    const young = map('dddddddddddd');
    await writeFile(young, 'd\n');
    const others = ['haproxy.hosts.map.bak', 'edge.hosts.eeeeeeeeeeee.map', 'haproxy.hosts.EEEEEEEEEEEE.map', 'notes'];
    for (const f of others) {
      await writeFile(path.join(dir, f), 'x\n');
      await age(path.join(dir, f), 2 * MAP_GRACE_MS);
    }
    await writeOutputFiles(haproxy, render('bbbbbbbbbbbb'));
    await writeOutputFiles(haproxy, render('cccccccccccc'));
    const left = await readdir(dir);
    expect(left).toContain('haproxy.hosts.dddddddddddd.map');
    for (const f of others) expect(left).toContain(f);
    await age(young, 2 * MAP_GRACE_MS);
    expect(await removeUnusedMaps(haproxy, cfg)).toEqual([young]);
  });

  it('removes the map of versions before hashed names once the config no longer names it', async () => {
    const legacy = path.join(dir, 'haproxy.hosts.map');
    await writeFile(legacy, 'old\n');
    await writeFile(cfg, 'use map_beg(haproxy.hosts.map)\n');
    await age(legacy, 2 * MAP_GRACE_MS);
    await writeOutputFiles(haproxy, render('aaaaaaaaaaaa'));
    // Named by the config it replaced: kept for one more switch.
    expect(await readdir(dir)).toContain('haproxy.hosts.map');
    await age(map('aaaaaaaaaaaa'), 2 * MAP_GRACE_MS);
    await writeOutputFiles(haproxy, render('bbbbbbbbbbbb'));
    expect(await readdir(dir)).not.toContain('haproxy.hosts.map');
  });

  it('never removes the map the config on disk names, however old', async () => {
    await writeOutputFiles(haproxy, render('aaaaaaaaaaaa'));
    await age(map('aaaaaaaaaaaa'), 10 * MAP_GRACE_MS);
    expect(await removeUnusedMaps(haproxy, cfg)).toEqual([]);
    expect(await writeOutputFiles(haproxy, render('aaaaaaaaaaaa'))).toEqual([
      { path: map('aaaaaaaaaaaa'), result: 'unchanged' },
      { path: cfg, result: 'unchanged' },
    ]);
    expect(await readdir(dir)).toContain('haproxy.hosts.aaaaaaaaaaaa.map');
  });

  it('removes nothing for Nginx, which renders one file', async () => {
    await writeFile(path.join(dir, 'nginx.hosts.aaaaaaaaaaaa.map'), 'x\n');
    await age(path.join(dir, 'nginx.hosts.aaaaaaaaaaaa.map'), 2 * MAP_GRACE_MS);
    await writeOutputFiles(nginx, [{ path: path.join(dir, 'nginx.conf'), content: 'a\n' }]);
    expect((await readdir(dir)).sort()).toEqual(['nginx.conf', 'nginx.hosts.aaaaaaaaaaaa.map']);
  });
});

describe('policy files (pages, htpasswd) next to the config', () => {
  it('removes the ones no config names any more, once old, and never the other kind’s', async () => {
    const age = (file: string, ms: number) => utimes(file, new Date(Date.now() - ms), new Date(Date.now() - ms));
    const old = [
      'nginx.web__local__0.nginx.htpasswd',
      'nginx.web__local__0.nginx-page.html',
      'haproxy.web__local__0.haproxy-page.html',
    ];
    for (const f of old) {
      await writeFile(path.join(dir, f), 'x\n');
      await age(path.join(dir, f), 2 * MAP_GRACE_MS);
    }
    // A page of another route the new nginx config names, and one of an HAProxy output named alike.
    await writeFile(path.join(dir, 'haproxy.cfg'), 'a\n');
    await writeOutputFiles(nginx, [
      { path: path.join(dir, 'nginx.shop__local__0.nginx-page.html'), content: 'p\n' },
      { path: path.join(dir, 'nginx.conf'), content: `alias ${dir}/nginx.shop__local__0.nginx-page.html;\n` },
    ]);
    expect((await readdir(dir)).sort()).toEqual([
      'haproxy.cfg',
      'haproxy.web__local__0.haproxy-page.html',
      'nginx.conf',
      'nginx.shop__local__0.nginx-page.html',
    ]);
    await writeOutputFiles(haproxy, [{ path: path.join(dir, 'haproxy.cfg'), content: 'b\n' }]);
    expect(await readdir(dir)).not.toContain('haproxy.web__local__0.haproxy-page.html');
  });
});

describe('a FIFO where an output goes', () => {
  it('is refused at once instead of blocking the read forever', async () => {
    const d = await mkdtemp(`${tmpdir()}/interlock-fifo-`);
    try {
      execFileSync('mkfifo', [`${d}/haproxy.cfg`]);
      await expect(readIfExists(`${d}/haproxy.cfg`)).rejects.toThrow(/not a regular file/);
    } finally {
      await rm(d, { recursive: true, force: true });
    }
  });
});
