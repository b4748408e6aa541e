import { describe, expect, it } from 'vitest';
import type { HaproxyOutput } from '../../src/config/schema.ts';
import { NO_ROUTE_BACKEND, renderHaproxy } from '../../src/render/haproxy.ts';
import { RenderError, type RenderedFile } from '../../src/render/types.ts';
import type { Route } from '../../src/routes/types.ts';
import { route } from '../fixtures/routes/base.ts';
import { SCENARIOS } from '../fixtures/routes/scenarios.ts';
import { swarmDemoRoutes } from '../fixtures/routes/swarm-demo.ts';
import { haproxyCheck, itWithTools, scratchDir, selfSignedPem } from './proxy-check.ts';
import { manyRoutes, shuffled, timeMin } from './scale.ts';

function file(files: readonly RenderedFile[], name: string): string {
  const f = files.find((x) => x.name === name);
  if (!f) throw new Error(`no ${name} among ${files.map((x) => x.name).join(', ')}`);
  return f.content;
}

/** The lines of one section (`frontend http`, `backend x`), up to the next blank line. */
function section(cfg: string, header: string): string {
  const start = cfg.indexOf(`\n${header}\n`);
  if (start < 0) throw new Error(`no section "${header}"`);
  const end = cfg.indexOf('\n\n', start + 1);
  return cfg.slice(start + 1, end < 0 ? undefined : end);
}

function mapEntries(map: string): Map<string, string> {
  const entries = new Map<string, string>();
  for (const line of map.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const [key, value, ...rest] = line.split(' ');
    if (key === undefined || value === undefined || rest.length > 0) throw new Error(`bad map line: ${line}`);
    if (entries.has(key)) throw new Error(`duplicate map key: ${key}`);
    entries.set(key, value);
  }
  return entries;
}

async function checkWithHaproxy(files: readonly RenderedFile[], certFiles: readonly string[] = []): Promise<void> {
  const pem = certFiles.length > 0 ? selfSignedPem() : '';
  const scratch = await scratchDir([...files, ...certFiles.map((c) => ({ name: `certs/${c}`, content: pem }))]);
  try {
    const result = haproxyCheck(scratch.dir);
    expect(result.ok, result.output).toBe(true);
    // Warnings mean something was ignored or disabled: a clean render has none.
    expect(result.output).not.toMatch(/\[(WARNING|ALERT)\]/);
  } finally {
    await scratch.remove();
  }
}

describe('renderHaproxy: golden scenarios', () => {
  for (const scenario of SCENARIOS) {
    describe(scenario.name, () => {
      const files = renderHaproxy(scenario.routes, scenario.haproxy);

      it('returns the config first and the host map named after it', () => {
        expect(files.map((f) => f.name)).toEqual(['haproxy.cfg', 'haproxy.hosts.map']);
      });

      it('matches the golden files', async () => {
        for (const f of files) await expect(f.content).toMatchFileSnapshot(`../golden/${scenario.name}/${f.name}`);
      });

      const tools = scenario.certFiles.length > 0 ? ['haproxy', 'openssl'] : ['haproxy'];
      itWithTools('is accepted by haproxy -c without warnings', tools, () =>
        checkWithHaproxy(files, scenario.certFiles),
      );
    });
  }
});

