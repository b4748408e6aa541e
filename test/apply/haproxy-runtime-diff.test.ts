import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseHaproxyConfig, planHaproxyRuntime, type RuntimePlan } from '../../src/apply/haproxy-runtime-diff.ts';

const cfg = (opts: { map?: string; servers?: string[]; backendLines?: string[]; comment?: string } = {}) =>
  [
    `# ${opts.comment ?? 'summary: 3 server(s)'}`,
    'global',
    '    master-worker',
    'frontend http',
    '    bind 127.0.0.1:80',
    `    http-request set-var(txn.backend) var(txn.route_key),map_beg(${opts.map ?? 'haproxy.hosts.aaa.map'})`,
    '    use_backend %[var(txn.backend)] if { var(txn.backend) -m found }',
    '',
    '# cluster local, service web',
    'backend web__local__0',
    '    mode http',
    ...(opts.backendLines ?? ['    balance roundrobin']),
    ...(opts.servers ?? ['    server web-1 127.0.0.1:30001', '    server web-2 127.0.0.1:30002']).map((s) =>
      s.startsWith(' ') ? s : `    ${s}`,
    ),
    '',
    'backend interlock_tls_terminate',
    '    mode tcp',
    '    server terminate abns@interlock-https-443 send-proxy-v2',
    '',
  ].join('\n');

const MAP = '# generated\nweb.test/ web__local__0\n';

function runtime(plan: RuntimePlan) {
  if (plan.kind !== 'runtime') throw new Error(`expected a runtime plan, got reload: ${plan.reason}`);
  return plan;
}

