/**
 * Which hosts want ACME certificates: those of routes with the `acme` label, and those the
 * config's `acme.hosts` patterns name. Pure: routes and patterns in, host names and diagnostics
 * out. One certificate per host, so a host the CA refuses affects no other.
 */
import type { AcmeConfig } from '../config/schema.ts';
import type { Diagnostic } from '../diagnostics.ts';
import type { Route } from './types.ts';

/** `app.example.com` names that host; `*.example.com` every host under example.com (any depth). */
export function matchesAcmePattern(host: string, pattern: string): boolean {
  if (pattern.startsWith('*.')) return host.endsWith(pattern.slice(1)) && !host.startsWith('*.');
  return host === pattern;
}

export interface AcmeHosts {
  /** Concrete host names that get a certificate, sorted. */
  hosts: string[];
  diagnostics: Diagnostic[];
}

export function acmeHosts(routes: readonly Route[], patterns: readonly string[] = []): AcmeHosts {
  const hosts = new Set<string>();
  const diagnostics: Diagnostic[] = [];
  const said = new Set<string>();
  const say = (d: Diagnostic) => {
    const key = `${d.code}\u0000${d.cluster}\u0000${d.service}\u0000${d.message}`;
    if (said.has(key)) return;
    said.add(key);
    diagnostics.push(d);
  };
  for (const r of routes) {
    if (r.mode !== 'http') continue;
    for (const h of r.hosts) {
      const byLabel = r.acme === true;
      const byPattern = patterns.some((p) => matchesAcmePattern(h, p) || p === h);
      if (!byLabel && !byPattern) continue;
      if (h.startsWith('*.')) {
        say({
          severity: 'warning',
          code: 'acme-wildcard',
          cluster: r.cluster,
          service: r.service,
          message: `no ACME certificate for the wildcard host ${h}: HTTP-01 cannot validate wildcards; it is served with the default certificate`,
          fix: 'name the hosts one by one for ACME, or give the wildcard a certificate of your own (ssl_cert, https.defaultCert)',
        });
        continue;
      }
      if (r.sslPassthrough) {
        say({
          severity: 'warning',
          code: 'acme-passthrough',
          cluster: r.cluster,
          service: r.service,
          message: `no ACME certificate for ${h}: its TLS is passed through to the service, the proxies do not terminate it`,
          fix: 'drop the acme label, or turn TLS passthrough off',
        });
        continue;
      }
      hosts.add(h);
    }
  }
  return { hosts: [...hosts].sort(), diagnostics };
}

/** HOST:PORT where the proxies reach the controller's challenge responder. */
export function acmeResponder(acme: Pick<AcmeConfig, 'challenge'>): string {
  const c = acme.challenge;
  if (c.reachAt) return c.reachAt;
  const any = c.address === '0.0.0.0' || c.address === '*';
  const host = any ? '127.0.0.1' : c.address === '::' ? '[::1]' : c.address;
  return `${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${c.port}`;
}
