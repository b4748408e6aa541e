import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { ServiceState } from '../../src/cluster/model.ts';
import { mapSnapshot, parseSnapshotText } from '../../src/cluster/snapshot-map.ts';
import { dockerLbDialect } from '../../src/routes/dialect-docker-lb.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function svc(labels: Record<string, string>): ServiceState {
  return { id: 'id1', name: 'app', mode: 'replicated', labels, networks: [], vips: [], ingressPorts: [], tasks: [] };
}

const base = { 'com.docker.lb.hosts': 'app.example.com', 'com.docker.lb.port': '8080' };

function run(labels: Record<string, string>, options: { prefix?: string; cluster?: string } = {}) {
  return dockerLbDialect(svc(labels), {
    cluster: options.cluster ?? 'local',
    ...(options.prefix ? { prefix: options.prefix } : {}),
  });
}

function specOf(labels: Record<string, string>) {
  const r = run(labels);
  expect(r.diagnostics).toEqual([]);
  expect(r.specs).toHaveLength(1);
  return r.specs[0]?.spec;
}

describe('docker-lb dialect on the swarm-demo services', () => {
  const doc = parseSnapshotText(readFileSync(path.join(ROOT, 'examples/swarm-demo.snapshot.json'), 'utf8'), 'demo');
  const { state } = mapSnapshot(doc, { cluster: 'local' });

  it('reads blog only, with its hosts, sticky cookie and redirect', () => {
    const results = state.services.map((s) => [s.name, dockerLbDialect(s, { cluster: 'local' })] as const);
    expect(results.filter(([, r]) => r.matched).map(([name]) => name)).toEqual(['blog']);
    expect(results.flatMap(([, r]) => r.diagnostics)).toEqual([]);
    expect(results.find(([name]) => name === 'blog')?.[1].specs.map((s) => s.spec)).toEqual([
      {
        hosts: ['blog.example.com', 'news.example.com'],
        port: 80,
        network: 'appnet',
        stickyCookie: 'SESSION',
        redirects: [{ from: 'http://blog.example.com', to: 'https://blog.example.com' }],
      },
    ]);
  });
});

describe('docker-lb dialect: lists', () => {
  it('reads hosts as a comma list, spaces around items allowed, duplicates dropped', () => {
    expect(specOf({ ...base, 'com.docker.lb.hosts': 'Example.com, test.com,example.com' })?.hosts).toEqual([
      'example.com',
      'test.com',
    ]);
  });

  // One trailing separator is tolerated (Docker's own examples end lists with one); an empty item
  // anywhere else, or two trailing ones, is a typo worth reporting.
  it.each([
    ['a.com,', ['a.com']],
    ['a.com, b.com, ', ['a.com', 'b.com']],
  ])('ignores one trailing separator: hosts=%j', (hosts, expected) => {
    expect(specOf({ ...base, 'com.docker.lb.hosts': hosts })?.hosts).toEqual(expected);
  });

  it.each(['a.com,,b.com', 'a.com,,', ',', ',a.com', '', 'a.com b.com', 'a.com,\tb.com', 'a.com;b.com'])(
    'refuses hosts=%j',
    (hosts) => {
      const r = run({ ...base, 'com.docker.lb.hosts': hosts });
      expect(r.specs).toEqual([]);
      expect(r.diagnostics.map((d) => [d.severity, d.code, d.label])).toEqual([
        ['error', 'label-invalid', 'com.docker.lb.hosts'],
      ]);
    },
  );

  it('reads websocket_endpoints as a comma list of paths', () => {
    expect(specOf({ ...base, 'com.docker.lb.websocket_endpoints': '/ws,/foo/' })?.websocketPaths).toEqual([
      '/ws',
      '/foo',
    ]);
    expect(specOf({ ...base, 'com.docker.lb.websocket_endpoints': '/ws,' })?.websocketPaths).toEqual(['/ws']);
  });
});

