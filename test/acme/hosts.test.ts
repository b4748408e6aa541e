/** Which hosts want ACME certificates: the `acme` label, the config's host patterns, and what is refused. */
import { describe, expect, it } from 'vitest';
import { acmeHosts, acmeResponder, matchesAcmePattern } from '../../src/routes/acme.ts';
import { route } from '../fixtures/routes/base.ts';

describe('acmeHosts', () => {
  it('takes the hosts of routes with the acme label, and those the patterns name', () => {
    const r = acmeHosts(
      [
        route({ service: 'shop', hosts: ['shop.example.com', 'www.shop.example.com'], acme: true }),
        route({ service: 'blog', hosts: ['blog.example.org'] }),
        route({ service: 'api', hosts: ['api.example.net'] }),
        route({ service: 'db', mode: 'tcp', listenPort: 5432, acme: true }),
      ],
      ['*.example.org'],
    );
    expect(r.hosts).toEqual(['blog.example.org', 'shop.example.com', 'www.shop.example.com']);
    expect(r.diagnostics).toEqual([]);
  });

  it('refuses wildcard hosts (HTTP-01 cannot validate them) with a diagnostic naming the service, and keeps the rest', () => {
    const r = acmeHosts([route({ service: 'wild', hosts: ['*.apps.example.com', 'apps.example.com'], acme: true })]);
    expect(r.hosts).toEqual(['apps.example.com']);
    expect(r.diagnostics).toHaveLength(1);
    expect(r.diagnostics[0]).toMatchObject({
      severity: 'warning',
      code: 'acme-wildcard',
      cluster: 'local',
      service: 'wild',
    });
    expect(r.diagnostics[0]?.message).toContain('*.apps.example.com');
    expect(r.diagnostics[0]?.message).toContain('HTTP-01');
  });

  it('a pattern equal to a wildcard host asks for it, and is refused the same way', () => {
    const r = acmeHosts([route({ service: 'wild', hosts: ['*.example.com'] })], ['*.example.com']);
    expect(r.hosts).toEqual([]);
    expect(r.diagnostics.map((d) => d.code)).toEqual(['acme-wildcard']);
  });

  it('passthrough routes get none: the proxies do not terminate their TLS', () => {
    const r = acmeHosts([route({ service: 'vault', hosts: ['vault.example.com'], sslPassthrough: true, acme: true })]);
    expect(r.hosts).toEqual([]);
    expect(r.diagnostics.map((d) => d.code)).toEqual(['acme-passthrough']);
  });
});

describe('matchesAcmePattern', () => {
  it('names a host, or every host under a domain', () => {
    expect(matchesAcmePattern('a.example.com', 'a.example.com')).toBe(true);
    expect(matchesAcmePattern('b.example.com', 'a.example.com')).toBe(false);
    expect(matchesAcmePattern('a.b.example.com', '*.example.com')).toBe(true);
    expect(matchesAcmePattern('example.com', '*.example.com')).toBe(false);
    expect(matchesAcmePattern('badexample.com', '*.example.com')).toBe(false);
  });
});

describe('acmeResponder', () => {
  it('is reachAt, else the bind address (loopback for any-address) and port', () => {
    expect(acmeResponder({ challenge: { address: '127.0.0.1', port: 8402 } })).toBe('127.0.0.1:8402');
    expect(acmeResponder({ challenge: { address: '0.0.0.0', port: 8402 } })).toBe('127.0.0.1:8402');
    expect(acmeResponder({ challenge: { address: '::', port: 8402 } })).toBe('[::1]:8402');
    expect(acmeResponder({ challenge: { address: '0.0.0.0', port: 8402, reachAt: '10.0.0.5:8402' } })).toBe(
      '10.0.0.5:8402',
    );
  });
});
