import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { HaproxyOutput } from '../../src/config/schema.ts';
import { NO_ROUTE_BACKEND } from '../../src/render/haproxy.ts';
import { RenderError, type RenderedFile } from '../../src/render/types.ts';
import type { Route } from '../../src/routes/types.ts';
import { route } from '../fixtures/routes/base.ts';
import { SCENARIOS } from '../fixtures/routes/scenarios.ts';
import { swarmDemoRoutes } from '../fixtures/routes/swarm-demo.ts';
import { renderHaproxy } from '../helpers/render.ts';
import { haproxyCheck, itWithTools, scratchDir, selfSignedPair, selfSignedPem } from './proxy-check.ts';
import { manyRoutes, shuffled, timeMin } from './scale.ts';

/**
 * The map's and the crt-list's names hold their content hash; `haproxy.hosts.map` and
 * `haproxy.crt-list` find them whatever the hash.
 */
function file(files: readonly RenderedFile[], name: string): string {
  const f = files.find(
    (x) =>
      x.name === name ||
      (name.endsWith('.hosts.map') && x.name === mapName(files)) ||
      (name.endsWith('.crt-list') && /\.[0-9a-f]{12}\.crt-list$/.test(x.name)),
  );
  if (!f) throw new Error(`no ${name} among ${files.map((x) => x.name).join(', ')}`);
  return f.content;
}

function mapName(files: readonly RenderedFile[]): string | undefined {
  return files.find((x) => /\.hosts\.[0-9a-f]{12}\.map$/.test(x.name))?.name;
}

const sha12 = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 12);

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

      it('returns the config first, the host map named after it and its content (and the crt-list with HTTPS)', () => {
        const map = `haproxy.hosts.${sha12(files[1]?.content ?? '')}.map`;
        const crtList = `haproxy.${sha12(files[2]?.content ?? '')}.crt-list`;
        expect(files.map((f) => f.name)).toEqual(
          scenario.haproxy.https ? ['haproxy.cfg', map, crtList] : ['haproxy.cfg', map],
        );
      });

      it('matches the golden files', async () => {
        // The golden map keeps one name: its hash is in the golden config, which names it.
        for (const f of files)
          await expect(f.content).toMatchFileSnapshot(
            `../golden/${scenario.name}/${f.name.replace(/\.[0-9a-f]{12}\.(map|crt-list)$/, '.$1')}`,
          );
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
    expect(frontend).toMatch(
      /http-request set-var\(txn\.backend\) var\(txn\.route_key\),map_beg\(haproxy\.hosts\.[0-9a-f]{12}\.map\)\n/,
    );
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
    expect(section(httpsCfg ?? '', 'frontend http')).toMatch(
      /bind abns@interlock-https-8443 accept-proxy ssl crt certs\/default\.pem crt-list haproxy\.[0-9a-f]{12}\.crt-list alpn h2,http\/1\.1/,
    );
    expect(mapEntries(httpsMap ?? '').get('sni:vault.example.com/')).toBe('vault__local__0');
    expect(mapEntries(httpsMap ?? '').get('sni:*.vault.example.com/')).toBe('vault__local__0');
  });
});

