import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { ServiceState } from '../../src/cluster/model.ts';
import { mapSnapshot, parseSnapshotText } from '../../src/cluster/snapshot-map.ts';
import { interlockDialect } from '../../src/routes/dialect-interlock.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function svc(labels: Record<string, string>, name = 'web'): ServiceState {
  return { id: 'id1', name, mode: 'replicated', labels, networks: [], vips: [], ingressPorts: [], tasks: [] };
}

const base = { 'interlock.hostname': 'shop', 'interlock.domain': 'example.com', 'interlock.port': '8080' };

function run(labels: Record<string, string>, options: { prefix?: string; allowRawDirectives?: boolean } = {}) {
  return interlockDialect(svc(labels), { cluster: 'local', ...options });
}

function specOf(labels: Record<string, string>, options: { prefix?: string; allowRawDirectives?: boolean } = {}) {
  const r = run(labels, options);
  expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  expect(r.specs).toHaveLength(1);
  return r.specs[0]?.spec;
}

describe('interlock dialect on the swarm-demo services', () => {
  const doc = parseSnapshotText(readFileSync(path.join(ROOT, 'examples/swarm-demo.snapshot.json'), 'utf8'), 'demo');
  const { state } = mapSnapshot(doc, { cluster: 'local' });
  const results = new Map(state.services.map((s) => [s.name, interlockDialect(s, { cluster: 'local' })]));

  it('reads shop-web, shop-api, status and paused, and nothing else', () => {
    expect([...results].filter(([, r]) => r.matched).map(([name]) => name)).toEqual([
      'paused',
      'shop-api',
      'shop-web',
      'status',
    ]);
    expect([...results.values()].flatMap((r) => r.diagnostics)).toEqual([]);
    expect(results.get('shop-web')?.specs.map((s) => s.spec)).toEqual([
      {
        hosts: ['shop.example.com', 'www.example.com'],
        port: 8080,
        network: 'appnet',
        healthCheck: { path: '/healthz' },
        balance: 'leastconn',
      },
    ]);
    expect(results.get('shop-api')?.specs.map((s) => s.spec)).toEqual([
      {
        hosts: ['shop.example.com'],
        port: 9000,
        network: 'appnet',
        path: '/api',
        stripPath: true,
        websocketPaths: ['/api/ws'],
      },
    ]);
    expect(results.get('status')?.specs.map((s) => s.spec)).toEqual([
      { hosts: ['status.example.com'], port: 80, sslOnly: true },
    ]);
    expect(results.get('blog')).toEqual({ matched: false, specs: [], diagnostics: [] });
  });

  it('says which label sets each field, for later diagnostics', () => {
    expect(results.get('status')?.specs[0]?.labels?.port).toBe('interlock.port');
    expect(results.get('status')?.specs[0]?.labels?.network).toBe('interlock.network');
  });
});