describe('docker-lb dialect: redirects are SOURCE,TARGET pairs separated by `;`', () => {
  it('reads several pairs', () => {
    expect(
      specOf({
        ...base,
        'com.docker.lb.hosts': 'old.example.com,new.example.com',
        'com.docker.lb.redirects':
          'http://old.example.com,https://new.example.com; Old.Example.com , https://new.example.com/landing/',
      })?.redirects,
    ).toEqual([
      { from: 'http://old.example.com', to: 'https://new.example.com' },
      { from: 'old.example.com', to: 'https://new.example.com/landing' },
    ]);
  });

  it("reads the label reference's own example, which ends with `;`", () => {
    expect(
      specOf({
        ...base,
        'com.docker.lb.hosts': 'old.example.com',
        'com.docker.lb.redirects': 'http://old.example.com,http://new.example.com;',
      })?.redirects,
    ).toEqual([{ from: 'http://old.example.com', to: 'http://new.example.com' }]);
  });

  const redirecting = {
    'com.docker.lb.hosts': 'old.example.com',
    'com.docker.lb.port': '80',
    'com.docker.lb.redirects': 'old.example.com,https://new.example.com',
  };

  it('reads redirect_code: 301, 302, 303, 307 or 308', () => {
    for (const code of [301, 302, 303, 307, 308] as const) {
      expect(specOf({ ...redirecting, 'com.docker.lb.redirect_code': String(code) })?.redirectCode).toBe(code);
    }
    expect(specOf(redirecting)?.redirectCode).toBeUndefined();
  });

  it('warns that redirect_code does nothing without redirects', () => {
    const r = run({ ...base, 'com.docker.lb.redirect_code': '301' });
    expect(r.specs.map((x) => x.spec.redirectCode)).toEqual([undefined]);
    expect(r.diagnostics.map((d) => [d.severity, d.code, d.label])).toEqual([
      ['warning', 'label-ignored', 'com.docker.lb.redirect_code'],
    ]);
  });

  it.each(['300', '200', '3O2', ' 302', 'permanent', '302;'])('refuses redirect_code=%j', (code) => {
    const r = run({ ...redirecting, 'com.docker.lb.redirect_code': code });
    expect(r.specs).toEqual([]);
    expect(r.diagnostics.map((d) => [d.severity, d.label, d.fix])).toEqual([
      ['error', 'com.docker.lb.redirect_code', 'write one of: 301, 302, 303, 307, 308'],
    ]);
  });

  it.each([
    ['http://a.example.com', 'not a SOURCE,TARGET pair'],
    ['http://a.example.com,https://b.example.com,https://c.example.com', 'not a SOURCE,TARGET pair'],
    ['http://a.example.com,https://b.example.com;;', 'not a SOURCE,TARGET pair'],
    [';http://a.example.com,https://b.example.com', 'not a SOURCE,TARGET pair'],
    ['http://a.example.com,https://b.example.com,', 'not a SOURCE,TARGET pair'],
    ['ftp://a.example.com,https://b.example.com', 'redirect source'],
    ['http://a.example.com,b.example.com', 'absolute URL'],
    ['http://a.example.com,https://b.example.com/?next=x', "redirect target's path"],
  ])('refuses redirects=%j', (redirects, error) => {
    const r = run({ ...base, 'com.docker.lb.redirects': redirects });
    expect(r.specs).toEqual([]);
    expect(r.diagnostics[0]?.label).toBe('com.docker.lb.redirects');
    expect(r.diagnostics[0]?.message).toContain(error);
  });
});