describe('renderHaproxy: the map is named by its content', () => {
  const output = SCENARIOS[0]?.haproxy as HaproxyOutput;
  const named = (files: readonly RenderedFile[]) => [
    ...new Set([...(files[0]?.content ?? '').matchAll(/map_beg\(([^)]+)\)/g)].map((m) => m[1])),
  ];

  it('the config names exactly the map it comes with', () => {
    const files = renderHaproxy(swarmDemoRoutes, output);
    expect(named(files)).toEqual([files[1]?.name]);
    expect(files[0]?.content).toContain(`# Hosts and paths are in ${files[1]?.name}, next to this file.`);
  });

  it('a change of routes changes the map name, and the config with it; the same routes keep both', () => {
    const before = renderHaproxy(swarmDemoRoutes, output);
    const after = renderHaproxy(swarmDemoRoutes.slice(1), output);
    expect(after[1]?.name).not.toBe(before[1]?.name);
    expect(named(after)).toEqual([after[1]?.name]);
    expect(renderHaproxy(swarmDemoRoutes, output)).toEqual(before);
  });

  it('takes the base name of the config file', () => {
    expect(renderHaproxy([], { ...output, file: '/etc/haproxy/edge.cfg' })[1]?.name).toMatch(
      /^edge\.hosts\.[0-9a-f]{12}\.map$/,
    );
    expect(renderHaproxy([], { ...output, file: 'proxy' })[1]?.name).toMatch(/^proxy\.hosts\.[0-9a-f]{12}\.map$/);
  });
});

describe('renderHaproxy: certificates', () => {
  const output: HaproxyOutput = {
    ...(SCENARIOS[0]?.haproxy as HaproxyOutput),
    stats: undefined,
    https: { address: '127.0.0.1', port: 8443, certDir: 'certs' },
  };
  const app = (service: string, hosts: string[], tls: Partial<Route>) =>
    route({ service, hosts, backends: [{ name: `${service}-1`, address: '10.0.9.2', port: 80 }], ...tls });

  /** Runs haproxy -c on the rendered files plus cert files (name → PEM text) under certs/. */
  async function check(files: readonly RenderedFile[], certs: Record<string, string>) {
    const scratch = await scratchDir([
      ...files,
      ...Object.entries(certs).map(([name, content]) => ({ name: `certs/${name}`, content })),
    ]);
    try {
      return haproxyCheck(scratch.dir);
    } finally {
      await scratch.remove();
    }
  }

  itWithTools(
    'loads a certificate whose key is a separate file (ssl_cert + ssl_key)',
    ['haproxy', 'openssl'],
    async () => {
      const demo = selfSignedPair('demo.local');
      const other = selfSignedPair('other.local');
      const files = renderHaproxy(
        [
          app('demo', ['demo.local'], { sslCert: 'demo.local.crt', sslKey: 'demo.local.key' }),
          app('other', ['other.local'], { sslCert: 'other.local.pem', sslKey: 'other.local.pem.key' }),
        ],
        output,
      );
      const result = await check(files, {
        'demo.local.crt': demo.cert,
        'demo.local.key': demo.key,
        'other.local.pem': other.cert,
        'other.local.pem.key': other.key,
        // Files no route names do not matter: the directory is not loaded wholesale.
        'README.txt': 'not a certificate\n',
      });
      expect(result.ok, result.output).toBe(true);
      expect(result.output).not.toMatch(/\[(WARNING|ALERT)\]/);
      expect(file(files, 'haproxy.crt-list')).toMatch(/^certs\/demo\.local\.crt demo\.local$/m);
    },
  );

  itWithTools(
    'leaves out a key HAProxy 2.6 cannot pair with its certificate, and the rest loads',
    ['haproxy', 'openssl'],
    async () => {
      const demo = selfSignedPair('demo.local');
      const shop = selfSignedPair('shop.local');
      const files = renderHaproxy(
        [
          // The Interlock 2 documentation's names: HAProxy 2.6 would look for demo.local.cert.key.
          app('demo', ['demo.local'], { sslCert: 'demo.local.cert', sslKey: 'demo.local.key' }),
          app('shop', ['shop.local'], { sslCert: 'shop.local.pem' }),
        ],
        output,
      );
      const result = await check(files, {
        'demo.local.cert': demo.cert,
        'demo.local.key': demo.key,
        'shop.local.pem': `${shop.cert}${shop.key}`,
      });
      expect(result.ok, result.output).toBe(true);
      const crtList = file(files, 'haproxy.crt-list');
      expect(crtList).not.toContain('demo.local.cert');
      expect(crtList).toMatch(/^certs\/shop\.local\.pem shop\.local$/m);
      expect(file(files, 'haproxy.cfg')).toContain('# note: certificate demo.local.cert of local/demo is not loaded');
    },
  );

  it('names the crt-list by its content, and the config names exactly that one (they switch together)', () => {
    const one = renderHaproxy([app('a', ['a.example.com'], {})], output);
    const two = renderHaproxy([app('a', ['a.example.com'], {}), app('b', ['b.example.com'], {})], output);
    const listOf = (files: readonly RenderedFile[]) => files.find((f) => f.name.endsWith('.crt-list'));
    expect(listOf(one)?.name).toMatch(/^haproxy\.[0-9a-f]{12}\.crt-list$/);
    expect(listOf(two)?.name).not.toBe(listOf(one)?.name);
    for (const files of [one, two]) expect(file(files, 'haproxy.cfg')).toContain(`crt-list ${listOf(files)?.name} `);
  });

  it('gives a host without its own certificate <host>.pem, or the default certificate when there is one', () => {
    const routes = [
      app('a', ['a.example.com', '*.a.example.com'], {}),
      app('b', ['b.example.com'], { sslCert: 'b.pem' }),
    ];
    expect(file(renderHaproxy(routes, output), 'haproxy.crt-list')).toContain(
      'certs/*.a.example.com.pem *.a.example.com\ncerts/a.example.com.pem a.example.com\ncerts/b.pem b.example.com\n',
    );
    const withDefault = renderHaproxy(routes, {
      ...output,
      https: { ...output.https, defaultCert: 'default.pem' },
    } as HaproxyOutput);
    expect(file(withDefault, 'haproxy.crt-list')).not.toContain('a.example.com');
    expect(file(withDefault, 'haproxy.cfg')).toMatch(
      /ssl crt certs\/default\.pem crt-list haproxy\.[0-9a-f]{12}\.crt-list/,
    );
  });
});