describe('interlock dialect: values are parsed, not merely present', () => {
  it.each([
    ['false', false],
    ['0', false],
    ['no', false],
    ['True', true],
    ['yes', true],
  ])('ssl_only=%s is %s', (value, expected) => {
    expect(specOf({ ...base, 'interlock.ssl_only': value })?.sslOnly).toBe(expected);
  });

  it.each(['', 'on', 'enabled', 'true\n'])('refuses ssl_only=%j, naming the label and the service', (value) => {
    const r = run({ ...base, 'interlock.ssl_only': value });
    expect(r.specs).toEqual([]);
    expect(r.diagnostics).toEqual([
      {
        severity: 'error',
        code: 'label-invalid',
        message: expect.stringMatching(/: not a boolean; the service is left out$/),
        fix: 'write true or false (also accepted: 1/0, yes/no)',
        cluster: 'local',
        service: 'web',
        label: 'interlock.ssl_only',
      },
    ]);
  });

  it('reads health_check as a path and its interval in milliseconds', () => {
    expect(
      specOf({ ...base, 'interlock.health_check': '/healthz/', 'interlock.health_check_interval': '2000' })
        ?.healthCheck,
    ).toEqual({
      path: '/healthz',
      intervalMs: 2000,
    });
  });

  it('refuses the interlock 1.x raw health_check form with a fix that says what to write', () => {
    const r = run({ ...base, 'interlock.health_check': 'httpchk GET /health' });
    expect(r.specs).toEqual([]);
    expect(r.diagnostics[0]?.fix).toBe('write only the path, e.g. /healthz');
  });

  it('warns about a label that means nothing without another', () => {
    const r = run({ ...base, 'interlock.health_check_interval': '2000', 'interlock.context_root_rewrite': 'true' });
    expect(r.specs).toHaveLength(1);
    expect(r.diagnostics.map((d) => [d.severity, d.code, d.label, d.message])).toEqual([
      ['warning', 'label-ignored', 'interlock.context_root_rewrite', 'has no effect without interlock.context_root'],
      ['warning', 'label-ignored', 'interlock.health_check_interval', 'has no effect without interlock.health_check'],
    ]);
  });

  it('reads the TLS labels', () => {
    expect(
      specOf({
        ...base,
        'interlock.ssl': 'true',
        'interlock.ssl_cert': 'shop.example.com.pem',
        'interlock.ssl_cert_key': 'shop.example.com.key',
        'interlock.ssl_backend': 'true',
      }),
    ).toMatchObject({ sslCert: 'shop.example.com.pem', sslKey: 'shop.example.com.key', backendTls: { verify: false } });
    expect(
      specOf({ ...base, 'interlock.ssl_backend': '1', 'interlock.ssl_backend_tls_verify': 'required' })?.backendTls,
    ).toEqual({
      verify: true,
    });
    expect(
      specOf({ ...base, 'interlock.ssl_backend': 'false', 'interlock.ssl_backend_tls_verify': 'none' })?.backendTls,
    ).toBeUndefined();
    expect(run({ ...base, 'interlock.ssl_cert': '../../etc/shadow' }).specs).toEqual([]);
  });

  it('reads balance_algorithm as an enumeration and ip_hash as a boolean', () => {
    expect(specOf({ ...base, 'interlock.balance_algorithm': 'LeastConn', 'interlock.ip_hash': 'false' })).toMatchObject(
      {
        balance: 'leastconn',
        ipHash: false,
      },
    );
    const r = run({ ...base, 'interlock.balance_algorithm': 'static-rr' });
    expect(r.diagnostics[0]?.fix).toBe('write one of: roundrobin, leastconn, source, first, random');
  });
});

describe('interlock dialect: multi-value labels are name or name.N exactly', () => {
  it('reads name, then name.N by N', () => {
    const spec = specOf({
      ...base,
      'interlock.alias_domain.10': 'ten.example.com',
      'interlock.alias_domain.2': 'two.example.com',
      'interlock.alias_domain': 'zero.example.com',
      'interlock.websocket_endpoint.1': '/ws/b',
      'interlock.websocket_endpoint': '/ws/a',
    });
    expect(spec?.hosts).toEqual(['shop.example.com', 'zero.example.com', 'two.example.com', 'ten.example.com']);
    expect(spec?.websocketPaths).toEqual(['/ws/a', '/ws/b']);
  });

  it('does not match by substring: look-alike keys are unknown labels, with a suggestion', () => {
    const r = run({
      ...base,
      'interlock.alias_domains': 'x.example.com',
      'interlock.alias_domain.x': 'y.example.com',
      'interlock.hostname_old': 'old',
      'interlock.port.1': '9000',
    });
    expect(r.specs[0]?.spec.hosts).toEqual(['shop.example.com']);
    expect(r.specs[0]?.spec.port).toBe(8080);
    expect(r.diagnostics.map((d) => [d.severity, d.code, d.label, d.fix])).toEqual([
      ['warning', 'label-unknown', 'interlock.alias_domain.x', 'did you mean interlock.alias_domain?'],
      ['warning', 'label-unknown', 'interlock.alias_domains', 'did you mean interlock.alias_domain?'],
      ['warning', 'label-unknown', 'interlock.hostname_old', 'did you mean interlock.hostname?'],
      [
        'warning',
        'label-unknown',
        'interlock.port.1',
        'write it as interlock.port; only interlock.alias_domain, interlock.websocket_endpoint, interlock.backend_option, interlock.allow_ip, interlock.deny_ip, interlock.request_header_set, interlock.request_header_remove, interlock.response_header_set, interlock.response_header_add, interlock.response_header_remove take .N',
      ],
    ]);
  });

  it('escapes a hostile label key in its diagnostic', () => {
    const r = run({ ...base, 'interlock.port\nbackend evil': '1' });
    expect(r.diagnostics[0]?.label).toBe('"interlock.port\\nbackend evil"');
  });
});

