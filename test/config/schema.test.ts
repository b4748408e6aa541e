import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkConfig, haproxyMapFile } from '../../src/config/check.ts';
import { parseDuration } from '../../src/config/duration.ts';
import { type Config, configSchema, dataConfigSchema, jsonSchema } from '../../src/config/schema.ts';
import { ROOT } from '../helpers/exec.ts';

function parse(input: unknown): Config {
  return configSchema.parse(input);
}

function check(input: unknown, existing: string[] = []) {
  return checkConfig(parse(input), {
    configDir: '/cfg',
    displayFile: 'interlock.config.ts',
    exists: (p) => existing.includes(p),
    locate: () => undefined,
  }).map((d) => `${d.severity} ${d.code} ${d.path}`);
}

describe('durations', () => {
  it.each([
    ['500ms', 500],
    ['10s', 10_000],
    ['1m', 60_000],
    ['1.5s', 1500],
    ['2h', 7_200_000],
    [250, 250],
  ] as const)('%s is %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });
  it.each(['', '10', 'soon', '1 s', '-1s', '1d', '1e3ms'])('%j is not a duration', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });
  it('rejects negative and non-finite numbers', () => {
    expect(parseDuration(-1)).toBeUndefined();
    expect(parseDuration(Number.NaN)).toBeUndefined();
  });
});

describe('schema', () => {
  const minimal = { clusters: { local: {} }, outputs: [{ kind: 'haproxy', file: 'out/haproxy.cfg' }] };

  it('fills defaults', () => {
    const c = parse(minimal);
    const out = c.outputs[0];
    expect(out?.kind).toBe('haproxy');
    if (out?.kind !== 'haproxy') throw new Error('unreachable');
    expect(out.http).toEqual({ address: '0.0.0.0', port: 80 });
    expect(out.maxconn).toBe(4096);
    expect(c.rules).toBeUndefined();
  });

  it('defaults TLS verification on', () => {
    const c = parse({
      clusters: { x: { endpoint: { kind: 'tcp', host: 'tcp://h:2376', tls: { ca: 'ca.pem' } } } },
      outputs: [],
    });
    const endpoint = c.clusters.x?.endpoint;
    expect(endpoint?.kind === 'tcp' && endpoint.tls?.verify).toBe(true);
  });

  it('rejects unknown keys at every level', () => {
    const r = configSchema.safeParse({ ...minimal, extra: 1, clusters: { local: { nodeAdress: 'x' } } });
    expect(r.success).toBe(false);
    expect(r.error?.issues.map((i) => i.code)).toEqual(['unrecognized_keys', 'unrecognized_keys']);
  });

  it.each([0, 65536, 80.5])('rejects port %d', (port) => {
    expect(
      configSchema.safeParse({ ...minimal, outputs: [{ kind: 'nginx', file: 'n.conf', http: { port } }] }).success,
    ).toBe(false);
  });

  it('accepts custom rules only in code configs', () => {
    const custom = { ...minimal, rules: [{ kind: 'custom', name: 'mine', routes: () => null }] };
    expect(configSchema.safeParse(custom).success).toBe(true);
    expect(dataConfigSchema.safeParse(custom).success).toBe(false);
  });

  it.each([
    [{ kind: 'tcp', host: 'http://h:2376' }],
    [{ kind: 'ssh', host: 'tcp://h' }],
    [{ kind: 'socket' }],
    [{ kind: 'context', name: '' }],
  ])('rejects endpoint %j', (endpoint) => {
    expect(configSchema.safeParse({ ...minimal, clusters: { a: { endpoint } } }).success).toBe(false);
  });
});