describe('planHaproxyRuntime', () => {
  it('adds servers at run time, with their parameters, before anything is removed', () => {
    const plan = runtime(
      planHaproxyRuntime(
        { config: cfg(), map: MAP },
        {
          config: cfg({
            comment: 'summary: 2 server(s)',
            servers: ['server web-2 127.0.0.1:30002', 'server web-3 [::1]:30003 check inter 5000ms'],
          }),
          map: MAP,
        },
      ),
    );
    expect(plan.ops).toEqual([
      {
        op: 'add-server',
        backend: 'web__local__0',
        server: { name: 'web-3', address: '::1', port: 30003, params: 'check inter 5000ms' },
        check: true,
      },
      { op: 'del-server', backend: 'web__local__0', server: 'web-1' },
    ]);
    expect([...(plan.expected.backends.get('web__local__0')?.keys() ?? [])]).toEqual(['web-2', 'web-3']);
    // The backend whose server is an abstract socket is not compared.
    expect(plan.expected.backends.has('interlock_tls_terminate')).toBe(false);
  });

  it('moves a server to its new address and port in place', () => {
    const plan = runtime(
      planHaproxyRuntime(
        { config: cfg(), map: MAP },
        { config: cfg({ servers: ['server web-1 127.0.0.1:30011', 'server web-2 127.0.0.1:30002'] }), map: MAP },
      ),
    );
    expect(plan.ops).toEqual([
      {
        op: 'set-addr',
        backend: 'web__local__0',
        server: { name: 'web-1', address: '127.0.0.1', port: 30011, params: '' },
      },
    ]);
  });

  it('adds, changes and removes host-map entries even though the map file is renamed', () => {
    const plan = runtime(
      planHaproxyRuntime(
        { config: cfg(), map: `${MAP}old.test/ web__local__0\nx.test/ web__local__0\n` },
        {
          config: cfg({ map: 'haproxy.hosts.bbb.map' }),
          map: `${MAP}new.test/ web__local__0\nx.test/ interlock_no_route\n`,
        },
      ),
    );
    expect(plan.ops).toEqual([
      { op: 'map-add', key: 'new.test/', value: 'web__local__0' },
      { op: 'map-set', key: 'x.test/', value: 'interlock_no_route' },
      { op: 'map-del', key: 'old.test/' },
    ]);
    expect(plan.expected.map?.get('new.test/')).toBe('web__local__0');
  });

  it('has nothing to do when only comments changed', () => {
    expect(
      runtime(planHaproxyRuntime({ config: cfg(), map: MAP }, { config: cfg({ comment: 'x' }), map: MAP })).ops,
    ).toEqual([]);
  });

  it.each([
    ['a backend option', { backendLines: ['    balance roundrobin', '    timeout tunnel 1h'] }, 'beyond servers'],
    ['a new backend', {}, 'beyond servers'],
    [
      "a server's parameters",
      { servers: ['server web-1 127.0.0.1:30001 check', 'server web-2 127.0.0.1:30002'] },
      'parameters of server web__local__0/web-1',
    ],
  ])('reloads for %s', (_what, next, reason) => {
    const config = _what === 'a new backend' ? `${cfg()}\nbackend api__local__0\n    mode http\n` : cfg(next);
    const plan = planHaproxyRuntime({ config: cfg(), map: MAP }, { config, map: MAP });
    expect(plan).toMatchObject({ kind: 'reload' });
    expect(plan.kind === 'reload' && plan.reason).toContain(reason);
  });

  it('reloads sticky backends when their servers change (a runtime-added server cannot carry a cookie)', () => {
    const sticky = ['    balance roundrobin', '    cookie JSESSIONID prefix'];
    const plan = planHaproxyRuntime(
      { config: cfg({ backendLines: sticky, servers: ['server web-1 127.0.0.1:30001 cookie web-1'] }), map: MAP },
      {
        config: cfg({
          backendLines: sticky,
          servers: ['server web-1 127.0.0.1:30001 cookie web-1', 'server web-2 127.0.0.1:30002 cookie web-2'],
        }),
        map: MAP,
      },
    );
    expect(plan).toEqual({
      kind: 'reload',
      reason: 'backend web__local__0 uses cookie stickiness, and a server added at run time cannot carry its `cookie`',
    });
  });

  it('takes servers at run time in a hashing backend only with hash-type consistent', () => {
    const two = ['server web-1 127.0.0.1:30001', 'server web-2 127.0.0.1:30002', 'server web-3 127.0.0.1:30003'];
    const staticHash = ['    balance source'];
    const stat = planHaproxyRuntime(
      { config: cfg({ backendLines: staticHash }), map: MAP },
      { config: cfg({ backendLines: staticHash, servers: two }), map: MAP },
    );
    expect(stat.kind === 'reload' && stat.reason).toContain('without `hash-type consistent`');
    const consistent = ['    balance source', '    hash-type consistent'];
    expect(
      planHaproxyRuntime(
        { config: cfg({ backendLines: consistent }), map: MAP },
        { config: cfg({ backendLines: consistent, servers: two }), map: MAP },
      ).kind,
    ).toBe('runtime');
  });

  it('reloads when a map entry holds what the CLI cannot pass', () => {
    const plan = planHaproxyRuntime(
      { config: cfg(), map: MAP },
      { config: cfg(), map: `${MAP}a;b.test/ web__local__0\n` },
    );
    expect(plan.kind === 'reload' && plan.reason).toContain('characters the CLI cannot pass');
  });

  it('reloads when the old map cannot be read', () => {
    expect(planHaproxyRuntime({ config: cfg() }, { config: cfg(), map: MAP })).toEqual({
      kind: 'reload',
      reason: 'the host map cannot be compared',
    });
  });
});

describe('parseHaproxyConfig', () => {
  it('keeps server lines it cannot read in the skeleton, so a change to them reloads', () => {
    const parsed = parseHaproxyConfig(cfg());
    expect(parsed.skeleton).toContain('server terminate abns@interlock-https-443 send-proxy-v2');
    expect(parsed.skeleton).not.toContain('web-1');
    expect(parsed.backends.get('interlock_tls_terminate')?.opaque).toBe(true);
    expect(parsed.mapName).toBe('haproxy.hosts.aaa.map');
  });
});

