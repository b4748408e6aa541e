/**
 * The specialised section writers (src/render/fast-sections.ts) write what the generic template
 * walker writes, byte for byte: on every golden scenario, with ACME, and on a generated
 * 1,000-service snapshot (every label feature of the benchmark). They are tied to the shipped
 * templates' section texts, and a template whose section differs renders through the walker.
 */
import { describe, expect, it } from 'vitest';
import { syntheticSnapshot } from '../../bench/lib/synthetic.ts';
import { mapSnapshot } from '../../src/cluster/snapshot-map.ts';
import type { HaproxyOutput, NginxOutput } from '../../src/config/schema.ts';
import { BODY, HAPROXY_FAST, NGINX_FAST } from '../../src/render/fast-sections.ts';
import { haproxyView } from '../../src/render/haproxy.ts';
import { type FastSection, renderTemplate } from '../../src/render/mustache.ts';
import { nginxView } from '../../src/render/nginx.ts';
import type { AcmeRender } from '../../src/render/types.ts';
import { buildRoutes } from '../../src/routes/build.ts';
import type { Route } from '../../src/routes/types.ts';
import { SCENARIOS } from '../fixtures/routes/scenarios.ts';
import { BUILT_IN, renderHaproxy, renderNginx } from '../helpers/render.ts';

const ACME: AcmeRender = {
  responder: '127.0.0.1:8402',
  certificates: new Map([
    ['shop.example.com', 'acme-shop.example.com.pem'],
    ['blog.example.com', null],
  ]),
};

/** The same writers, counting their calls (a fresh list: compiled anew). */
function counted(fast: readonly FastSection[]): { fast: FastSection[]; calls: Map<string, number> } {
  const calls = new Map<string, number>();
  return {
    calls,
    fast: fast.map((f) => ({
      ...f,
      write: (items: readonly unknown[]) => {
        calls.set(f.name, (calls.get(f.name) ?? 0) + 1);
        return f.write(items);
      },
    })),
  };
}

interface Case {
  name: string;
  routes: Route[];
  haproxy: HaproxyOutput;
  nginx: NginxOutput;
  acme?: AcmeRender;
}

function generated(services: number): Route[] {
  const { state } = mapSnapshot(syntheticSnapshot({ services }), { cluster: 'bench' });
  return buildRoutes(
    [state],
    [
      { kind: 'interlock', allowRawDirectives: false },
      { kind: 'docker-lb', allowRawDirectives: false },
    ],
  ).routes;
}

const https = SCENARIOS[1] as (typeof SCENARIOS)[number];
const CASES: Case[] = [
  ...SCENARIOS.map((s) => ({ name: s.name, routes: s.routes, haproxy: s.haproxy, nginx: s.nginx })),
  { name: 'https with ACME', routes: https.routes, haproxy: https.haproxy, nginx: https.nginx, acme: ACME },
  { name: 'generated 1,000 services', routes: generated(1000), haproxy: https.haproxy, nginx: https.nginx },
  {
    // Issue 14's pages, maintenance and basic auth (the writers' internalPage branch).
    name: 'https with error pages, maintenance and basic auth',
    routes: https.routes.map((r, i) =>
      i === 0
        ? { ...r, policies: { ...r.policies, errorPage: { file: 'oops.html', content: '<h1>oops</h1>' } } }
        : i === 1
          ? {
              ...r,
              policies: {
                ...r.policies,
                maintenance: true as const,
                errorPage: { file: 'down.html', content: '<h1>down</h1>' },
                basicAuth: {
                  file: 'users',
                  realm: 'ops',
                  users: [{ name: 'ann', hash: '$2y$05$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234' }],
                },
              },
            }
          : r,
    ),
    haproxy: https.haproxy,
    nginx: https.nginx,
  },
  {
    name: 'generated 1,000 services, plain HTTP',
    routes: generated(1000),
    haproxy: SCENARIOS[0]?.haproxy as HaproxyOutput,
    nginx: SCENARIOS[0]?.nginx as NginxOutput,
  },
];

