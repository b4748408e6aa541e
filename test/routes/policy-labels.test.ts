/**
 * The traffic-policy labels of both dialects (issue 14): what they put into the spec, and how a
 * wrong one refuses the service with a diagnostic naming the label and the fix.
 */
import { describe, expect, it } from 'vitest';
import type { ServiceState } from '../../src/cluster/model.ts';
import { dockerLbDialect } from '../../src/routes/dialect-docker-lb.ts';
import { interlockDialect } from '../../src/routes/dialect-interlock.ts';
import { checkSpec } from '../../src/routes/spec.ts';

function svc(labels: Record<string, string>): ServiceState {
  return { id: 'id1', name: 'app', mode: 'replicated', labels, networks: [], vips: [], ingressPorts: [], tasks: [] };
}

const lbBase = { 'com.docker.lb.hosts': 'app.example.com', 'com.docker.lb.port': '8080' };
const ilBase = { 'interlock.hostname': 'app', 'interlock.domain': 'example.com', 'interlock.port': '8080' };

/** Dialect, then checkSpec, as buildRoutes runs them: the checked spec, or every diagnostic. */
function run(dialect: 'lb' | 'il', labels: Record<string, string>) {
  const r =
    dialect === 'lb'
      ? dockerLbDialect(svc({ ...lbBase, ...labels }), { cluster: 'local' })
      : interlockDialect(svc({ ...ilBase, ...labels }), { cluster: 'local' });
  const first = r.specs[0];
  if (!first) return { diagnostics: r.diagnostics };
  const checked = checkSpec(first.spec, { cluster: 'local', service: 'app', rule: dialect, labels: first.labels });
  return { spec: checked.spec, diagnostics: [...r.diagnostics, ...checked.diagnostics] };
}

describe('policy labels', () => {
  it('com.docker.lb.*: plural comma lists, one header per label with .N', () => {
    const r = run('lb', {
      'com.docker.lb.allow_ips': '10.0.0.0/8, 2001:DB8::/32',
      'com.docker.lb.deny_ips': '10.1.2.3',
      'com.docker.lb.rate_limit': '10',
      'com.docker.lb.rate_limit_burst': '20',
      'com.docker.lb.request_headers_set': 'X-Env: prod',
      'com.docker.lb.request_headers_set.1': 'X-Team: web, ops',
      'com.docker.lb.request_headers_remove': 'X-Debug,X-Trace',
      'com.docker.lb.response_headers_add': 'X-Served-By: edge',
      'com.docker.lb.hsts': 'max-age=31536000; includeSubDomains',
      'com.docker.lb.request_id': 'true',
      'com.docker.lb.compress_types': 'text/html,application/json',
    });
    expect(r.diagnostics).toEqual([]);
    expect(r.spec).toMatchObject({
      allowIps: ['10.0.0.0/8', '2001:db8::/32'],
      denyIps: ['10.1.2.3/32'],
      rateLimit: { perSecond: 10, burst: 20 },
      requestHeaders: [
        { action: 'set', name: 'X-Env', value: 'prod' },
        { action: 'set', name: 'X-Team', value: 'web, ops' },
        { action: 'remove', name: 'X-Debug' },
        { action: 'remove', name: 'X-Trace' },
      ],
      responseHeaders: [{ action: 'add', name: 'X-Served-By', value: 'edge' }],
      hsts: { maxAge: 31536000, includeSubDomains: true },
      requestId: true,
      compress: ['text/html', 'application/json'],
    });
  });

  it('interlock.*: singular names with .N', () => {
    const r = run('il', {
      'interlock.allow_ip': '127.0.0.1',
      'interlock.allow_ip.1': '::1',
      'interlock.response_header_set': 'X-Frame-Options: DENY',
      'interlock.response_header_remove': 'X-Powered-By',
      'interlock.rate_limit': '5r/s',
      'interlock.compress': 'text/css',
    });
    expect(r.diagnostics).toEqual([]);
    expect(r.spec).toMatchObject({
      allowIps: ['127.0.0.1/32', '::1/128'],
      rateLimit: { perSecond: 5, burst: 0 },
      responseHeaders: [
        { action: 'set', name: 'X-Frame-Options', value: 'DENY' },
        { action: 'remove', name: 'X-Powered-By' },
      ],
      compress: ['text/css'],
    });
  });

  it.each([
    ['lb', 'com.docker.lb.allow_ips', '10.0.0.1/8', '10.0.0.0/8'],
    ['il', 'interlock.deny_ip', 'example.com', '192.0.2.0/24'],
    ['lb', 'com.docker.lb.rate_limit', 'fast', 'write e.g. 10'],
    ['il', 'interlock.request_header_set', 'X-Request-Id: 1', 'request_id'],
    ['lb', 'com.docker.lb.response_headers_set', 'Strict-Transport-Security: max-age=1', 'hsts'],
    ['il', 'interlock.request_header_set', 'X-Env: $host', 'remove the character'],
    ['lb', 'com.docker.lb.hsts', 'max-age=600; preload', 'includeSubDomains'],
    ['il', 'interlock.compress', 'text/*', 'text/html'],
  ] as const)('%s %s=%j refuses the service, naming the label and the fix', (dialect, label, value, fix) => {
    const r = run(dialect, { [label]: value });
    expect(r.spec).toBeUndefined();
    const errors = r.diagnostics.filter((d) => d.severity === 'error');
    expect(errors.map((d) => d.label)).toEqual([label]);
    expect(`${errors[0]?.message} ${errors[0]?.fix}`).toContain(fix);
  });

  it('refuses a header changed twice, and a rate-limit burst alone is a warning', () => {
    const twice = run('lb', {
      'com.docker.lb.request_headers_set': 'X-Env: a',
      'com.docker.lb.request_headers_remove': 'x-env',
    });
    expect(twice.spec).toBeUndefined();
    expect(twice.diagnostics.map((d) => [d.severity, d.label])).toEqual([
      ['error', 'com.docker.lb.request_headers_set'],
    ]);
    const burst = run('il', { 'interlock.rate_limit_burst': '5' });
    expect(burst.diagnostics.map((d) => [d.severity, d.code, d.label])).toEqual([
      ['warning', 'label-ignored', 'interlock.rate_limit_burst'],
    ]);
    expect(burst.spec?.rateLimit).toBeUndefined();
  });

  it('refuses policies on routes the proxy does not terminate (TLS passthrough)', () => {
    const r = run('lb', { 'com.docker.lb.ssl_passthrough': 'true', 'com.docker.lb.allow_ips': '10.0.0.0/8' });
    expect(r.spec).toBeUndefined();
    expect(r.diagnostics.map((d) => d.message).join(' ')).toContain('allowIps');
  });

  it('refuses policies on a tcp route from a custom rule', () => {
    const r = checkSpec(
      { mode: 'tcp', listenPort: 5432, port: 5432, rateLimit: { perSecond: 1 } },
      { cluster: 'local', service: 'db', rule: 'custom', labels: undefined },
    );
    expect(r.spec).toBeUndefined();
    expect(r.diagnostics[0]?.message).toContain('a tcp route cannot use rateLimit');
  });
});