describe('planHaproxyRuntime compares only what differs', () => {
  // The plan leaves out the sections (and map lines) both files share at the start and at the
  // end; `whole: true` cuts everything. Both must give the same plan for any pair of renders.
  interface Model {
    global: string[];
    map: string;
    backends: { name: string; lines: string[]; servers: string[] }[];
    comments: Record<number, string>;
    entries: Record<string, string>;
  }
  const text = (m: Model) =>
    [
      '# Generated',
      'global',
      ...m.global.map((l) => `    ${l}`),
      'frontend http',
      '    bind 127.0.0.1:80',
      `    http-request set-var(txn.backend) var(txn.route_key),map_beg(${m.map})`,
      '',
      ...m.backends.flatMap((b, i) => [
        ...(m.comments[i] ? [`# ${m.comments[i]}`] : []),
        `backend ${b.name}`,
        ...b.lines.map((l) => `    ${l}`),
        ...b.servers.map((s) => `    server ${s}`),
        '',
      ]),
    ].join('\n');
  const mapText = (m: Model) =>
    `${Object.keys(m.entries)
      .sort()
      .map((k) => `${k} ${m.entries[k]}`)
      .join('\n')}\n`;
  const server = fc
    .tuple(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 4 }), fc.constantFrom('', ' check', ' weight 2'))
    .map(([n, host, params]) => `s${n} 10.0.0.${host}:${8000 + n}${params}`);
  const backend = fc.record({
    name: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'),
    lines: fc.subarray(['mode http', 'balance roundrobin', 'cookie SRV insert', 'balance source']),
    servers: fc.uniqueArray(server, { maxLength: 4, selector: (s) => s.split(' ')[0] }),
  });
  const model = fc.record({
    global: fc.subarray(['master-worker', 'maxconn 1000', 'log stdout local0']),
    map: fc.constantFrom('haproxy.hosts.aaa.map', 'haproxy.hosts.bbb.map'),
    backends: fc.uniqueArray(backend, { minLength: 1, maxLength: 8, selector: (b) => b.name }),
    comments: fc.dictionary(fc.constantFrom('0', '2', '5'), fc.constantFrom('cluster x', 'service y')),
    entries: fc.dictionary(
      fc.constantFrom('a.test/', 'b.test/', 'c.test/', 'd.test/', 'e.test/'),
      fc.constantFrom('a', 'b', 'c', '301:https://x', 'zz'),
    ),
  }) as fc.Arbitrary<Model>;
  const edit = fc.oneof(
    fc.record({ kind: fc.constant('server' as const), at: fc.nat(), server }),
    fc.record({ kind: fc.constant('drop' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('map' as const) }),
    fc.record({
      kind: fc.constant('line' as const),
      at: fc.nat(),
      line: fc.constantFrom('balance leastconn', 'mode tcp'),
    }),
    fc.record({ kind: fc.constant('global' as const), line: fc.constantFrom('nbthread 2', 'maxconn 9') }),
    fc.record({
      kind: fc.constant('entry' as const),
      key: fc.constantFrom('a.test/', 'f.test/'),
      value: fc.constantFrom('a', 'h', ''),
    }),
    fc.record({ kind: fc.constant('comment' as const), at: fc.nat() }),
  );
  const apply = (m: Model, edits: ReadonlyArray<Record<string, unknown>>) => {
    const n: Model = structuredClone(m);
    for (const e of edits) {
      const b = n.backends[((e.at as number | undefined) ?? 0) % n.backends.length] as Model['backends'][number];
      if (e.kind === 'server') {
        const name = (e.server as string).split(' ')[0];
        b.servers = [...b.servers.filter((s) => s.split(' ')[0] !== name), e.server as string];
      } else if (e.kind === 'drop') b.servers = b.servers.slice(1);
      else if (e.kind === 'map') n.map = n.map.endsWith('aaa.map') ? 'haproxy.hosts.ccc.map' : 'haproxy.hosts.aaa.map';
      else if (e.kind === 'line') b.lines = [...b.lines, e.line as string];
      else if (e.kind === 'global') n.global = [...n.global, e.line as string];
      else if (e.kind === 'entry') {
        if (e.value === '') delete n.entries[e.key as string];
        else n.entries[e.key as string] = e.value as string;
      } else if (e.kind === 'comment') n.comments[(e.at as number) % 7] = 'moved';
    }
    return n;
  };

  it('gives the plan a comparison of the whole files gives', () => {
    fc.assert(
      fc.property(model, fc.array(edit, { minLength: 0, maxLength: 4 }), (m, edits) => {
        const next = apply(m, edits as Array<Record<string, unknown>>);
        const a = { config: text(m), map: mapText(m) };
        const b = { config: text(next), map: mapText(next) };
        const fast = planHaproxyRuntime(a, b);
        const whole = planHaproxyRuntime(a, b, { whole: true });
        expect(fast.kind).toBe(whole.kind);
        if (fast.kind === 'reload' || whole.kind === 'reload') {
          expect(fast).toEqual(whole);
          return;
        }
        expect(fast.ops).toEqual(whole.ops);
        expect(fast.expected).toEqual(whole.expected);
        // `recheck` looks at the servers of the backends that changed only, which are the same.
        expect(fast.recheck).toEqual(whole.recheck);
      }),
      { numRuns: 600 },
    );
  });
});
