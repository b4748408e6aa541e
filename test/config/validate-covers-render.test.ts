/**
 * The rule behind `validate`: whatever `render` would refuse about the config, `validate` refuses
 * first. Generated configs (listen addresses, node addresses, ports, file names, runDir, stats
 * paths, made of plain and hostile characters) go through the schema and the semantic checks;
 * every config they accept must render the demo snapshot without an error about the config: no
 * RenderError, and no diagnostic from the cluster mapping about a config value.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseSnapshotText } from '../../src/cluster/snapshot-map.ts';
import { mapSnapshots } from '../../src/cluster/sources.ts';
import { checkConfig } from '../../src/config/check.ts';
import { configSchema } from '../../src/config/schema.ts';
import { hasErrors } from '../../src/diagnostics.ts';
import { planRender } from '../../src/pipeline.ts';
import { ROOT } from '../helpers/exec.ts';
import { templateTexts } from '../helpers/render.ts';

const demo = parseSnapshotText(readFileSync(path.join(ROOT, 'examples', 'swarm-demo.snapshot.json'), 'utf8'), 'demo');

/** Text that is mostly valid, sometimes a known trap, sometimes hostile noise. */
const word = (valid: readonly string[], traps: readonly string[]) =>
  fc.oneof(
    { arbitrary: fc.constantFrom(...valid), weight: 20 },
    { arbitrary: fc.constantFrom(...traps), weight: 2 },
    {
      arbitrary: fc.string({
        unit: fc.constantFrom('a', '1', '0', '.', ':', '-', '_', ' ', '!', '$', '"', '\n', '[', ']', '*', '/', ';'),
        maxLength: 16,
      }),
      weight: 1,
    },
  );

const address = word(
  ['0.0.0.0', '127.0.0.1', '::', '[::1]', '*', 'proxy.internal'],
  ['127.00.0.1', '1.2.3', 'bad address!'],
);
const file = (main: string) => word([main], ['a b/proxy.cfg', 'out/x$y.conf', 'out/"q".cfg', 'out/new\nline.cfg']);
const port = fc.oneof(
  { arbitrary: fc.constantFrom(80, 8080, 8081, 65535), weight: 20 },
  fc.integer({ min: -5, max: 70_000 }),
);

const configs = fc.record({
  nodeAddress: fc.option(word(['127.0.0.1', '10.0.0.1', 'node-1'], ['127.00.0.1', '300.1.1.1', 'a b']), {
    nil: undefined,
  }),
  haproxy: fc.record({
    file: file('out/haproxy.cfg'),
    http: fc.record({ address, port }),
    stats: fc.option(fc.record({ address, port, path: word(['/stats'], ['/s t', 'stats']) }), { nil: undefined }),
  }),
  nginx: fc.record({
    file: file('out/nginx.conf'),
    http: fc.record({ address, port }),
    runDir: fc.option(word(['run', '/tmp/interlock-run'], ['a b', 'x$y']), { nil: undefined }),
  }),
});

describe('validate covers render', () => {
  it('every generated config that validate accepts renders the demo snapshot without a config error', () => {
    let accepted = 0;
    fc.assert(
      fc.property(configs, (c) => {
        const input = {
          clusters: { local: c.nodeAddress === undefined ? {} : { nodeAddress: c.nodeAddress } },
          rules: [{ kind: 'interlock' }, { kind: 'docker-lb' }],
          outputs: [
            { kind: 'haproxy', ...c.haproxy, ...(c.haproxy.stats ? {} : { stats: undefined }) },
            { kind: 'nginx', ...c.nginx, ...(c.nginx.runDir === undefined ? { runDir: undefined } : {}) },
          ],
        };
        const parsed = configSchema.safeParse(JSON.parse(JSON.stringify(input)));
        if (!parsed.success) return;
        const checked = checkConfig(parsed.data, {
          configDir: '/cfg',
          displayFile: 'interlock.config.yaml',
          exists: () => true,
          locate: () => undefined,
        });
        if (hasErrors(checked)) return;
        accepted++;
        const loaded = mapSnapshots([{ cluster: 'local', doc: demo }], parsed.data);
        // A config value the mapping refuses (nodeAddress) names the config, not a service.
        expect(loaded.diagnostics.filter((d) => d.severity === 'error' && !d.service)).toEqual([]);
        expect(() =>
          planRender(parsed.data, loaded.states, { configDir: '/cfg', templates: templateTexts() }),
        ).not.toThrow();
      }),
      { numRuns: 600, seed: 9 },
    );
    // The generator reaches both sides of the rule.
    expect(accepted).toBeGreaterThan(20);
  });
});