describe('semantic checks', () => {
  const base = { clusters: { local: {} }, outputs: [{ kind: 'haproxy', file: 'out/haproxy.cfg' }] };

  it('finds nothing wrong with a plain config', () => {
    expect(check(base)).toEqual([]);
  });

  it('flags two outputs writing one file, also through the HAProxy map', () => {
    expect(
      check({
        ...base,
        outputs: [
          { kind: 'haproxy', file: 'out/haproxy.cfg', http: { port: 80 } },
          { kind: 'nginx', file: './out/../out/haproxy.hosts.map', http: { port: 81 } },
        ],
      }),
    ).toEqual(['error duplicate-file outputs[1].file']);
    // The map is named by its content hash (issue 9): `haproxy.hosts.<12 hex>.map`.
    expect(haproxyMapFile('/x/haproxy.cfg', '0123456789ab')).toBe(path.join('/x', 'haproxy.hosts.0123456789ab.map'));
  });

  it('flags outputs whose map names could meet, in either order; other folders are fine', () => {
    const two = (a: object, b: object) => check({ ...base, outputs: [a, b] });
    const haproxy = (file: string, port: number) => ({ kind: 'haproxy', file, http: { port } });
    const nginx = (file: string, port: number) => ({ kind: 'nginx', file, http: { port } });
    // A file that is one of the map's possible names, before or after the HAProxy output.
    expect(two(haproxy('out/haproxy.cfg', 80), nginx('out/haproxy.hosts.0123456789ab.map', 81))).toEqual([
      'error duplicate-file outputs[1].file',
    ]);
    expect(two(nginx('out/haproxy.hosts.map', 81), haproxy('out/haproxy.cfg', 80))).toEqual([
      'error duplicate-file outputs[1].file',
    ]);
    // Same folder and base name: each would remove the other's maps.
    expect(two(haproxy('out/haproxy.cfg', 80), haproxy('out/haproxy', 81))).toEqual([
      'error duplicate-file outputs[1].file',
    ]);
    expect(two(haproxy('out/a/haproxy.cfg', 80), haproxy('out/b/haproxy.cfg', 81))).toEqual([]);
    expect(two(haproxy('out/edge.cfg', 80), haproxy('out/haproxy.cfg', 81))).toEqual([]);
    expect(two(haproxy('out/haproxy.cfg', 80), nginx('out/haproxy.hosts.txt', 81))).toEqual([]);
  });

  it('flags unknown clusters, duplicate endpoints and unused clusters', () => {
    expect(
      check({
        clusters: {
          a: { endpoint: { kind: 'context', name: 'prod' } },
          b: { endpoint: { kind: 'context', name: 'prod' } },
        },
        outputs: [{ kind: 'log', clusters: ['a', 'c'] }],
      }),
    ).toEqual([
      'error duplicate-endpoint clusters.b.endpoint',
      'error unknown-cluster outputs[0].clusters[1]',
      'warning unused-cluster clusters.b',
    ]);
  });

  it('flags missing templates and TLS files, accepts existing ones', () => {
    const cfg = {
      clusters: {
        r: { endpoint: { kind: 'tcp', host: 'tcp://h:2376', tls: { ca: 'ca.pem', cert: 'c.pem', key: 'k.pem' } } },
      },
      outputs: [{ kind: 'haproxy', file: 'h.cfg', template: 'my.mustache' }],
    };
    expect(check(cfg)).toEqual([
      'error missing-file clusters.r.endpoint.tls.ca',
      'error missing-file clusters.r.endpoint.tls.cert',
      'error missing-file clusters.r.endpoint.tls.key',
      'error missing-template outputs[0].template',
    ]);
    expect(check(cfg, ['/cfg/ca.pem', '/cfg/c.pem', '/cfg/k.pem', '/cfg/my.mustache'])).toEqual([]);
  });

  it('says credentials in an endpoint belong in a file or the environment, without printing them', () => {
    const all = (input: unknown) =>
      checkConfig(parse(input), {
        configDir: '/cfg',
        displayFile: 'interlock.config.ts',
        exists: () => true,
        locate: () => undefined,
      });
    const tcp = all({
      ...base,
      clusters: { local: { endpoint: { kind: 'tcp', host: 'tcp://admin:hunter2@h:2375' } } },
    });
    expect(tcp.map((d) => `${d.severity} ${d.code} ${d.path}`)).toEqual([
      'error endpoint-credentials clusters.local.endpoint.host',
      'warning no-tls clusters.local.endpoint.host',
    ]);
    const ssh = all({
      ...base,
      clusters: {
        a: { endpoint: { kind: 'ssh', host: 'ssh://deploy:hunter2@h' } },
        b: { endpoint: { kind: 'ssh', host: 'ssh://deploy:hunter2@h' } },
      },
    });
    expect(ssh.map((d) => `${d.severity} ${d.code} ${d.path}`)).toEqual([
      'warning endpoint-credentials clusters.a.endpoint.host',
      'error duplicate-endpoint clusters.b.endpoint',
      'warning endpoint-credentials clusters.b.endpoint.host',
    ]);
    for (const d of [...tcp, ...ssh]) expect(`${d.message} ${d.fix}`).not.toContain('hunter2');
    expect(ssh[0]?.fix).toMatch(/identityFile|ssh agent/);
    expect(ssh[0]?.message).toContain('ssh://deploy:***@h');
  });

  it('warns about an unencrypted or unverified engine, and a half client certificate', () => {
    expect(check({ ...base, clusters: { local: { endpoint: { kind: 'tcp', host: 'tcp://h:2375' } } } })).toEqual([
      'warning no-tls clusters.local.endpoint.host',
    ]);
    expect(
      check(
        {
          ...base,
          clusters: {
            local: { endpoint: { kind: 'tcp', host: 'tcp://h:2376', tls: { cert: 'c.pem', verify: false } } },
          },
        },
        ['/cfg/c.pem'],
      ),
    ).toEqual([
      'warning tls-no-verify clusters.local.endpoint.tls.verify',
      'error tls-pair clusters.local.endpoint.tls.key',
    ]);
  });

  it('flags port clashes inside one output, warns across outputs', () => {
    expect(
      check({
        ...base,
        outputs: [
          { kind: 'haproxy', file: 'a.cfg', http: { port: 8080 }, stats: { port: 8080 } },
          { kind: 'nginx', file: 'n.conf', http: { address: '0.0.0.0', port: 8080 } },
        ],
      }),
    ).toEqual(['error port-conflict outputs[0].stats.port', 'warning port-shared outputs[1].http.port']);
  });

  it('checks debounce order, carbon interval and protocol/port agreement', () => {
    expect(
      check({
        ...base,
        outputs: [...base.outputs, { kind: 'carbon', address: 'c:2003', protocol: 'pickle', interval: '500ms' }],
        watch: { debounce: { min: '2s', max: '1s' }, reconcile: '100ms' },
      }),
    ).toEqual([
      'error interval-too-short outputs[1].interval',
      'warning protocol-port outputs[1].protocol',
      'error debounce-order watch.debounce',
      'warning reconcile-too-short watch.reconcile',
    ]);
    expect(
      check({ ...base, outputs: [...base.outputs, { kind: 'carbon', address: 'c:2003', protocol: 'pickle' }] }),
    ).toEqual(['warning protocol-port outputs[1].protocol']);
  });

  it('flags repeated rules and warns when raw directives are allowed', () => {
    expect(check({ ...base, rules: [{ kind: 'interlock' }, { kind: 'interlock', allowRawDirectives: true }] })).toEqual(
      ['error duplicate-rule rules[1]', 'warning raw-directives rules[1].allowRawDirectives'],
    );
  });

  it('warns when broad wildcards are allowed, on any kind of rule', () => {
    expect(
      check({
        ...base,
        rules: [
          { kind: 'interlock', allowBroadWildcards: true },
          { kind: 'docker-lb', allowBroadWildcards: false },
          { kind: 'custom', name: 'x', routes: () => null, allowBroadWildcards: true },
        ],
      }),
    ).toEqual([
      'warning broad-wildcards rules[0].allowBroadWildcards',
      'warning broad-wildcards rules[2].allowBroadWildcards',
    ]);
  });

  it('needs a cluster for a docker-signal reload when several are declared', () => {
    expect(
      check({
        clusters: { a: {}, b: { endpoint: { kind: 'context', name: 'b' } } },
        outputs: [{ kind: 'haproxy', file: 'h.cfg', reload: { kind: 'docker-signal', label: 'role=proxy' } }],
      }),
    ).toEqual(['error ambiguous-cluster outputs[0].reload']);
  });

  it('needs {file} in a validate command', () => {
    expect(
      check({
        ...base,
        outputs: [{ kind: 'haproxy', file: 'h.cfg', validate: { kind: 'command', command: ['true'] } }],
      }),
    ).toEqual(['error validate-no-file outputs[0].validate.command']);
  });
});