describe('renderHaproxy: routing table', () => {
  const [cfg, map] = renderHaproxy(swarmDemoRoutes, SCENARIOS[0]?.haproxy as HaproxyOutput).map((f) => f.content);
  const entries = mapEntries(map ?? '');

  it('maps every host and alias, keyed host + path + "/", so /api never matches /apix', () => {
    expect(entries.get('shop.example.com/')).toBe('shop-web__local__0');
    expect(entries.get('www.example.com/')).toBe('shop-web__local__0');
    expect(entries.get('shop.example.com/api/')).toBe('shop-api__local__0');
    expect(entries.get('blog.example.com/')).toBe('blog__local__0');
    expect(entries.get('news.example.com/')).toBe('blog__local__0');
    expect(entries.get('*.preview.example.com/')).toBe('preview__local__0');
  });

  it('looks hosts and paths up with map_beg (longest prefix wins) and falls back to a 503 backend', () => {
    const frontend = section(cfg ?? '', 'frontend http');
    expect(frontend).toContain('http-request set-var-fmt(txn.route_key) %[var(txn.host)]%[path]/');
    expect(frontend).toContain('http-request set-var(txn.backend) var(txn.route_key),map_beg(haproxy.hosts.map)');
    expect(frontend).toContain('use_backend %[var(txn.backend)] if { var(txn.backend) -m found }');
    expect(frontend).toContain(`default_backend ${NO_ROUTE_BACKEND}`);
    expect(section(cfg ?? '', `backend ${NO_ROUTE_BACKEND}`)).toContain('http-request return status 503');
  });

  it('keeps redirects in the map, keyed by scheme and host', () => {
    expect(entries.get('http://blog.example.com/')).toBe('302:https://blog.example.com');
    expect(entries.has('https://blog.example.com/')).toBe(false);
  });

  it('gives a known host without a `/` route the 503 backend, so it never falls through to a wildcard', () => {
    const [, featureMap] = renderHaproxy(
      [
        route({ service: 'docs', hosts: ['docs.example.org'], path: '/v1', backends: [] }),
        route({ service: 'all', hosts: ['*.example.org'], backends: [] }),
      ],
      SCENARIOS[0]?.haproxy as HaproxyOutput,
    ).map((f) => f.content);
    const e = mapEntries(featureMap ?? '');
    expect(e.get('docs.example.org/')).toBe(NO_ROUTE_BACKEND);
    expect(e.get('docs.example.org/v1/')).toBe('docs__local__0');
    expect(e.get('*.example.org/')).toBe('all__local__0');
  });

  it('renders each route feature in its backend', () => {
    const text = cfg ?? '';
    expect(section(text, 'backend shop-web__local__0')).toContain('balance leastconn');
    expect(section(text, 'backend shop-web__local__0')).toContain(
      'http-check send meth GET uri /healthz ver HTTP/1.1 hdr Host shop.example.com',
    );
    expect(section(text, 'backend shop-web__local__0')).toContain('server shop-web-1 10.0.1.3:8080 check inter 5000ms');
    expect(section(text, 'backend shop-api__local__0')).toContain('http-request replace-path ^/api/?(.*)$ /\\1');
    expect(section(text, 'backend shop-api__local__0')).toContain('timeout tunnel 1h');
    // The application's own cookie, prefixed with the server name; HAProxy inserts none of its own.
    expect(section(text, 'backend blog__local__0')).toContain('cookie SESSION prefix\n');
    expect(section(text, 'backend blog__local__0')).toContain('server blog-1 10.0.1.9:80 cookie blog-1');
    expect(section(text, 'backend status__local__0')).toContain(
      'http-request redirect location https://%[var(txn.host)]%[pathq] code 301 unless { ssl_fc }',
    );
    expect(section(text, 'backend status__local__0')).toContain('Strict-Transport-Security');
    expect(section(text, 'frontend tcp_15432')).toContain('default_backend postgres__local__0');
    expect(section(text, 'backend postgres__local__0')).toContain('mode tcp');
  });

  it('routes TLS passthrough hosts on SNI in front of the terminating frontend', () => {
    const https = SCENARIOS.find((s) => s.name === 'https');
    if (!https) throw new Error('no https scenario');
    const [httpsCfg, httpsMap] = renderHaproxy(https.routes, https.haproxy).map((f) => f.content);
    const sni = section(httpsCfg ?? '', 'frontend https_sni');
    expect(sni).toContain('bind 127.0.0.1:8443');
    expect(sni).toContain('tcp-request content set-var(txn.sni) req.ssl_sni,lower if { req.ssl_hello_type 1 }');
    expect(section(httpsCfg ?? '', 'frontend http')).toContain(
      'bind abns@interlock-https-8443 accept-proxy ssl crt certs/default.pem crt certs alpn h2,http/1.1',
    );
    expect(mapEntries(httpsMap ?? '').get('sni:vault.example.com/')).toBe('vault__local__0');
    expect(mapEntries(httpsMap ?? '').get('sni:*.vault.example.com/')).toBe('vault__local__0');
  });
});

