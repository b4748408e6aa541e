/**
 * checkSpec copies the fields it checked into a new spec: a field it forgot would be dropped
 * without a word. A spec with every field set must come back with every field.
 */
import { describe, expect, it } from 'vitest';
import { checkSpec } from '../../src/routes/spec.ts';
import type { RouteSpec } from '../../src/routes/types.ts';

/** Every RouteSpec field, set (the type makes a missing one a compile error). */
const everyField: Required<RouteSpec> = {
  hosts: ['shop.example.com', 'www.shop.example.com'],
  port: 8080,
  network: 'appnet',
  backendMode: 'task',
  path: '/api',
  stripPath: true,
  mode: 'http',
  listenPort: 9000,
  balance: 'leastconn',
  healthCheck: { path: '/healthz', intervalMs: 3000 },
  stickyCookie: 'SESSION',
  ipHash: false,
  websocketPaths: ['/api/ws'],
  sslOnly: false,
  sslCert: 'shop.pem',
  sslKey: 'shop.pem.key',
  backendTls: { verify: true },
  sslPassthrough: false,
  redirects: [{ from: 'http://www.shop.example.com', to: 'https://shop.example.com' }],
  redirectCode: 302,
  defaultBackend: false,
  rawBackendOptions: ['option forwardfor'],
  allowIps: ['192.0.2.0/24', '2001:db8::/32'],
  denyIps: ['192.0.2.7/32'],
  rateLimit: { perSecond: 10, burst: 20 },
  requestHeaders: [
    { action: 'set', name: 'X-Env', value: 'prod' },
    { action: 'remove', name: 'X-Debug' },
  ],
  responseHeaders: [{ action: 'add', name: 'X-Frame-Options', value: 'DENY' }],
  hsts: { maxAge: 31536000, includeSubDomains: true },
  requestId: true,
  compress: ['text/html', 'application/json'],
  basicAuth: { usersFile: 'shop-users', realm: 'shop-staff' },
  errorPage: 'shop-error.html',
  maintenance: true,
  canaryGroup: 'shop',
  weight: 90,
  acme: true,
};

const where = { cluster: 'local', service: 'shop', rule: 'custom', labels: undefined };

describe('checkSpec', () => {
  it('keeps every field of the specs it accepts (an HTTP one and a TCP one cover them all)', () => {
    const { listenPort, ...http } = everyField;
    const tcp: RouteSpec = {
      mode: 'tcp',
      listenPort,
      port: 5432,
      network: 'appnet',
      backendMode: 'task',
      balance: 'leastconn',
    };
    const kept = new Set<string>();
    for (const spec of [{ ...http, mode: 'http' as const }, tcp]) {
      const r = checkSpec(spec, where);
      expect(r.diagnostics).toEqual([]);
      expect(Object.keys(r.spec ?? {}).sort()).toEqual(Object.keys(spec).sort());
      for (const k of Object.keys(r.spec ?? {})) kept.add(k);
    }
    expect([...kept].sort()).toEqual(Object.keys(everyField).sort());
  });
});
