import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Applier, checkFiles } from '../../src/apply/apply.ts';
import type { ProxyCheck } from '../../src/apply/check-proxy.ts';
import type { ReloadResult } from '../../src/apply/reload.ts';
import { configSchema, type FileOutput } from '../../src/config/schema.ts';
import type { PlannedOutput } from '../../src/pipeline.ts';
import type { Route } from '../../src/routes/types.ts';
import { route } from '../fixtures/routes/base.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'interlock-apply-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const output = configSchema.parse({
  clusters: { local: {} },
  outputs: [{ kind: 'haproxy', file: 'haproxy.cfg', reload: { kind: 'command', command: ['true'] } }],
}).outputs[0] as FileOutput;

function planned(main: string, map: string, refused: string[] = [], routeList: Route[] = []): PlannedOutput {
  return {
    index: 0,
    name: 'haproxy',
    output,
    files: [
      { path: path.join(dir, 'haproxy.hosts.map'), content: map },
      { path: path.join(dir, 'haproxy.cfg'), content: main },
    ],
    routes: 1,
    backends: 1,
    skipped: [],
    refused,
    routeList,
    leftOut: [],
  };
}

/** The proxy's check: rejects any main file containing "BAD", as `haproxy -c` would a bad line. */
function fakes(reloadOk = true) {
  const order: string[] = [];
  const check = vi.fn(async (_o: FileOutput, files: readonly { name: string; content: string }[]) => {
    order.push(`check ${files.map((f) => f.name).join(',')}`);
    const main = files[0]?.content ?? '';
    const at = main.split('\n').findIndex((l) => l.includes('BAD'));
    return (
      at === -1
        ? { ok: true, output: '', command: 'haproxy -c -q -f haproxy.cfg' }
        : {
            ok: false,
            output: `[ALERT] : config : parsing [haproxy.cfg:${at + 1}] : unknown keyword 'BAD'`,
            command: 'haproxy -c -q -f haproxy.cfg',
          }
    ) satisfies ProxyCheck;
  });
  const reloader = vi.fn(async (): Promise<ReloadResult> => {
    order.push('reload');
    return reloadOk ? { ok: true, detail: 'true' } : { ok: false, detail: 'true failed: exit 1' };
  });
  return { check, reloader, order };
}

const read = (name: string) => readFile(path.join(dir, name), 'utf8');

describe('Applier', () => {
  it('checks, writes the map then the main file, reloads; then does nothing while the bytes stay the same', async () => {
    const { check, reloader, order } = fakes();
    const applier = new Applier({ env: {}, reload: true, missingBinary: 'fail', check, reloader });
    const r = await applier.apply(planned('global\n', 'web.test/ web\n'));
    expect(r).toMatchObject({
      kind: 'applied',
      files: [
        { path: path.join(dir, 'haproxy.hosts.map'), result: 'created' },
        { path: path.join(dir, 'haproxy.cfg'), result: 'created' },
      ],
      reload: { ok: true },
    });
    expect(order).toEqual(['check haproxy.cfg,haproxy.hosts.map', 'reload']);
    expect(await read('haproxy.cfg')).toBe('global\n');
    expect(await applier.apply(planned('global\n', 'web.test/ web\n'))).toEqual({ kind: 'unchanged' });
    expect(check).toHaveBeenCalledTimes(1);
    expect(reloader).toHaveBeenCalledTimes(1);
  });

  it('keeps the last good files when the proxy rejects a render, does not reload, and checks that render only once', async () => {
    const { check, reloader } = fakes();
    const applier = new Applier({ env: {}, reload: true, missingBinary: 'fail', check, reloader });
    await applier.apply(planned('global\n', 'web.test/ web\n'));
    // A hand-made plan cannot leave a service out (no rerender): the render is rejected whole,
    // naming the service whose section the complaint points at.
    const bad = planned(
      'global\n# cluster local, service shop, rule interlock\nbackend shop\n    BAD\n',
      'web.test/ web\nshop.test/ shop\n',
      [],
      [route({ service: 'shop', hosts: ['shop.test'] })],
    );
    const r = await applier.apply(bad);
    expect(r).toEqual({
      kind: 'rejected',
      command: 'haproxy -c -q -f haproxy.cfg',
      error: "[ALERT] : config : parsing [haproxy.cfg:4] : unknown keyword 'BAD'",
      services: ['local/shop'],
      repeated: false,
    });
    expect(await read('haproxy.cfg')).toBe('global\n');
    expect(await read('haproxy.hosts.map')).toBe('web.test/ web\n');
    expect(reloader).toHaveBeenCalledTimes(1);
    expect(await applier.apply(bad)).toMatchObject({ kind: 'rejected', repeated: true });
    expect(check).toHaveBeenCalledTimes(2);
    // Fixed: applied again.
    expect(await applier.apply(planned('global\n#fixed\n', 'web.test/ web\n'))).toMatchObject({ kind: 'applied' });
  });

  it('does not blame services refused for unrelated reasons when the complaint names none', async () => {
    const check = vi.fn(async () => ({ ok: false, output: 'something broke', command: 'x' }));
    const applier = new Applier({ env: {}, reload: true, missingBinary: 'fail', check });
    const r = await applier.apply(planned('global\n', '', ['local/bad']));
    expect(r).toMatchObject({ kind: 'rejected', services: [] });
  });

  it('after a restart, a render the proxy rejects leaves the file on disk as it was', async () => {
    await writeFile(path.join(dir, 'haproxy.cfg'), 'global\n# last good\n');
    await writeFile(path.join(dir, 'haproxy.hosts.map'), 'web.test/ web\n');
    const { check, reloader } = fakes();
    const fresh = new Applier({ env: {}, reload: true, missingBinary: 'fail', check, reloader });
    expect(await fresh.apply(planned('global\nBAD\n', 'x.test/ x\n'))).toMatchObject({ kind: 'rejected' });
    expect(await read('haproxy.cfg')).toBe('global\n# last good\n');
    expect(await read('haproxy.hosts.map')).toBe('web.test/ web\n');
    expect(reloader).not.toHaveBeenCalled();
  });

  it('retries a failed reload on the next pass even though the files no longer change', async () => {
    const failing = fakes(false);
    const applier = new Applier({
      env: {},
      reload: true,
      missingBinary: 'fail',
      check: failing.check,
      reloader: failing.reloader,
    });
    expect(await applier.apply(planned('global\n', ''))).toMatchObject({ kind: 'failed', stage: 'reload' });
    expect(await applier.apply(planned('global\n', ''))).toMatchObject({ kind: 'failed', stage: 'reload' });
    expect(failing.reloader).toHaveBeenCalledTimes(2);
  });

  it('with reloads off (--out-dir) writes and never reloads', async () => {
    const { check, reloader } = fakes();
    const applier = new Applier({ env: {}, reload: false, missingBinary: 'fail', check, reloader });
    expect(await applier.apply(planned('global\n', ''))).toMatchObject({ kind: 'applied', reload: undefined });
    expect(reloader).not.toHaveBeenCalled();
  });

  it('hands the checker the main file first, names relative to its folder', () => {
    expect(checkFiles(planned('m', 'x')).map((f) => f.name)).toEqual(['haproxy.cfg', 'haproxy.hosts.map']);
  });
});