describe('renderHaproxy: determinism', () => {
  const all = SCENARIOS.flatMap((s) => s.routes);
  const output = SCENARIOS.find((s) => s.name === 'https')?.haproxy as HaproxyOutput;

  it('renders the same bytes twice', () => {
    expect(renderHaproxy(structuredClone(all), output)).toEqual(renderHaproxy(structuredClone(all), output));
  });

  it('renders the same bytes whatever the order of routes and backends', () => {
    const reordered = shuffled(all, 7).map((r) => ({ ...r, backends: shuffled(r.backends, 3) }));
    expect(renderHaproxy(reordered, output)).toEqual(renderHaproxy(all, output));
    expect(renderHaproxy([...all].reverse(), output)).toEqual(renderHaproxy(all, output));
  });
});

describe('renderHaproxy: scale', () => {
  const output: HaproxyOutput = { ...(SCENARIOS[0]?.haproxy as HaproxyOutput), stats: undefined };
  const big = manyRoutes(10_000);
  const files = renderHaproxy(big, output);
  const cfg = file(files, 'haproxy.cfg');

  it('keeps the frontend the same with 11 routes and with 10,000: hosts live in the map only', () => {
    // 11 routes hold every kind manyRoutes makes, the wildcard included.
    const one = file(renderHaproxy(manyRoutes(11), output), 'haproxy.cfg');
    expect(section(cfg, 'frontend http')).toBe(section(one, 'frontend http'));
    expect(cfg).not.toMatch(/^\s*acl\s/m);
    expect(cfg).not.toContain('hdr(host) -i');
    // A host name appears in the config only as the Host header of its backend's health check.
    const lines = cfg.split('\n');
    for (const r of [big[0], big[4_321], big[9_999]] as Route[]) {
      for (const h of r.hosts) {
        for (const line of lines.filter((l) => l.includes(h))) expect(line).toMatch(/^ {4}http-check send /);
      }
    }
    const entries = mapEntries(file(files, 'haproxy.hosts.map'));
    expect(entries.size).toBe(big.reduce((n, r) => n + r.hosts.length + (r.path === '/' ? 0 : r.hosts.length), 0));
  });

  it('renders in time that grows linearly with the number of routes', () => {
    const small = manyRoutes(1_000);
    const tSmall = timeMin(() => renderHaproxy(small, output));
    const tBig = timeMin(() => renderHaproxy(big, output));
    // Linear is ~10x; quadratic would be ~100x. The bound leaves room for a busy machine.
    expect(tBig / tSmall).toBeLessThan(40);
    expect(tBig).toBeLessThan(10_000);
  });

  itWithTools('writes a 10,000-route config haproxy -c accepts', ['haproxy'], () => checkWithHaproxy(files), 120_000);
});

describe('renderHaproxy: config values it cannot write', () => {
  const output = SCENARIOS[0]?.haproxy as HaproxyOutput;

  it('refuses a listen address that is not an address', () => {
    expect(() => renderHaproxy([], { ...output, http: { address: '0.0.0.0:80 ssl', port: 80 } })).toThrow(RenderError);
  });

  it('refuses an output file whose map name cannot go into map_beg()', () => {
    expect(() => renderHaproxy([], { ...output, file: 'out/my proxy.cfg' })).toThrow(/map file name/);
  });

  it('quotes a certificate directory with spaces and refuses one with a line break', () => {
    const https = { address: '127.0.0.1', port: 8443, certDir: 'my certs' };
    expect(file(renderHaproxy([], { ...output, https }), 'haproxy.cfg')).toContain("crt 'my certs'");
    expect(() => renderHaproxy([], { ...output, https: { ...https, certDir: 'certs\n  bind :1' } })).toThrow(
      RenderError,
    );
  });
});
