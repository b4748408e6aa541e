import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { NginxOutput } from '../../src/config/schema.ts';
import { RenderError, type RenderedFile } from '../../src/render/types.ts';
import { route } from '../fixtures/routes/base.ts';
import { HTTPS_CERT_FILES } from '../fixtures/routes/https.ts';
import { SCENARIOS } from '../fixtures/routes/scenarios.ts';
import { swarmDemoRoutes } from '../fixtures/routes/swarm-demo.ts';
import { renderNginx } from '../helpers/render.ts';
import { itWithTools, nginxCheck, scratchDir, selfSignedPem } from './proxy-check.ts';
import { manyRoutes, shuffled, timeMin } from './scale.ts';

function only(files: readonly RenderedFile[]): string {
  expect(files).toHaveLength(1);
  return files[0]?.content ?? '';
}

/** The `server { ... }` block whose server_name line is exactly `names`. */
function serverBlock(conf: string, names: string, listen = '127.0.0.1:8081'): string {
  const blocks = conf.split('\n    server {\n').slice(1);
  const found = blocks.find((b) => b.includes(`listen ${listen};`) && b.includes(`server_name ${names};`));
  if (!found) throw new Error(`no server block for ${names} on ${listen}`);
  return found.slice(0, found.indexOf('\n    }\n'));
}

/** Renders with `runDir` set to a scratch dir holding the certificates, then runs nginx -t there. */
async function checkWithNginx(
  routes: Parameters<typeof renderNginx>[0],
  output: NginxOutput,
  certFiles: readonly string[] = [],
  runDir?: 'absolute',
): Promise<void> {
  const pem = certFiles.length > 0 ? selfSignedPem() : '';
  const scratch = await scratchDir(certFiles.map((c) => ({ name: `certs/${c}`, content: pem })));
  try {
    const files = renderNginx(routes, output, { runDir: runDir === 'absolute' ? scratch.dir : '.' });
    for (const f of files) await writeFile(path.join(scratch.dir, f.name), f.content);
    const result = nginxCheck(scratch.dir);
    expect(result.ok, result.output).toBe(true);
    expect(result.output).not.toMatch(/\[(warn|emerg|alert|crit)\]/);
  } finally {
    await scratch.remove();
  }
}

describe('renderNginx: golden scenarios', () => {
  for (const scenario of SCENARIOS) {
    describe(scenario.name, () => {
      const files = renderNginx(scenario.routes, scenario.nginx, { runDir: '.' });

      it('returns one file named after the output file', () => {
        expect(files.map((f) => f.name)).toEqual(['nginx.conf']);
      });

      it('matches the golden file', async () => {
        await expect(only(files)).toMatchFileSnapshot(`../golden/${scenario.name}/nginx.conf`);
      });

      const tools = scenario.certFiles.length > 0 ? ['nginx', 'openssl'] : ['nginx'];
      itWithTools('is accepted by nginx -t with a relative runDir', tools, () =>
        checkWithNginx(scenario.routes, scenario.nginx, scenario.certFiles),
      );
    });
  }

  itWithTools('is accepted by nginx -t with an absolute runDir', ['nginx'], async () => {
    const scenario = SCENARIOS[0];
    if (!scenario) throw new Error('no scenario');
    await checkWithNginx(scenario.routes, scenario.nginx, [], 'absolute');
  });
});