describe('JSON Schema', () => {
  it('is committed and up to date (regenerate with `npm run schema`)', () => {
    const committed = readFileSync(path.join(ROOT, 'schema', 'interlock.schema.json'), 'utf8');
    expect(JSON.parse(committed)).toEqual(jsonSchema());
  });

  it('describes outputs as a union on kind and has no custom rules', () => {
    const text = JSON.stringify(jsonSchema());
    for (const kind of ['haproxy', 'nginx', 'carbon', 'log', 'interlock', 'docker-lb'])
      expect(text).toContain(`"const":"${kind}"`);
    expect(text).not.toContain('"const":"custom"');
  });
});

describe('validate refuses what render would refuse', () => {
  const base = { clusters: { local: {} }, outputs: [{ kind: 'haproxy', file: 'h.cfg' }] };
  it.each([
    [
      'a listen address with a space',
      { ...base, outputs: [{ kind: 'haproxy', file: 'h.cfg', http: { address: 'bad address!' } }] },
      'outputs.0.http.address',
    ],
    [
      'an HTTPS listen address',
      { ...base, outputs: [{ kind: 'nginx', file: 'n.conf', https: { address: '1.2.3', certDir: 'c' } }] },
      'outputs.0.https.address',
    ],
    [
      'a nodeAddress with a zero-padded octet',
      { ...base, clusters: { local: { nodeAddress: '127.00.0.1' } } },
      'clusters.local.nodeAddress',
    ],
    [
      'a nodeAddress that is no address',
      { ...base, clusters: { local: { nodeAddress: 'a b' } } },
      'clusters.local.nodeAddress',
    ],
  ])('%s', (_what, input, where) => {
    const r = configSchema.safeParse(input);
    expect(r.success).toBe(false);
    expect(r.error?.issues.map((i) => i.path.join('.'))).toContain(where);
  });

  it.each(['0.0.0.0', '::', '[::1]', '*', '127.0.0.1', 'proxy.internal'])(
    'accepts the listen address %s',
    (address) => {
      expect(
        configSchema.safeParse({ ...base, outputs: [{ kind: 'haproxy', file: 'h.cfg', http: { address } }] }).success,
      ).toBe(true);
    },
  );
});
