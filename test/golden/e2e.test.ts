/**
 * End to end: the example config and the demo snapshot, both as shipped, through the whole pure
 * pipeline (snapshot → model → routes → planned files), byte-compared with golden files and
 * checked by the real proxies. What `npx interlock render --snapshot examples/swarm-demo.snapshot.json`
 * writes, minus the disk.
 */
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { mapSnapshots } from '../../src/cluster/sources.ts';
import { parseSnapshotText } from '../../src/cluster/snapshot-map.ts';
import { loadConfig } from '../../src/config/load.ts';
import { planRender } from '../../src/pipeline.ts';
import { ROOT } from '../helpers/exec.ts';
import { templateTexts } from '../helpers/render.ts';
import { haproxyCheck, itWithTools, nginxCheck, scratchDir } from '../render/proxy-check.ts';

const MAP = /^haproxy\.hosts\.[0-9a-f]{12}\.map$/;

async function plan() {
  const loaded = await loadConfig(path.join(ROOT, 'interlock.config.ts'), { cwd: ROOT, command: 'render' });
  const config = loaded.config;
  if (!config) throw new Error('the example config does not parse');
  const doc = parseSnapshotText(readFileSync(path.join(ROOT, 'examples', 'swarm-demo.snapshot.json'), 'utf8'), 'demo');
  const states = mapSnapshots([{ cluster: 'local', doc }], config).states;
  // A fixed config folder, so the absolute paths in the files do not depend on the checkout.
  return planRender(config, states, { configDir: '/srv/interlock', templates: templateTexts() });
}

describe('the example config and the demo snapshot, end to end', () => {
  it('give the golden files, byte for byte', async () => {
    const p = await plan();
    expect(p.diagnostics).toEqual([]);
    expect(p.outputs.map((o) => o.name)).toEqual(['haproxy', 'nginx']);
    for (const o of p.outputs) {
      for (const f of o.files) {
        const name = path.basename(f.path);
        // The map's name carries its content hash: stored under its plain name.
        await expect(f.content).toMatchFileSnapshot(`e2e/${MAP.test(name) ? 'haproxy.hosts.map' : name}`);
      }
    }
  });

  itWithTools('are accepted by the real haproxy and nginx', ['haproxy', 'nginx'], async () => {
    const p = await plan();
    for (const o of p.outputs) {
      const scratch = await scratchDir([]);
      try {
        // The Nginx file names its run folder (/srv/interlock/out): check it where it can write.
        const files = [...o.files].reverse().map((f) => ({
          name: path.basename(f.path),
          content: f.content.replaceAll('/srv/interlock/out', scratch.dir),
        }));
        for (const f of files) await writeFile(path.join(scratch.dir, f.name), f.content);
        const main = files[0]?.name ?? '';
        const result = o.output.kind === 'haproxy' ? haproxyCheck(scratch.dir, main) : nginxCheck(scratch.dir, main);
        expect(result.ok, result.output).toBe(true);
      } finally {
        await scratch.remove();
      }
    }
  });
});
