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
