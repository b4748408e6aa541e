/**
 * ACME in the renderers: with an `acme` config, both proxies send HTTP-01 requests to the
 * controller's responder, and each ACME host gets its issued certificate, or (before one is issued)
 * the default certificate, never a `<certDir>/<host>.pem` that does not exist. Without an `acme`
 * config nothing changes (the goldens cover that). Checked by the real haproxy -c / nginx -t.
 */
import { describe, expect } from 'vitest';
import type { HaproxyOutput, NginxOutput } from '../../src/config/schema.ts';
import type { AcmeRender, RenderedFile } from '../../src/render/types.ts';
import type { Route } from '../../src/routes/types.ts';
import { route } from '../fixtures/routes/base.ts';
import { SCENARIOS } from '../fixtures/routes/scenarios.ts';
import { renderHaproxy, renderNginx } from '../helpers/render.ts';
import { haproxyCheck, itWithTools, nginxCheck, scratchDir, selfSignedPem } from './proxy-check.ts';

const app = (service: string, hosts: string[], extra: Partial<Route> = {}) =>
  route({ service, hosts, backends: [{ name: `${service}-1`, address: '127.0.0.1', port: 9 }], acme: true, ...extra });

const ROUTES = [app('shop', ['shop.example.com']), app('blog', ['blog.example.com'])];
/**
 * shop has its certificate, blog waits for one. The issuer gives absolute paths; a relative one
 * is read inside certDir, like every certificate name, which lets the checks below run in a scratch folder.
 */
const ACME: AcmeRender = {
  responder: '127.0.0.1:8402',
  certificates: new Map([
    ['shop.example.com', 'acme-shop.example.com.pem'],
    ['blog.example.com', null],
  ]),
};

async function check(
  files: readonly RenderedFile[],
  certs: Record<string, string>,
  run: (dir: string) => { ok: boolean; output: string },
) {
  const scratch = await scratchDir([...files, ...Object.entries(certs).map(([name, content]) => ({ name, content }))]);
  try {
    return run(scratch.dir);
  } finally {
    await scratch.remove();
  }
}

describe('HAProxy with ACME', () => {
  const base = SCENARIOS[0]?.haproxy as HaproxyOutput;
  const withDefault: HaproxyOutput = {
    ...base,
    stats: undefined,
    https: { address: '127.0.0.1', port: 8443, certDir: 'certs', defaultCert: 'default.pem' },
  };
  const noDefault: HaproxyOutput = { ...withDefault, https: { address: '127.0.0.1', port: 8443, certDir: 'certs' } };

  itWithTools(
    'routes HTTP-01 to the responder; issued hosts get their certificate; haproxy -c accepts it',
    ['haproxy', 'openssl'],
    async () => {
      const files = renderHaproxy(ROUTES, withDefault, { acme: ACME });
      const cfg = files[0]?.content ?? '';
      expect(cfg).toContain('use_backend interlock_acme if { path_beg /.well-known/acme-challenge/ }');
      expect(cfg).toContain('backend interlock_acme\n    mode http\n    server responder 127.0.0.1:8402\n');
      // Before the route lookup, so a host's own route cannot take the challenge.
      expect(cfg.indexOf('use_backend interlock_acme')).toBeLessThan(cfg.indexOf('use_backend %[var(txn.backend)]'));
      const crtList = files.find((f) => f.name.endsWith('.crt-list'))?.content ?? '';
      expect(crtList).toContain('certs/acme-shop.example.com.pem shop.example.com\n');
      expect(crtList).not.toContain('blog.example.com');
      const pem = selfSignedPem();
      const result = await check(
        files,
        { 'certs/default.pem': pem, 'certs/acme-shop.example.com.pem': pem },
        haproxyCheck,
      );
      expect(result.output).not.toMatch(/ALERT/);
      expect(result.ok).toBe(true);
    },
  );

  itWithTools(
    'without a default certificate, a host still waiting is left out of the crt-list (no <host>.pem)',
    ['haproxy', 'openssl'],
    async () => {
      const files = renderHaproxy(ROUTES, noDefault, { acme: ACME });
      const crtList = files.find((f) => f.name.endsWith('.crt-list'))?.content ?? '';
      expect(crtList).not.toContain('blog.example.com');
      expect(crtList).not.toContain('certs/blog');
      const result = await check(files, { 'certs/acme-shop.example.com.pem': selfSignedPem() }, haproxyCheck);
      expect(result.ok).toBe(true);
    },
  );

  itWithTools(
    'with every host waiting and no default certificate, TLS is not terminated yet, and haproxy -c accepts it',
    ['haproxy'],
    async () => {
      const waiting: AcmeRender = {
        ...ACME,
        certificates: new Map([
          ['shop.example.com', null],
          ['blog.example.com', null],
        ]),
      };
      const files = renderHaproxy(ROUTES, noDefault, { acme: waiting });
      expect(files[0]?.content).toContain('# note: TLS is not terminated: no certificate to serve');
      const result = await check(files, {}, haproxyCheck);
      expect(result.ok).toBe(true);
    },
  );

  itWithTools('a host with its own certificate (ssl_cert) keeps it', ['haproxy', 'openssl'], async () => {
    const files = renderHaproxy([app('shop', ['shop.example.com'], { sslCert: 'shop.pem' })], withDefault, {
      acme: ACME,
    });
    const crtList = files.find((f) => f.name.endsWith('.crt-list'))?.content ?? '';
    expect(crtList).toContain('certs/shop.pem shop.example.com');
    expect(crtList).not.toContain('acme-');
  });
});