describe('renderNginx: servers and locations', () => {
  const output = SCENARIOS[0]?.nginx as NginxOutput;
  const conf = only(renderNginx(swarmDemoRoutes, output, { runDir: '/var/run/interlock' }));

  it('puts the pid file, error log and every temp path under runDir', () => {
    expect(conf).toContain('pid /var/run/interlock/nginx.pid;');
    expect(conf).toContain('error_log /var/run/interlock/error.log warn;');
    for (const t of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) {
      expect(conf).toContain(`${t}_temp_path /var/run/interlock/${t}_temp;`);
    }
  });

  it('answers 503 on the default server', () => {
    expect(serverBlock(conf, '_', '127.0.0.1:8081 default_server')).toContain('location / {\n            return 503;');
  });

  it('routes /api (and not /apix) to the API, stripping the prefix, with websocket headers on /api/ws', () => {
    const shop = serverBlock(conf, 'shop.example.com');
    expect(shop).toContain(
      'location = /api {\n            # local/shop-api\n            proxy_pass http://shop-api__local__0/;',
    );
    expect(shop).toContain(
      'location /api/ {\n            # local/shop-api\n            proxy_pass http://shop-api__local__0/;',
    );
    expect(shop).toContain(
      'location /api/ws/ {\n            # local/shop-api\n            proxy_pass http://shop-api__local__0/ws/;',
    );
    expect(shop).toMatch(/location \/api\/ws\/ \{[^}]*proxy_set_header Connection \$connection_upgrade;/);
    expect(shop).toContain(
      'location / {\n            # local/shop-web\n            proxy_pass http://shop-web__local__0;',
    );
    // Longest first.
    expect(shop.indexOf('location /api/ws/')).toBeLessThan(shop.indexOf('location /api/ {'));
    expect(shop.indexOf('location /api/ {')).toBeLessThan(shop.indexOf('location / {'));
  });

  it('gives hosts whose blocks are the same one server block, and the alias its own when they differ', () => {
    expect(serverBlock(conf, 'www.example.com')).toContain('proxy_pass http://shop-web__local__0;');
    expect(serverBlock(conf, 'www.example.com')).not.toContain('/api');
    const shared = only(
      renderNginx([route({ service: 'web', hosts: ['a.example.com', 'b.example.com'], backends: [] })], output, {
        runDir: '.',
      }),
    );
    expect(serverBlock(shared, 'a.example.com b.example.com')).toContain('return 503;');
  });

  it("implements cookie affinity with a consistent hash; only its own pin cookie is set, never the application's", () => {
    expect(conf).toMatch(/upstream blog__local__0 \{\n\s+hash \$interlock_sticky_key_0 consistent;/);
    expect(conf).toContain('"~(?:^|;) *interlock_sticky=([^;]+)" $1;\n        "~(?:^|;) *SESSION=([^;]+)" $1;');
    expect(conf).toContain('default "interlock_sticky=$request_id; Path=/; HttpOnly";');
    expect(conf).not.toContain('"SESSION=$request_id');
    expect(serverBlock(conf, 'news.example.com')).toContain('add_header Set-Cookie $interlock_sticky_set_0;');
  });

  it('redirects with the redirect label, and plain HTTP of ssl-only routes to HTTPS', () => {
    expect(serverBlock(conf, 'blog.example.com')).toContain('return 302 https://blog.example.com$request_uri;');
    expect(serverBlock(conf, 'news.example.com')).not.toContain('return 301');
    expect(serverBlock(conf, 'status.example.com')).toContain('return 301 https://$host$request_uri;');
  });

  it('uses passive health checks', () => {
    expect(conf).toContain('server 10.0.1.3:8080 max_fails=3 fail_timeout=5s;');
  });

  it('serves TCP routes in a stream block, on the HTTP listen address (as HAProxy does)', () => {
    // Before, the route was left out with a note: "it needs the Nginx stream module".
    expect(conf).not.toContain('is not served');
    expect(conf).toMatch(/^load_module \/usr\/lib\/nginx\/modules\/ngx_stream_module\.so;$/m);
    const stream = conf.slice(conf.indexOf('\nstream {\n'));
    expect(stream).toContain('upstream postgres__local__0 {');
    expect(stream).toMatch(/server \{\n {8}listen 127\.0\.0\.1:15432;\n {8}proxy_pass postgres__local__0;\n/);
  });

  it('serves TLS per host with its certificate, HSTS on ssl-only routes, and refuses unknown names without a default certificate', () => {
    const https = SCENARIOS.find((s) => s.name === 'https');
    if (!https) throw new Error('no https scenario');
    // Without passthrough routes, the TLS servers listen on the HTTPS port themselves.
    const routes = https.routes.filter((r) => !r.sslPassthrough);
    const tls = only(renderNginx(routes, https.nginx, { runDir: '.' }));
    const shop = serverBlock(tls, 'shop.example.com', '127.0.0.1:8443 ssl http2');
    expect(shop).toContain('ssl_certificate certs/shop.pem;');
    const status = serverBlock(tls, 'status.example.com', '127.0.0.1:8443 ssl http2');
    expect(status).toContain('ssl_certificate certs/default.pem;');
    expect(status).toContain('add_header Strict-Transport-Security "max-age=31536000" always;');
    expect(serverBlock(tls, 'status.example.com')).toContain('return 301 https://$host:8443$request_uri;');
    const { certDir } = https.nginx.https ?? { certDir: '' };
    const noDefault = only(
      renderNginx(routes, { ...https.nginx, https: { address: '127.0.0.1', port: 8443, certDir } }, { runDir: '.' }),
    );
    expect(serverBlock(noDefault, '_', '127.0.0.1:8443 ssl http2 default_server')).toContain(
      'ssl_reject_handshake on;',
    );
  });
});

describe('renderNginx: TLS passthrough', () => {
  const https = SCENARIOS.find((s) => s.name === 'https');
  if (!https) throw new Error('no https scenario');
  const conf = only(renderNginx(https.routes, https.nginx, { runDir: '/run/ilk' }));
  const stream = conf.slice(conf.indexOf('\nstream {\n'));

  it('reads the SNI name on the HTTPS port and passes passthrough hosts through untouched', () => {
    expect(conf).not.toContain('is not served');
    expect(conf).toMatch(/^load_module \/usr\/lib\/nginx\/modules\/ngx_stream_module\.so;$/m);
    expect(stream).toContain('listen 127.0.0.1:8443;');
    expect(stream).toContain('ssl_preread on;');
    expect(stream).toMatch(/map \$ssl_preread_server_name \$interlock_tls_target \{\n {8}hostnames;\n/);
    expect(stream).toContain('        vault.example.com interlock_tls_passthrough;');
    expect(stream).toContain('        *.vault.example.com interlock_tls_passthrough;');
    expect(stream).toContain('        default interlock_tls_terminate;');
    expect(stream).toContain('        vault.example.com vault__local__0;');
    expect(stream).toMatch(/upstream vault__local__0 \{\n {8}server 10\.0\.3\.2:8200 max_fails=3 fail_timeout=2s;/);
  });

  it("hands everything else to Nginx's own TLS servers, with the client address in the PROXY protocol", () => {
    expect(stream).toContain('server unix:/run/ilk/interlock-https.sock;');
    expect(stream).toContain('proxy_protocol on;');
    expect(
      serverBlock(conf, 'shop.example.com', 'unix:/run/ilk/interlock-https.sock ssl http2 proxy_protocol'),
    ).toContain('ssl_certificate certs/shop.pem;');
    expect(conf).toContain('    set_real_ip_from unix:;\n    real_ip_header proxy_protocol;\n');
    expect(conf).not.toContain('listen 127.0.0.1:8443 ssl');
  });

  it('loads no module when told it is compiled in, and none when nothing needs the stream module', () => {
    const builtIn = only(renderNginx(https.routes, { ...https.nginx, streamModule: false }, { runDir: '.' }));
    expect(builtIn).not.toContain('load_module');
    expect(builtIn).toContain('ssl_preread on;');
    const httpOnly = swarmDemoRoutes.filter((r) => r.mode === 'http');
    const plain = only(renderNginx(httpOnly, SCENARIOS[0]?.nginx as NginxOutput, { runDir: '.' }));
    expect(plain).not.toContain('load_module');
    expect(plain).not.toContain('stream {');
  });
});

describe('renderNginx: an absolute default certificate (as the pipeline passes it)', () => {
  it('uses the path as it is, not joined to certDir again', () => {
    const https = SCENARIOS.find((s) => s.name === 'https');
    if (!https) throw new Error('no https scenario');
    const tls = only(
      renderNginx(
        https.routes,
        {
          ...https.nginx,
          https: { address: '127.0.0.1', port: 8443, certDir: '/srv/certs', defaultCert: '/srv/certs/default.pem' },
        },
        { runDir: '.' },
      ),
    );
    expect(tls).toContain('ssl_certificate /srv/certs/default.pem;');
    expect(tls).toContain('ssl_certificate_key /srv/certs/default.pem;');
    expect(tls).not.toContain('/srv/certs//srv');
  });
});

describe('renderNginx: determinism', () => {
  const all = SCENARIOS.flatMap((s) => s.routes);
  const output = SCENARIOS.find((s) => s.name === 'https')?.nginx as NginxOutput;

  it('renders the same bytes twice', () => {
    expect(renderNginx(structuredClone(all), output, { runDir: '.' })).toEqual(
      renderNginx(structuredClone(all), output, { runDir: '.' }),
    );
  });

  it('renders the same bytes whatever the order of routes and backends', () => {
    const reordered = shuffled(all, 11).map((r) => ({ ...r, backends: shuffled(r.backends, 5) }));
    expect(renderNginx(reordered, output, { runDir: '.' })).toEqual(renderNginx(all, output, { runDir: '.' }));
    expect(renderNginx([...all].reverse(), output, { runDir: '.' })).toEqual(renderNginx(all, output, { runDir: '.' }));
  });
});

describe('renderNginx: scale', () => {
  const output = SCENARIOS[0]?.nginx as NginxOutput;
  const big = manyRoutes(10_000);

  it('renders in time that grows linearly with the number of routes', () => {
    const small = manyRoutes(1_000);
    const tSmall = timeMin(() => renderNginx(small, output, { runDir: '.' }));
    const tBig = timeMin(() => renderNginx(big, output, { runDir: '.' }));
    // Linear is ~10x; quadratic would be ~100x. The bound leaves room for a busy machine.
    expect(tBig / tSmall).toBeLessThan(40);
    expect(tBig).toBeLessThan(10_000);
  });

  // Sizes the server name hash for 20,000 names; nginx -t fails or warns when it is too small.
  itWithTools('writes a 10,000-route config nginx -t accepts', ['nginx'], () => checkWithNginx(big, output), 120_000);

  // The SNI maps of TLS passthrough (stream block) are hashes too: Nginx's defaults (2,048 entries,
  // 64-byte buckets) refuse a long name and warn past a few thousand names.
  const https = SCENARIOS.find((s) => s.name === 'https') as (typeof SCENARIOS)[number];
  const label = 'a'.repeat(60);
  const passthrough = (n: number) =>
    Array.from({ length: n }, (_, i) =>
      route({
        service: `tls-${i}`,
        hosts: [i === 0 ? `${label}.${label}.${label}.example.com` : `tls-${i}.example.com`],
        sslPassthrough: true,
        backends: [{ name: `tls-${i}-1`, address: '127.0.0.1', port: 9443 }],
      }),
    );

  it('sizes the SNI maps of TLS passthrough for their names, only where the defaults fall short', () => {
    const few = only(renderNginx(passthrough(3).slice(1), https.nginx, { runDir: '.' }));
    expect(few).not.toContain('map_hash_');
    const many = only(renderNginx(passthrough(5_000), https.nginx, { runDir: '.' }));
    const stream = many.slice(many.indexOf('\nstream {\n'));
    expect(stream).toMatch(/^ {4}map_hash_max_size \d+;\n {4}map_hash_bucket_size \d+;$/m);
  });

  itWithTools(
    'writes a config with 5,000 passthrough hosts and a 200-character one that nginx -t accepts',
    ['nginx', 'openssl'],
    () => checkWithNginx(passthrough(5_000), https.nginx, HTTPS_CERT_FILES),
    120_000,
  );
});

describe('renderNginx: config values it cannot write', () => {
  const output = SCENARIOS[0]?.nginx as NginxOutput;

  it('quotes a runDir with spaces and refuses one with `$` or a line break', () => {
    expect(only(renderNginx([], output, { runDir: '/srv/my proxy' }))).toContain('pid "/srv/my proxy/nginx.pid";');
    expect(() => renderNginx([], output, { runDir: '/srv/$x' })).toThrow(RenderError);
    expect(() => renderNginx([], output, { runDir: '/srv\n' })).toThrow(RenderError);
  });
});
