/**
 * `interlock render` killed at random moments while it writes (issue 9): afterwards the HAProxy
 * config on disk and the map it names always come from one render. Hermetic: snapshots, no Docker.
 *
 * Two renders that differ in both files (a host alias moves: the map; a balance algorithm
 * changes: the config) alternate in each lane's folder. Every run is killed with SIGKILL a random
 * 0–KILL_WINDOW_MS after its first file operation in the folder, so the kills land inside the
 * write phase (map written, config not yet switched, temp files half-written...), not in the
 * second of start-up before it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, watch } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, interlock, ROOT } from '../helpers/exec.ts';

const KILLS = 32;
const LANES = 4;
const KILL_WINDOW_MS = 12;

interface Render {
  name: 'A' | 'B';
  snapshot: string;
  main: string;
  mapName: string;
  map: string;
}

let base: string;
const renders: Record<'A' | 'B', Render> = {} as Record<'A' | 'B', Render>;

function mapNameIn(main: string): string {
  const m = /map_beg\((haproxy\.hosts\.[^)]+)\)/.exec(main);
  if (!m?.[1]) throw new Error('the config names no map');
  return m[1];
}

beforeAll(async () => {
  base = await mkdtemp(path.join(tmpdir(), 'interlock-kill-'));
  await writeFile(
    path.join(base, 'interlock.config.json'),
    JSON.stringify({
      clusters: { local: { nodeAddress: '127.0.0.1' } },
      outputs: [{ kind: 'haproxy', file: 'out/haproxy.cfg', http: { address: '127.0.0.1', port: 8080 } }],
    }),
  );
  const demo = JSON.parse(await readFile(path.join(ROOT, 'examples', 'swarm-demo.snapshot.json'), 'utf8')) as {
    services: Array<{ Spec: { Name: string; Labels: Record<string, string> } }>;
  };
  const shop = demo.services.find((s) => s.Spec.Name === 'shop-web');
  if (!shop) throw new Error('fixture changed: no shop-web');
  await writeFile(path.join(base, 'a.json'), JSON.stringify(demo));
  shop.Spec.Labels['interlock.alias_domain'] = 'www2.example.com';
  shop.Spec.Labels['interlock.balance_algorithm'] = 'roundrobin';
  await writeFile(path.join(base, 'b.json'), JSON.stringify(demo));
  for (const name of ['A', 'B'] as const) {
    const out = path.join(base, `full-${name}`);
    const snapshot = path.join(base, `${name.toLowerCase()}.json`);
    const r = await interlock(['render', '--snapshot', snapshot, '--out-dir', out], { cwd: base, timeoutMs: 120_000 });
    if (r.code !== 0) throw new Error(r.stderr);
    const main = await readFile(path.join(out, 'haproxy.cfg'), 'utf8');
    const mapName = mapNameIn(main);
    renders[name] = { name, snapshot, main, mapName, map: await readFile(path.join(out, mapName), 'utf8') };
  }
}, 300_000);
afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

/** Runs `interlock render` into `out` and kills it a random moment after its first write there. */
function renderKilled(render: Render, out: string): Promise<{ killed: boolean }> {
  return new Promise((resolve, reject) => {
    let child: ChildProcess | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const watcher = watch(out, (_event, name) => {
      // The first file that appears (a deletion of an old temp file is not a write).
      if (timer || !child || name === null || !existsSync(path.join(out, name.toString()))) return;
      timer = setTimeout(() => child?.kill('SIGKILL'), Math.random() * KILL_WINDOW_MS);
    });
    child = spawn(process.execPath, [BIN, 'render', '--snapshot', render.snapshot, '--out-dir', out], {
      cwd: base,
      stdio: 'ignore',
    });
    child.on('error', reject);
    child.on('exit', (_code, signal) => {
      watcher.close();
      clearTimeout(timer);
      resolve({ killed: signal === 'SIGKILL' });
    });
  });
}

describe('interlock render killed while it writes', () => {
  it(`leaves a config and the map it names from one render, over ${KILLS} kills`, async () => {
    const outcomes: Array<{ on: string; killed: boolean; midWrite: boolean; consistent: boolean }> = [];
    const lane = async (n: number) => {
      const out = path.join(base, `lane-${n}`);
      await mkdir(out, { recursive: true });
      const first = await interlock(['render', '--snapshot', renders.A.snapshot, '--out-dir', out], {
        cwd: base,
        timeoutMs: 120_000,
      });
      expect(first.code).toBe(0);
      for (let i = 0; i < KILLS / LANES; i++) {
        const before = await readFile(path.join(out, 'haproxy.cfg'), 'utf8');
        const target = before === renders.A.main ? renders.B : renders.A;
        const { killed } = await renderKilled(target, out);
        const main = await readFile(path.join(out, 'haproxy.cfg'), 'utf8');
        const on = main === renders.A.main ? 'A' : main === renders.B.main ? 'B' : 'torn';
        const names = await readdir(out);
        const pair = on === 'torn' ? undefined : renders[on as 'A' | 'B'];
        const map = pair ? await readFile(path.join(out, pair.mapName), 'utf8').catch(() => undefined) : undefined;
        // Killed after writing started and before the switch: a temp file or the new map is there.
        const targetMap = await readFile(path.join(out, target.mapName), 'utf8').catch(() => undefined);
        const midWrite =
          killed && on !== target.name && (names.some((f) => f.endsWith('.tmp')) || targetMap === target.map);
        outcomes.push({ on, killed, midWrite, consistent: pair !== undefined && map === pair.map });
      }
    };
    await Promise.all(Array.from({ length: LANES }, (_, n) => lane(n)));

    const summary = {
      kills: outcomes.filter((o) => o.killed).length,
      midWrite: outcomes.filter((o) => o.midWrite).length,
      inconsistent: outcomes.filter((o) => !o.consistent).length,
    };
    expect(
      outcomes.filter((o) => !o.consistent),
      JSON.stringify(summary),
    ).toEqual([]);
    // The kills did land inside the write phase, or the test proves nothing.
    expect(summary.kills, JSON.stringify(summary)).toBeGreaterThanOrEqual(KILLS / 2);
    expect(summary.midWrite, JSON.stringify(summary)).toBeGreaterThanOrEqual(3);
    console.log(`kills: ${JSON.stringify(summary)}`);

    // The next start removes what the kills left: no temp file survives a complete render.
    for (let n = 0; n < LANES; n++) {
      const out = path.join(base, `lane-${n}`);
      const r = await interlock(['render', '--snapshot', renders.A.snapshot, '--out-dir', out], {
        cwd: base,
        timeoutMs: 120_000,
      });
      expect(r.code).toBe(0);
      expect((await readdir(out)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
      expect(await readFile(path.join(out, renders.A.mapName), 'utf8')).toBe(renders.A.map);
    }
  }, 600_000);
});