describe('Nginx with ACME', () => {
  const base = SCENARIOS[0]?.nginx as NginxOutput;
  const withDefault: NginxOutput = {
    ...base,
    https: { address: '127.0.0.1', port: 8443, certDir: 'certs', defaultCert: 'default.pem' },
  };
  const noDefault: NginxOutput = { ...withDefault, https: { address: '127.0.0.1', port: 8443, certDir: 'certs' } };

  itWithTools(
    'routes HTTP-01 on the HTTP servers to the responder; issued hosts get their certificate; nginx -t accepts it',
    ['nginx', 'openssl'],
    async () => {
      const files = renderNginx(ROUTES, withDefault, { runDir: '.', acme: ACME });
      const conf = files[0]?.content ?? '';
      const location =
        'location ^~ /.well-known/acme-challenge/ {\n            proxy_pass http://127.0.0.1:8402;\n        }';
      // The default server and the two hosts on port 8081; none on the TLS listener.
      expect(conf.split(location).length - 1).toBe(3);
      expect(conf).toContain('ssl_certificate certs/acme-shop.example.com.pem;');
      expect(conf).toContain('ssl_certificate_key certs/acme-shop.example.com.pem;');
      expect(conf).not.toContain('blog.example.com.pem');
      const pem = selfSignedPem();
      const result = await check(
        files,
        { 'certs/default.pem': pem, 'certs/acme-shop.example.com.pem': pem },
        nginxCheck,
      );
      expect(result.output).not.toMatch(/emerg/);
      expect(result.ok).toBe(true);
    },
  );

  itWithTools(
    'without a default certificate, a host still waiting has no TLS server (the default one refuses it)',
    ['nginx', 'openssl'],
    async () => {
      const files = renderNginx(ROUTES, noDefault, { runDir: '.', acme: ACME });
      const conf = files[0]?.content ?? '';
      const tlsServers = conf.split('server {').filter((s) => s.includes('ssl http2'));
      expect(tlsServers.some((s) => s.includes('server_name blog.example.com'))).toBe(false);
      expect(tlsServers.some((s) => s.includes('server_name shop.example.com'))).toBe(true);
      const result = await check(files, { 'certs/acme-shop.example.com.pem': selfSignedPem() }, nginxCheck);
      expect(result.ok).toBe(true);
    },
  );
});