describe('interlock dialect: raw directives', () => {
  const labels = { ...base, 'interlock.backend_option': 'forwardfor', 'interlock.backend_option.1': 'option httplog' };

  it('refuses backend_option unless the config opted in, and still routes the service', () => {
    const r = run(labels);
    expect(r.specs[0]?.spec.rawBackendOptions).toBeUndefined();
    expect(r.diagnostics.map((d) => [d.severity, d.code, d.label])).toEqual([
      ['warning', 'raw-directive-refused', 'interlock.backend_option'],
      ['warning', 'raw-directive-refused', 'interlock.backend_option.1'],
    ]);
    expect(r.diagnostics[0]?.fix).toContain('allowRawDirectives: true');
  });

  it('with allowRawDirectives, reads each as an HAProxy `option` line, as interlock 1.x did', () => {
    expect(specOf(labels, { allowRawDirectives: true })?.rawBackendOptions).toEqual([
      'option forwardfor',
      'option httplog',
    ]);
    const r = run({ ...base, 'interlock.backend_option': 'forwardfor\nbackend evil' }, { allowRawDirectives: true });
    expect(r.specs).toEqual([]);
    expect(r.diagnostics[0]?.code).toBe('label-invalid');
  });
});

describe('interlock dialect: which services are its own', () => {
  it('ignores a service without interlock labels, silently', () => {
    expect(run({ app: 'agent', 'com.docker.lb.hosts': 'x.example.com' })).toEqual({
      matched: false,
      specs: [],
      diagnostics: [],
    });
  });

  it('ignores interlock.ext.name, which marks interlock 1.x proxy containers, not routes', () => {
    expect(run({ 'interlock.ext.name': 'nginx' })).toEqual({ matched: false, specs: [], diagnostics: [] });
  });

  it('reports a service with interlock labels but no hostname instead of dropping it silently', () => {
    const r = run({ 'interlock.port': '8080', 'interlock.domain': 'example.com' });
    expect(r.matched).toBe(true);
    expect(r.specs).toEqual([]);
    expect(r.diagnostics).toEqual([
      {
        severity: 'error',
        code: 'label-missing',
        message: 'has interlock.* labels but no interlock.hostname: the service is left out',
        fix: 'add interlock.hostname (and interlock.domain), or remove the interlock.* labels',
        cluster: 'local',
        service: 'web',
        label: 'interlock.hostname',
      },
    ]);
  });

  it('builds the host from hostname alone when there is no domain, wildcards included', () => {
    expect(specOf({ 'interlock.hostname': 'Shop.Example.com' })?.hosts).toEqual(['shop.example.com']);
    expect(specOf({ 'interlock.hostname': '*', 'interlock.domain': 'example.com' })?.hosts).toEqual(['*.example.com']);
  });

  it('blames the label that is wrong: hostname or domain', () => {
    expect(run({ 'interlock.hostname': 'sh op', 'interlock.domain': 'example.com' }).diagnostics[0]?.label).toBe(
      'interlock.hostname',
    );
    expect(run({ 'interlock.hostname': 'shop', 'interlock.domain': 'example.com;' }).diagnostics[0]?.label).toBe(
      'interlock.domain',
    );
  });

  it('reads a custom prefix and nothing else', () => {
    const labels = { 'acme.router.hostname': 'shop', 'acme.router.port': '80', 'interlock.hostname': 'other' };
    const r = run(labels, { prefix: 'acme.router' });
    expect(r.specs.map((s) => s.spec)).toEqual([{ hosts: ['shop'], port: 80 }]);
    expect(r.specs[0]?.labels?.port).toBe('acme.router.port');
    expect(run({ 'interlock.hostname': 'x' }, { prefix: 'acme.router' }).matched).toBe(false);
  });

  it('names the labels of its own prefix and header choice, though the label map is shared between services', () => {
    const own = run({ ...base, 'interlock.response_header_add': 'X-A: 1' }).specs[0]?.labels;
    const other = run({ 'acme.router.hostname': 'shop', 'acme.router.port': '80' }, { prefix: 'acme.router' }).specs[0]
      ?.labels;
    const plain = run(base).specs[0]?.labels;
    expect(own?.port).toBe('interlock.port');
    expect(own?.responseHeaders).toBe('interlock.response_header_add');
    expect(plain?.responseHeaders).toBe('interlock.response_header_remove');
    expect(other?.port).toBe('acme.router.port');
    // One shared, frozen object per prefix and choice (issue 12: one per service was slow at 10k).
    expect(run(base).specs[0]?.labels).toBe(plain);
    expect(Object.isFrozen(plain)).toBe(true);
  });
});

