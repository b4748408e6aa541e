/**
 * One service the proxy rejects is left out alone: the rest is checked, written and reloaded.
 * The blame comes from the proxy's `file:line` (or a section name) mapped back to the route that
 * produced that section, else from bisection over the services; never from services refused for
 * unrelated reasons.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Applier } from '../../src/apply/apply.ts';
import type { ProxyCheck } from '../../src/apply/check-proxy.ts';
import { materialCheck } from '../../src/apply/material.ts';
import { type Config, configSchema } from '../../src/config/schema.ts';
import type { PlannedOutput } from '../../src/pipeline.ts';
import { itWithTools, selfSignedPair } from '../render/proxy-check.ts';
import { FakeSwarm, httpService } from '../watch/fake-swarm.ts';
import { planFromSwarm } from './plan-from-swarm.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'interlock-settle-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function configFor(kind: 'haproxy' | 'nginx'): Config {
  return configSchema.parse({
    clusters: { local: { nodeAddress: '127.0.0.1' } },
    rules: [{ kind: 'interlock', allowRawDirectives: true }],
    outputs: [{ kind, file: `${kind}.cfg`, http: { address: '127.0.0.1', port: 18080 } }],
  });
}

const plan = (config: Config, swarm: FakeSwarm) => planFromSwarm(config, swarm, dir);

function swarmWith(...extra: ReturnType<typeof httpService>[]): FakeSwarm {
  const swarm = new FakeSwarm();
  swarm.add(httpService('web', 18001));
  swarm.add(httpService('api', 18002));
  for (const s of extra) swarm.add(s);
  return swarm;
}

const read = (name: string) => readFile(path.join(dir, name), 'utf8');

describe('Applier: leaving out the service the proxy rejects', () => {
  it('maps the proxy line back to the service, leaves it out, applies the rest and says why', async () => {
    const config = configFor('haproxy');
    const first = await plan(config, swarmWith(httpService('shop', 18003, { 'interlock.backend_option': 'nonsense' })));
    const check = vi.fn(
      async (_o: unknown, files: readonly { name: string; content: string }[]): Promise<ProxyCheck> => {
        const lines = (files[0]?.content ?? '').split('\n');
        const at = lines.findIndex((l) => l.includes('option nonsense'));
        return at === -1
          ? { ok: true, output: 'Configuration file is valid', command: 'haproxy -c -f haproxy.cfg' }
          : {
              ok: false,
              output: `[ALERT] config : parsing [haproxy.cfg:${at + 1}] : unknown option 'nonsense'.`,
              command: 'haproxy -c -f haproxy.cfg',
            };
      },
    );
    const applier = new Applier({ env: {}, reload: false, missingBinary: 'fail', check });
    const r = await applier.apply(first);
    expect(r.kind).toBe('applied');
    if (r.kind !== 'applied') return;
    expect(r.leftOut?.map((l) => l.service)).toEqual(['local/shop']);
    expect(r.leftOut?.[0]?.diagnostic).toMatchObject({ cluster: 'local', service: 'shop', code: 'proxy-rejected' });
    expect(r.leftOut?.[0]?.diagnostic.message).toContain("unknown option 'nonsense'");
    const written = await read('haproxy.cfg');
    expect(written).not.toContain('nonsense');
    expect(written).toContain('service web');
    expect(written).toContain('service api');
    expect(r.planned?.refused).toContain('local/shop');

    // The next re-list with the same bad service: known, no new proxy run, nothing rewritten.
    check.mockClear();
    const again = await applier.apply(
      await plan(config, swarmWith(httpService('shop', 18003, { 'interlock.backend_option': 'nonsense' }))),
    );
    expect(again).toMatchObject({ kind: 'unchanged', leftOut: [{ service: 'local/shop' }] });
    expect(check).not.toHaveBeenCalled();

    // Another service changes meanwhile: applied, the bad one still left out.
    const moved = swarmWith(httpService('shop', 18003, { 'interlock.backend_option': 'nonsense' }));
    moved.add(httpService('api', 18012));
    const r2 = await applier.apply(await plan(config, moved));
    expect(r2.kind).toBe('applied');
    expect(await read('haproxy.cfg')).toContain('18012');
    expect(await read('haproxy.cfg')).not.toContain('nonsense');

    // The bad service is fixed: it comes back.
    const fixed = swarmWith(httpService('shop', 18003, { 'interlock.backend_option': 'forwardfor' }));
    const r3 = await applier.apply(await plan(config, fixed));
    expect(r3).toMatchObject({ kind: 'applied' });
    expect(r3.kind === 'applied' && r3.leftOut).toBeFalsy();
    expect(await read('haproxy.cfg')).toContain('service shop');
  });

  it('bisects when the complaint names no line, and blames only the culprit', async () => {
    const config = configFor('haproxy');
    const planned = await plan(
      config,
      swarmWith(
        httpService('shop', 18003),
        httpService('zoo', 18004),
        httpService('alpha', 18005),
        httpService('bad', 18006, { 'interlock.port': 'eighty' }),
      ),
    );
    expect(planned.refused).toEqual(['local/bad']);
    // A complaint with no line: "something in there is wrong" whenever shop's backend is present.
    const check = vi.fn(
      async (_o: unknown, files: readonly { name: string; content: string }[]): Promise<ProxyCheck> =>
        (files[0]?.content ?? '').includes('service shop')
          ? {
              ok: false,
              output: '[ALERT] config : Fatal errors found in configuration.',
              command: 'haproxy -c -f haproxy.cfg',
            }
          : { ok: true, output: '', command: 'haproxy -c -f haproxy.cfg' },
    );
    const applier = new Applier({ env: {}, reload: false, missingBinary: 'fail', check });
    const r = await applier.apply(planned);
    expect(r).toMatchObject({ kind: 'applied', leftOut: [{ service: 'local/shop', source: 'proxy' }] });
    const written = await read('haproxy.cfg');
    for (const s of ['web', 'api', 'zoo', 'alpha']) expect(written).toContain(`service ${s},`);
    expect(written).not.toContain('service shop');
    // 1 full + 1 with nobody + log2(5) steps + 1 final: bounded, not one check per service.
    expect(check.mock.calls.length).toBeLessThanOrEqual(7);
  });

  it('rejects the render whole, writing nothing, when no service is to blame (the template, the config)', async () => {
    const config = configFor('haproxy');
    const planned = await plan(config, swarmWith());
    const check = vi.fn(
      async (): Promise<ProxyCheck> => ({
        ok: false,
        output: '[ALERT] config : parsing [haproxy.cfg:3] : bad global',
        command: 'haproxy -c -f haproxy.cfg',
      }),
    );
    const applier = new Applier({ env: {}, reload: false, missingBinary: 'fail', check });
    expect(await applier.apply(planned)).toMatchObject({ kind: 'rejected', services: [] });
    await expect(read('haproxy.cfg')).rejects.toThrow();
  });

  it('leaves out services whose material check fails before the proxy sees them', async () => {
    const config = configFor('haproxy');
    const planned = await plan(config, swarmWith(httpService('shop', 18003)));
    const check = vi.fn(
      async (): Promise<ProxyCheck> => ({ ok: true, output: '', command: 'haproxy -c -f haproxy.cfg' }),
    );
    const material = vi.fn(async (p: PlannedOutput) =>
      p.routeList.some((r) => r.service === 'shop')
        ? [
            {
              severity: 'error' as const,
              code: 'tls-material',
              cluster: 'local',
              service: 'shop',
              message: 'no such file shop.pem',
            },
          ]
        : [],
    );
    const applier = new Applier({ env: {}, reload: false, missingBinary: 'fail', check, material });
    const r = await applier.apply(planned);
    expect(r).toMatchObject({ kind: 'applied', leftOut: [{ service: 'local/shop', source: 'material' }] });
    expect(await read('haproxy.cfg')).not.toContain('service shop');
    expect(check).toHaveBeenCalledTimes(1);
  });

  itWithTools(
    "with the real haproxy: an unknown raw option is left out alone, with the proxy's own reason",
    ['haproxy'],
    async () => {
      const config = configFor('haproxy');
      const planned = await plan(
        config,
        swarmWith(httpService('shop', 18003, { 'interlock.backend_option': 'nonsense' })),
      );
      const applier = new Applier({ env: process.env, reload: false, missingBinary: 'fail' });
      const r = await applier.apply(planned);
      expect(r.kind).toBe('applied');
      if (r.kind !== 'applied') return;
      expect(r.leftOut?.map((l) => l.service)).toEqual(['local/shop']);
      expect(r.leftOut?.[0]?.reason).toMatch(/unknown option 'nonsense'/);
      expect(r.leftOut?.[0]?.line?.text).toBe('option nonsense');
      const written = await read('haproxy.cfg');
      expect(written).not.toContain('nonsense');
      expect(written).toContain('service web,');
    },
  );

  for (const kind of ['haproxy', 'nginx'] as const) {
    itWithTools(
      `with the real ${kind}: a host with no <host>.pem under HTTPS is left out alone; the others are served`,
      [kind, 'openssl'],
      async () => {
        const config = configSchema.parse({
          clusters: { local: { nodeAddress: '127.0.0.1' } },
          outputs: [
            {
              kind,
              file: `${kind}.cfg`,
              http: { address: '127.0.0.1', port: 18080 },
              https: { address: '127.0.0.1', port: 18443, certDir: 'certs' },
            },
          ],
        });
        await mkdir(path.join(dir, 'certs'));
        for (const host of ['web.test', 'api.test']) {
          const pair = selfSignedPair(host);
          await writeFile(path.join(dir, 'certs', `${host}.pem`), `${pair.cert}${pair.key}`);
        }
        const planned = await plan(config, swarmWith(httpService('shop', 18003)));
        const applier = new Applier({
          env: process.env,
          reload: false,
          missingBinary: 'fail',
          material: materialCheck(dir),
        });
        const r = await applier.apply(planned);
        expect(r).toMatchObject({ kind: 'applied', leftOut: [{ service: 'local/shop', source: 'material' }] });
        if (r.kind !== 'applied') return;
        expect(r.leftOut?.[0]?.diagnostic.message).toContain('shop.test.pem');
        const written = await read(`${kind}.cfg`);
        expect(written).toContain('service web,');
        expect(written).not.toContain('service shop,');
      },
    );
  }
});