describe('renderHaproxy: an absolute default certificate (as the pipeline passes it)', () => {
  it('uses the path as it is, not joined to certDir again', () => {
    const output: HaproxyOutput = {
      ...(SCENARIOS[0]?.haproxy as HaproxyOutput),
      https: { address: '127.0.0.1', port: 8443, certDir: '/srv/certs', defaultCert: '/srv/certs/default.pem' },
    };
    const cfg = file(renderHaproxy([], output), 'haproxy.cfg');
    expect(cfg).toContain('ssl crt /srv/certs/default.pem ');
    expect(cfg).not.toContain('/srv/certs//srv');
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
    const small = renderHaproxy(manyRoutes(11), output);
    const one = file(small, 'haproxy.cfg');
    // Only the map's name (its content hash) differs.
    expect(section(cfg, 'frontend http').replaceAll(mapName(files) ?? '?', 'MAP')).toBe(
      section(one, 'frontend http').replaceAll(mapName(small) ?? '?', 'MAP'),
    );
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

  it('quotes a default certificate path with spaces and refuses one with a line break', () => {
    const https = { address: '127.0.0.1', port: 8443, certDir: 'my certs', defaultCert: 'default.pem' };
    expect(file(renderHaproxy([], { ...output, https }), 'haproxy.cfg')).toContain("crt 'my certs/default.pem'");
    expect(() => renderHaproxy([], { ...output, https: { ...https, certDir: 'certs\n  bind :1' } })).toThrow(
      RenderError,
    );
  });

  it('refuses a certificate directory with spaces once a crt-list must name a file in it (a crt-list cannot quote)', () => {
    // Before the crt-list, the directory was one quoted `crt` word; the list has no quoting.
    const https = { address: '127.0.0.1', port: 8443, certDir: 'my certs' };
    const web = route({ service: 'web', hosts: ['web.example.com'] });
    expect(() => renderHaproxy([web], { ...output, https })).toThrow(/crt-list, which has no quoting/);
  });
});