describe('interlock dialect: broad wildcards', () => {
  it('refuses hostname=* under a top-level domain, and under a public suffix, unless the rule allows it', () => {
    const cases: Record<string, string>[] = [
      { 'interlock.hostname': '*', 'interlock.domain': 'com', 'interlock.port': '80' },
      { 'interlock.hostname': '*.co.uk', 'interlock.port': '80' },
      { 'interlock.hostname': 'app.example.com', 'interlock.alias_domain': '*.io', 'interlock.port': '80' },
    ];
    for (const labels of cases) {
      const r = run(labels);
      expect(r.specs, JSON.stringify(labels)).toEqual([]);
      expect(
        r.diagnostics.map((d) => [d.severity, d.code]),
        JSON.stringify(labels),
      ).toEqual([['error', 'label-invalid']]);
      expect(r.diagnostics[0]?.fix).toContain('allowBroadWildcards: true');
      expect(interlockDialect(svc(labels), { cluster: 'local', allowBroadWildcards: true }).specs).toHaveLength(1);
    }
  });
});

describe('interlock dialect: a context root instead of a host name (interlock 1.x)', () => {
  it('routes the path on hosts no route names', () => {
    expect(specOf({ 'interlock.context_root': '/app', 'interlock.port': '8080' })).toEqual({
      path: '/app',
      port: 8080,
      defaultBackend: true,
    });
    expect(
      specOf({ 'interlock.context_root': '/app', 'interlock.context_root_rewrite': 'true', 'interlock.port': '80' }),
    ).toEqual({ path: '/app', stripPath: true, port: 80, defaultBackend: true });
  });

  it('warns that domain and alias_domain do nothing without a hostname', () => {
    const r = run({
      'interlock.context_root': '/app',
      'interlock.port': '8080',
      'interlock.domain': 'example.com',
      'interlock.alias_domain': 'www.example.com',
    });
    expect(r.specs.map((x) => x.spec)).toEqual([{ path: '/app', port: 8080, defaultBackend: true }]);
    expect(r.diagnostics.map((d) => [d.severity, d.code, d.label])).toEqual([
      ['warning', 'label-ignored', 'interlock.alias_domain'],
      ['warning', 'label-ignored', 'interlock.domain'],
    ]);
  });
});