describe('specialised section writers', () => {
  for (const c of CASES) {
    it(`write what the generic walker writes: ${c.name}`, () => {
      const h = haproxyView(c.routes, c.haproxy, c.acme).view;
      const hFast = counted(HAPROXY_FAST);
      const haproxy = renderTemplate(BUILT_IN['haproxy.cfg'], h, hFast.fast);
      expect(haproxy).toBe(renderTemplate(BUILT_IN['haproxy.cfg'], h));
      expect(hFast.calls.get('backends')).toBe(1);

      const n = nginxView(c.routes, c.nginx, '.', c.acme);
      const nFast = counted(NGINX_FAST);
      const nginx = renderTemplate(BUILT_IN['nginx.conf'], n, nFast.fast);
      expect(nginx).toBe(renderTemplate(BUILT_IN['nginx.conf'], n));
      expect(nFast.calls.get('upstreams')).toBe(1);
      expect(nFast.calls.get('servers')).toBe(1);

      // The renderers use them.
      expect(renderHaproxy(c.routes, c.haproxy, c.acme ? { acme: c.acme } : {})[0]?.content).toBe(haproxy);
      expect(renderNginx(c.routes, c.nginx, { runDir: '.', ...(c.acme ? { acme: c.acme } : {}) })[0]?.content).toBe(
        nginx,
      );
    });
  }

  it('are tied to the shipped templates’ section texts', () => {
    expect(BUILT_IN['haproxy.cfg']).toContain(`{{#backends}}${BODY.haproxyBackends}{{/backends}}`);
    expect(BUILT_IN['nginx.conf']).toContain(`{{#upstreams}}${BODY.nginxUpstreams}{{/upstreams}}`);
    expect(BUILT_IN['nginx.conf']).toContain(`{{#servers}}${BODY.nginxServers}{{/servers}}`);
  });

  it('leave a section with another text to the walker (a template override renders as written)', () => {
    const c = CASES[0] as Case;
    const view = haproxyView(c.routes, c.haproxy).view;
    const changed = BUILT_IN['haproxy.cfg'].replace('backend {{name}}\n', 'backend {{name}} # mine\n');
    const { fast, calls } = counted(HAPROXY_FAST);
    const out = renderTemplate(changed, view, fast);
    expect(calls.size).toBe(0);
    expect(out).toBe(renderTemplate(changed, view));
    expect(out).toContain(' # mine\n');
    // A section nested elsewhere with the same name is not the top-level one.
    const nested = `{{#wrap}}{{#backends}}${BODY.haproxyBackends}{{/backends}}{{/wrap}}`;
    const { fast: f2, calls: c2 } = counted(HAPROXY_FAST);
    expect(renderTemplate(nested, { ...view, wrap: true }, f2)).toBe(renderTemplate(nested, { ...view, wrap: true }));
    expect(c2.size).toBe(0);
  });
});

/** The same routes as new objects: nothing the writers kept applies to them. */
const fresh = (routes: readonly Route[]): Route[] => routes.map((r) => structuredClone(r));

/** The same output with other settings a section's text depends on (HTTPS port, file name). */
function other<O extends HaproxyOutput | NginxOutput>(o: O): O {
  const file = o.file.replace(/([^/]+)$/, 'other-$1');
  return { ...o, file, ...(o.https ? { https: { ...o.https, port: o.https.port + 1000 } } : {}) };
}

describe("the writers' memo (a section's text kept per route object)", () => {
  for (const c of CASES) {
    it(`renders what a fresh render writes, whatever was rendered before: ${c.name}`, () => {
      const opts = c.acme ? { acme: c.acme } : {};
      for (const output of [c.haproxy, other(c.haproxy), c.haproxy]) {
        const memo = renderHaproxy(c.routes, output, opts).map((f) => f.content);
        expect(memo).toEqual(renderHaproxy(fresh(c.routes), output, opts).map((f) => f.content));
      }
      for (const output of [c.nginx, other(c.nginx), c.nginx]) {
        const memo = renderNginx(c.routes, output, { runDir: '.', ...opts }).map((f) => f.content);
        expect(memo).toEqual(renderNginx(fresh(c.routes), output, { runDir: '.', ...opts }).map((f) => f.content));
      }
    });
  }

  it('writes a changed route again (a new object), and only names move with the order', () => {
    const routes = generated(50);
    const before = renderHaproxy(routes, https.haproxy)[0]?.content ?? '';
    const i = routes.findIndex((r) => r.backends.length > 0);
    const r = routes[i] as Route;
    const changed = [...routes];
    changed[i] = { ...r, backends: r.backends.map((b) => ({ ...b, address: '10.99.99.99' })) };
    const after = renderHaproxy(changed, https.haproxy)[0]?.content ?? '';
    expect(before).not.toContain('10.99.99.99');
    expect(after).toContain('10.99.99.99');
    expect(after).toBe(renderHaproxy(fresh(changed), https.haproxy)[0]?.content);
    // a route gone: the others keep their texts, the file is what a fresh render writes
    const fewer = routes.filter((_, k) => k !== i);
    expect(renderHaproxy(fewer, https.haproxy)[0]?.content).toBe(
      renderHaproxy(fresh(fewer), https.haproxy)[0]?.content,
    );
  });
});