describe('docker-lb dialect: the other labels', () => {
  it('reads every label into its field', () => {
    expect(
      specOf({
        ...base,
        'com.docker.lb.network': 'appnet',
        'com.docker.lb.context_root': '/app',
        'com.docker.lb.context_root_rewrite': 'true',
        'com.docker.lb.ssl_cert': 'app.example.com.cert',
        'com.docker.lb.ssl_key': 'app.example.com.key',
        'com.docker.lb.sticky_session_cookie': 'app_session',
        'com.docker.lb.ssl_passthrough': 'false',
        'com.docker.lb.backend_mode': 'VIP',
        'com.docker.lb.ip_hash': 'no',
        'com.docker.lb.default_backend': 'false',
        'com.docker.lb.service_cluster': 'local',
      }),
    ).toEqual({
      hosts: ['app.example.com'],
      port: 8080,
      network: 'appnet',
      backendMode: 'vip',
      path: '/app',
      stripPath: true,
      sslCert: 'app.example.com.cert',
      sslKey: 'app.example.com.key',
      sslPassthrough: false,
      stickyCookie: 'app_session',
      ipHash: false,
      defaultBackend: false,
    });
  });

  it('refuses a backend mode it does not know', () => {
    expect(run({ ...base, 'com.docker.lb.backend_mode': 'dnsrr' }).diagnostics[0]?.fix).toBe('write one of: task, vip');
  });

  it('needs hosts, unless the service is the default backend', () => {
    const r = run({ 'com.docker.lb.port': '8080' });
    expect(r.specs).toEqual([]);
    expect(r.diagnostics.map((d) => [d.code, d.label])).toEqual([['label-missing', 'com.docker.lb.hosts']]);
    expect(specOf({ 'com.docker.lb.port': '8080', 'com.docker.lb.default_backend': 'true' })).toEqual({
      port: 8080,
      defaultBackend: true,
    });
  });

  it('warns about unknown labels with the closest known one', () => {
    const r = run({ ...base, 'com.docker.lb.sticky_session_cokie': 'SESSION', 'com.docker.lb.zzz': 'x' });
    expect(r.specs).toHaveLength(1);
    expect(r.diagnostics.map((d) => [d.severity, d.label, d.fix])).toEqual([
      ['warning', 'com.docker.lb.sticky_session_cokie', 'did you mean com.docker.lb.sticky_session_cookie?'],
      ['warning', 'com.docker.lb.zzz', expect.stringMatching(/^known labels: com\.docker\.lb\.hosts, /)],
    ]);
  });
});

describe('docker-lb dialect: service_cluster', () => {
  it('leaves a service meant for another cluster out, as a skip rather than a problem', () => {
    const r = run({ ...base, 'com.docker.lb.service_cluster': 'us-east', 'com.docker.lb.port': 'not-a-port' });
    expect(r).toEqual({
      matched: true,
      specs: [],
      diagnostics: [],
      skip: 'com.docker.lb.service_cluster is us-east, not this cluster (local)',
    });
    expect(run({ ...base, 'com.docker.lb.service_cluster': 'us-east' }, { cluster: 'us-east' }).specs).toHaveLength(1);
  });

  it('refuses a service_cluster that is not a name', () => {
    const r = run({ ...base, 'com.docker.lb.service_cluster': 'local\n' });
    expect(r.skip).toBeUndefined();
    expect(r.specs).toEqual([]);
    expect(r.diagnostics[0]?.label).toBe('com.docker.lb.service_cluster');
  });
});

describe('docker-lb dialect: which services are its own', () => {
  it('ignores a service without com.docker.lb labels, silently', () => {
    expect(run({ 'interlock.hostname': 'x', 'com.docker.lbx': 'y', 'com.docker.stack.namespace': 'z' })).toEqual({
      matched: false,
      specs: [],
      diagnostics: [],
    });
  });

  it('reads a custom prefix', () => {
    const r = run({ 'lb.hosts': 'a.example.com', 'lb.port': '80' }, { prefix: 'lb' });
    expect(r.specs.map((s) => s.spec)).toEqual([{ hosts: ['a.example.com'], port: 80 }]);
  });
});

describe('docker-lb dialect: broad wildcards', () => {
  it('refuses a wildcard on a public suffix unless the rule allows it', () => {
    const labels = { ...base, 'com.docker.lb.hosts': 'app.example.com,*.io' };
    const r = run(labels);
    expect(r.specs).toEqual([]);
    expect(r.diagnostics.map((d) => [d.label, d.fix])).toEqual([
      ['com.docker.lb.hosts', expect.stringContaining('allowBroadWildcards: true')],
    ]);
    const allowed = dockerLbDialect(svc(labels), { cluster: 'local', allowBroadWildcards: true });
    expect(allowed.specs.map((x) => x.spec.hosts)).toEqual([['app.example.com', '*.io']]);
  });
});

describe('docker-lb dialect: a context root without hosts', () => {
  it('routes the path on hosts no route names', () => {
    expect(specOf({ 'com.docker.lb.context_root': '/app', 'com.docker.lb.port': '8080' })).toEqual({
      path: '/app',
      port: 8080,
      defaultBackend: true,
    });
  });
});
