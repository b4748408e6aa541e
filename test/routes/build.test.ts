import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { ClusterState, ServiceState, TaskState } from '../../src/cluster/model.ts';
import type { SnapshotDocument } from '../../src/cluster/snapshot.ts';
import { mapSnapshot, parseSnapshotText } from '../../src/cluster/snapshot-map.ts';
import type { RuleConfig, RuleFunction } from '../../src/config/schema.ts';
import { formatText } from '../../src/diagnostics.ts';
import { buildRoutes } from '../../src/routes/build.ts';
import type { Route, RouteSpec } from '../../src/routes/types.ts';
import { GOOD_SERVICES, HOSTILE_CLUSTER, hostileCases, hostileSnapshot } from '../fixtures/hostile-values.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const demoText = readFileSync(path.join(ROOT, 'examples/swarm-demo.snapshot.json'), 'utf8');
const BOTH: RuleConfig[] = [
  { kind: 'interlock', allowRawDirectives: false },
  { kind: 'docker-lb', allowRawDirectives: false },
];

function demo(): SnapshotDocument {
  return parseSnapshotText(demoText, 'swarm-demo.json');
}

function task(
  id: string,
  slot: number | undefined,
  addresses: Record<string, string>,
  over: Partial<TaskState> = {},
): TaskState {
  return {
    id,
    ...(slot === undefined ? {} : { slot }),
    nodeId: 'node1',
    nodeAddress: '192.0.2.1',
    addresses: Object.entries(addresses).map(([network, address]) => ({ network, address })),
    hostPorts: [],
    ...over,
  };
}

function svc(name: string, labels: Record<string, string>, over: Partial<ServiceState> = {}): ServiceState {
  return {
    id: `id-${name}`,
    name,
    mode: 'replicated',
    labels,
    networks: ['appnet'],
    vips: [{ network: 'appnet', address: '10.0.9.1' }],
    ingressPorts: [],
    tasks: [
      task(`${name}task0000001`, 1, { appnet: '10.0.0.11' }),
      task(`${name}task0000002`, 2, { appnet: '10.0.0.12' }),
    ],
    ...over,
  };
}

function cluster(name: string, services: ServiceState[], over: Partial<ClusterState> = {}): ClusterState {
  return {
    cluster: name,
    swarm: true,
    services,
    nodes: [
      { id: 'node1aaaaaaaaaaaa', hostname: 'n1', address: '192.0.2.1', role: 'manager', ready: true, available: true },
      { id: 'node2bbbbbbbbbbbb', hostname: 'n2', address: '192.0.2.2', role: 'worker', ready: true, available: true },
      { id: 'node3cccccccccccc', hostname: 'n3', address: '192.0.2.3', role: 'worker', ready: false, available: true },
    ],
    networks: [{ id: 'n-app', name: 'appnet', driver: 'overlay', scope: 'swarm' }],
    ...over,
  };
}

const web = (host = 'web.example.com', extra: Record<string, string> = {}) => ({
  'interlock.hostname': host,
  'interlock.port': '8080',
  ...extra,
});

describe('buildRoutes on the swarm-demo capture', () => {
  const states = [mapSnapshot(demo(), { cluster: 'local', nodeAddress: '127.0.0.1' }).state];
  const result = buildRoutes(states, BOTH);

  it('routes every labelled running service, leaves out the scaled-to-zero one, and reports nothing', () => {
    expect(result.diagnostics).toEqual([]);
    expect(result.skipped).toEqual([{ cluster: 'local', service: 'paused', reason: 'no running tasks' }]);
    expect(result.routes.map((r) => [r.service, r.rule, r.hosts, r.path])).toEqual([
      ['blog', 'docker-lb', ['blog.example.com', 'news.example.com'], '/'],
      ['shop-api', 'interlock', ['shop.example.com'], '/api'],
      ['shop-web', 'interlock', ['shop.example.com', 'www.example.com'], '/'],
      ['status', 'interlock', ['status.example.com'], '/'],
    ]);
  });

  it('routes shop-web to its three tasks on appnet with its health check and balance', () => {
    expect(result.routes.find((r) => r.service === 'shop-web')).toEqual({
      cluster: 'local',
      service: 'shop-web',
      createdAt: '2026-11-23T19:13:51.433Z',
      rule: 'interlock',
      mode: 'http',
      hosts: ['shop.example.com', 'www.example.com'],
      path: '/',
      stripPath: false,
      backends: [
        { name: 'shop-web-1', address: '10.0.1.12', port: 8080 },
        { name: 'shop-web-2', address: '10.0.1.13', port: 8080 },
        { name: 'shop-web-3', address: '10.0.1.14', port: 8080 },
      ],
      balance: 'leastconn',
      healthCheck: { path: '/healthz', intervalMs: 5000 },
      ipHash: false,
      websocketPaths: [],
      sslOnly: false,
      sslPassthrough: false,
      redirects: [],
      defaultBackend: false,
      rawBackendOptions: [],
    } satisfies Route);
  });

  it('routes shop-api under /api, stripped, with its websocket, to two tasks on appnet (not backnet)', () => {
    const api = result.routes.find((r) => r.service === 'shop-api');
    expect(api).toMatchObject({ path: '/api', stripPath: true, websocketPaths: ['/api/ws'], balance: 'roundrobin' });
    expect(api?.backends).toEqual([
      { name: 'shop-api-1', address: '10.0.1.7', port: 9000 },
      { name: 'shop-api-2', address: '10.0.1.8', port: 9000 },
    ]);
  });

  it('routes blog with its sticky cookie and redirect', () => {
    const blog = result.routes.find((r) => r.service === 'blog');
    expect(blog).toMatchObject({
      stickyCookie: 'SESSION',
      redirects: [{ from: 'http://blog.example.com', to: 'https://blog.example.com' }],
      backends: [{ name: 'blog-1', address: '10.0.1.10', port: 80 }],
    });
  });

  it('reaches status on its host-published port on the node address, ssl-only', () => {
    const status = result.routes.find((r) => r.service === 'status');
    expect(status).toMatchObject({
      sslOnly: true,
      backends: [{ name: 'status-1', address: '127.0.0.1', port: 18090 }],
    });
    const doc = demo();
    for (const n of doc.nodes as { Status: { Addr: string } }[]) n.Status.Addr = '192.0.2.10';
    const own = buildRoutes([mapSnapshot(doc, { cluster: 'local' }).state], BOTH);
    expect(own.routes.find((r) => r.service === 'status')?.backends).toEqual([
      { name: 'status-1', address: '192.0.2.10', port: 18090 },
    ]);
    const over = buildRoutes([mapSnapshot(doc, { cluster: 'local', nodeAddress: '127.0.0.1' }).state], BOTH);
    expect(over.routes.find((r) => r.service === 'status')?.backends).toEqual([
      { name: 'status-1', address: '127.0.0.1', port: 18090 },
    ]);
  });

  it('reads only interlock labels by default', () => {
    const byDefault = buildRoutes(states, undefined);
    expect(byDefault.diagnostics).toEqual([]);
    expect(byDefault.routes.map((r) => r.service)).toEqual(['shop-api', 'shop-web', 'status']);
  });

  it('gives the same bytes whatever order the API listed things in', () => {
    const doc = demo();
    for (const key of ['services', 'tasks', 'networks', 'nodes', 'containers'] as const) doc[key]?.reverse();
    const again = buildRoutes([mapSnapshot(doc, { cluster: 'local', nodeAddress: '127.0.0.1' }).state], BOTH);
    expect(JSON.stringify(again)).toBe(JSON.stringify(result));
  });
});

describe('buildRoutes: finding backends', () => {
  it('leaves out a service whose network it is not attached to, naming cluster, service, label and fix', () => {
    const r = buildRoutes(
      [
        cluster('prod', [
          svc('web', web('web.example.com', { 'interlock.network': 'backnet' })),
          svc('ok', web('ok.example.com')),
        ]),
      ],
      undefined,
    );
    expect(r.routes.map((x) => x.service)).toEqual(['ok']);
    expect(r.diagnostics).toEqual([
      {
        severity: 'error',
        code: 'network-unknown',
        message: 'the service is not attached to network backnet (attached to: appnet); the service is left out',
        fix: 'set label interlock.network to one of: appnet',
        cluster: 'prod',
        service: 'web',
        label: 'interlock.network',
      },
    ]);
  });

  it('asks for a network when the service is on several', () => {
    const r = buildRoutes([cluster('prod', [svc('web', web(), { networks: ['appnet', 'backnet'] })])], undefined);
    expect(r.routes).toEqual([]);
    expect(r.diagnostics.map((d) => [d.code, d.label, d.fix])).toEqual([
      ['network-ambiguous', 'interlock.network', 'set label interlock.network to the one the proxy reaches it on'],
    ]);
  });

  it('asks for a port rather than guessing one', () => {
    const r = buildRoutes([cluster('prod', [svc('web', { 'interlock.hostname': 'web.example.com' })])], undefined);
    expect(r.routes).toEqual([]);
    expect(r.diagnostics).toEqual([
      {
        severity: 'error',
        code: 'port-missing',
        message: 'no port: Swarm does not say which port a service listens on; the service is left out',
        fix: 'set label interlock.port to the port the service listens on inside its tasks',
        cluster: 'prod',
        service: 'web',
        label: 'interlock.port',
      },
    ]);
  });

  it('uses only tasks that have an address on the network', () => {
    const s = svc('web', web(), {
      tasks: [task('aaaaaaaaaaaaaaaa', 1, { appnet: '10.0.0.11' }), task('bbbbbbbbbbbbbbbb', 2, { other: '10.5.0.2' })],
    });
    expect(buildRoutes([cluster('prod', [s])], undefined).routes[0]?.backends).toEqual([
      { name: 'web-1', address: '10.0.0.11', port: 8080 },
    ]);
  });

  it('names backends by slot, by task id for global services, and both when a rolling update doubles a slot', () => {
    const s = svc('web', web(), {
      tasks: [
        task('aaaaaaaaaaaaaaaaaaaa', 1, { appnet: '10.0.0.11' }),
        task('bbbbbbbbbbbbbbbbbbbb', 1, { appnet: '10.0.0.12' }),
        task('cccccccccccccccccccc', 2, { appnet: '10.0.0.13' }),
        task('dddddddddddddddddddd', undefined, { appnet: '10.0.0.14' }),
      ],
    });
    expect(buildRoutes([cluster('prod', [s])], undefined).routes[0]?.backends.map((b) => b.name)).toEqual([
      'web-1-aaaaaaaaaaaa',
      'web-1-bbbbbbbbbbbb',
      'web-2',
      'web-dddddddddddd',
    ]);
  });

  it('routes to the service VIP in vip mode, and refuses stickiness through a VIP', () => {
    const labels = {
      'com.docker.lb.hosts': 'vip.example.com',
      'com.docker.lb.port': '80',
      'com.docker.lb.backend_mode': 'vip',
    };
    const ok = buildRoutes([cluster('prod', [svc('vip', labels)])], BOTH);
    expect(ok.diagnostics).toEqual([]);
    expect(ok.routes[0]?.backends).toEqual([{ name: 'vip-vip', address: '10.0.9.1', port: 80 }]);
    const sticky = buildRoutes(
      [cluster('prod', [svc('vip', { ...labels, 'com.docker.lb.sticky_session_cookie': 'S' })])],
      BOTH,
    );
    expect(sticky.routes).toEqual([]);
    expect(sticky.diagnostics.map((d) => [d.code, d.label])).toEqual([
      ['route-invalid', 'com.docker.lb.sticky_session_cookie'],
    ]);
    expect(sticky.diagnostics[0]?.message).toMatch(/sticky sessions need task addresses/);
  });

  describe('published ports', () => {
    const published = (over: Partial<ServiceState>) =>
      svc('pub', web('pub.example.com'), { networks: [], vips: [], ...over });

    it('reaches host-mode ports on each task node', () => {
      const s = published({
        tasks: [
          task(
            'aaaaaaaaaaaaaaaa',
            1,
            {},
            {
              nodeAddress: '192.0.2.1',
              hostPorts: [{ target: 8080, published: 30001, protocol: 'tcp', mode: 'host' }],
            },
          ),
          task(
            'bbbbbbbbbbbbbbbb',
            2,
            {},
            {
              nodeAddress: '192.0.2.2',
              hostPorts: [{ target: 8080, published: 30002, protocol: 'tcp', mode: 'host' }],
            },
          ),
        ],
      });
      expect(buildRoutes([cluster('prod', [s])], undefined).routes[0]?.backends).toEqual([
        { name: 'pub-1', address: '192.0.2.1', port: 30001 },
        { name: 'pub-2', address: '192.0.2.2', port: 30002 },
      ]);
    });

    it('reaches ingress ports on every ready node, or once on the nodeAddress override', () => {
      const s = published({ ingressPorts: [{ target: 8080, published: 8080, protocol: 'tcp', mode: 'ingress' }] });
      expect(buildRoutes([cluster('prod', [s])], undefined).routes[0]?.backends).toEqual([
        { name: 'pub-node-node1aaaaaaa', address: '192.0.2.1', port: 8080 },
        { name: 'pub-node-node2bbbbbbb', address: '192.0.2.2', port: 8080 },
      ]);
      expect(buildRoutes([cluster('prod', [s], { nodeAddress: '127.0.0.1' })], undefined).routes[0]?.backends).toEqual([
        { name: 'pub-ingress', address: '127.0.0.1', port: 8080 },
      ]);
    });

    it('uses the only published port when none is named, and asks when there are several', () => {
      const one = published({ ingressPorts: [{ target: 80, published: 8000, protocol: 'tcp', mode: 'ingress' }] });
      const noPort = { 'interlock.hostname': 'pub.example.com' };
      expect(buildRoutes([cluster('prod', [{ ...one, labels: noPort }])], undefined).routes[0]?.backends[0]?.port).toBe(
        8000,
      );
      const two = published({
        labels: noPort,
        ingressPorts: [
          { target: 80, published: 8000, protocol: 'tcp', mode: 'ingress' },
          { target: 443, published: 8443, protocol: 'tcp', mode: 'ingress' },
        ],
      });
      const r = buildRoutes([cluster('prod', [two])], undefined);
      expect(r.routes).toEqual([]);
      expect(r.diagnostics.map((d) => [d.code, d.label, d.fix])).toEqual([
        ['port-ambiguous', 'interlock.port', 'set label interlock.port to one of: 80, 443'],
      ]);
    });

    it('says when the named port is not published, or nothing is', () => {
      const s = published({ ingressPorts: [{ target: 80, published: 8000, protocol: 'tcp', mode: 'ingress' }] });
      const r = buildRoutes([cluster('prod', [s])], undefined);
      expect(r.diagnostics.map((d) => [d.code, d.message])).toEqual([
        [
          'port-not-published',
          'port 8080 is not published (published: 8000:80/ingress) and no network is named; the service is left out',
        ],
      ]);
      const none = buildRoutes(
        [cluster('prod', [published({ labels: { 'interlock.hostname': 'x.example.com' } })])],
        undefined,
      );
      expect(none.diagnostics[0]?.message).toMatch(
        /is on no network and publishes no TCP port: there is no way to reach it/,
      );
    });
  });

  it('routes a standalone container on its published port', () => {
    const c = svc(
      'legacy',
      { 'interlock.hostname': 'legacy.example.com', 'interlock.port': '80' },
      {
        id: 'c0ffee00000000000000',
        mode: 'container',
        networks: ['bridge'],
        vips: [],
        tasks: [
          task(
            'c0ffee00000000000000',
            undefined,
            { bridge: '172.17.0.2' },
            {
              nodeAddress: '127.0.0.1',
              hostPorts: [{ target: 80, published: 8080, protocol: 'tcp', mode: 'host' }],
            },
          ),
        ],
      },
    );
    expect(buildRoutes([cluster('dev', [c], { swarm: false, nodes: [] })], undefined).routes[0]?.backends).toEqual([
      { name: 'legacy-c0ffee000000', address: '127.0.0.1', port: 8080 },
    ]);
  });

  it('turns ip_hash into balance source so no renderer can miss it', () => {
    const r = buildRoutes(
      [cluster('prod', [svc('web', web('web.example.com', { 'interlock.ip_hash': 'true' }))])],
      undefined,
    );
    expect(r.routes[0]).toMatchObject({ ipHash: true, balance: 'source' });
    const both = buildRoutes(
      [
        cluster('prod', [
          svc(
            'web',
            web('web.example.com', { 'interlock.ip_hash': 'true', 'interlock.balance_algorithm': 'leastconn' }),
          ),
        ]),
      ],
      undefined,
    );
    expect(both.diagnostics.map((d) => d.code)).toEqual(['route-invalid']);
  });

  it('refuses a websocket path outside the route and a redirect from a host the service does not own', () => {
    const ws = buildRoutes(
      [
        cluster('prod', [
          svc(
            'api',
            web('api.example.com', { 'interlock.context_root': '/api', 'interlock.websocket_endpoint': '/ws' }),
          ),
        ]),
      ],
      undefined,
    );
    expect(ws.diagnostics[0]?.message).toBe(
      "websocket path /ws is outside the route's path /api; the service is left out",
    );
    const hijack = buildRoutes(
      [
        cluster('prod', [
          svc('evil', {
            'com.docker.lb.hosts': 'evil.example.com',
            'com.docker.lb.port': '80',
            'com.docker.lb.redirects': 'http://bank.example.com,https://evil.example.com',
          }),
        ]),
      ],
      BOTH,
    );
    expect(hijack.routes).toEqual([]);
    expect(hijack.diagnostics.map((d) => [d.code, d.label])).toEqual([['route-invalid', 'com.docker.lb.redirects']]);
  });
});

describe('buildRoutes: what is left out, and how it is told', () => {
  it('lists a service meant for another cluster as skipped, not as a problem', () => {
    const labels = {
      'com.docker.lb.hosts': 'a.example.com',
      'com.docker.lb.port': '80',
      'com.docker.lb.service_cluster': 'us-west',
    };
    const r = buildRoutes([cluster('us-east', [svc('a', labels)]), cluster('us-west', [svc('a', labels)])], BOTH);
    expect(r.diagnostics).toEqual([]);
    expect(r.routes.map((x) => [x.cluster, x.service])).toEqual([['us-west', 'a']]);
    expect(r.skipped).toEqual([
      {
        cluster: 'us-east',
        service: 'a',
        reason: 'com.docker.lb.service_cluster is us-west, not this cluster (us-east)',
      },
    ]);
  });

  it('still reports wrong labels on a service scaled to zero, and does not also list it as skipped', () => {
    const r = buildRoutes(
      [cluster('prod', [svc('paused', web('paused.example.com', { 'interlock.port': 'eighty' }), { tasks: [] })])],
      undefined,
    );
    expect(r.diagnostics.map((d) => [d.code, d.label])).toEqual([['label-invalid', 'interlock.port']]);
    expect(r.skipped).toEqual([]);
  });

  it('does not list a service as skipped when another rule routes it', () => {
    const labels = {
      ...web('web.example.com'),
      'com.docker.lb.hosts': 'b.example.com',
      'com.docker.lb.port': '80',
      'com.docker.lb.service_cluster': 'other',
    };
    const r = buildRoutes([cluster('prod', [svc('web', labels)])], BOTH);
    expect(r.routes.map((x) => x.rule)).toEqual(['interlock']);
    expect(r.skipped).toEqual([]);
  });
});

describe('buildRoutes: custom rules', () => {
  const custom = (name: string, routes: RuleFunction): RuleConfig => ({ kind: 'custom', name, routes });
  const states = () => [cluster('prod', [svc('web', { team: 'a' }), svc('api', { team: 'b' })])];

  it('runs a custom rule on every service and checks what it returns', () => {
    const rule = custom('by-team', (s, { cluster: c }) =>
      s.labels.team === 'a'
        ? { hosts: [`${s.name}.${c}.Example.com`], port: 80, network: 'appnet', path: '/x/' }
        : null,
    );
    const r = buildRoutes(states(), [rule]);
    expect(r.diagnostics).toEqual([]);
    expect(r.routes.map((x) => [x.service, x.rule, x.hosts, x.path])).toEqual([
      ['web', 'by-team', ['web.prod.example.com'], '/x'],
    ]);
  });

  it('reports a rule that throws, naming it, and carries on', () => {
    const r = buildRoutes(states(), [
      custom('boom', (s) => {
        if (s.name === 'api') throw new Error('no team\nsecond line');
        return { hosts: ['web.example.com'], port: 80 };
      }),
    ]);
    expect(r.routes.map((x) => x.service)).toEqual(['web']);
    expect(r.diagnostics).toEqual([
      {
        severity: 'error',
        code: 'rule-failed',
        message: 'rule boom threw: no team; the service is left out',
        fix: "fix the rule's `routes` function in the config",
        cluster: 'prod',
        service: 'api',
      },
    ]);
  });

  it('checks custom output with the same parsers as labels: nothing unparsed gets through', () => {
    const r = buildRoutes(states(), [
      custom('sloppy', (s) =>
        s.name === 'web'
          ? { hosts: ['web.example.com\n    server evil 1.2.3.4:80'], port: 80 }
          : ({ host: 'api.example.com', port: '80' } as never),
      ),
    ]);
    expect(r.routes).toEqual([]);
    expect(r.diagnostics.map((d) => [d.service, d.code])).toEqual([
      ['web', 'route-invalid'],
      ['api', 'route-invalid'],
      ['api', 'route-invalid'],
    ]);
    expect(r.diagnostics.map((d) => d.message).join('\n')).toContain(
      'rule sloppy: host 1 "web.example.com\\n    server evil',
    );
    expect(r.diagnostics[1]?.message).toMatch(/^rule sloppy: returned a route spec with `(port|host)` wrong/);
  });

  it('keeps a schema message about a strange key on one line', () => {
    const r = buildRoutes(states(), [custom('odd', () => ({ 'host\nbackend evil': 'x' }) as never)]);
    expect(r.diagnostics.length).toBeGreaterThan(0);
    for (const d of r.diagnostics) expect(formatText(d).split('\n')).toHaveLength(2);
  });

  it('reports a route spec that throws when read (getter, Proxy, `then`) as that rule failing, and carries on', () => {
    const revoked = Proxy.revocable({}, {});
    revoked.revoke();
    const r = buildRoutes(
      [cluster('prod', [svc('web', {}), svc('api', {}), svc('db', {}), svc('cache', {}), svc('ok', {})])],
      [
        custom('odd', (s) => {
          if (s.name === 'web')
            return {
              port: 80,
              get hosts(): string[] {
                throw new Error('no hosts\nsecond line');
              },
            };
          if (s.name === 'api') return [{ hosts: ['api.example.com'], port: 80 }, revoked.proxy as never];
          if (s.name === 'db')
            return Object.defineProperty({}, 'then', {
              enumerable: true,
              get() {
                throw null;
              },
            }) as never;
          if (s.name === 'cache') throw null;
          return { hosts: ['ok.example.com'], port: 80 };
        }),
      ],
    );
    expect(r.routes.map((x) => x.service)).toEqual(['ok']);
    expect(r.diagnostics.map((d) => [d.service, d.code, d.message])).toEqual([
      ['web', 'rule-failed', 'rule odd returned a route spec that cannot be read: no hosts; the service is left out'],
      [
        'api',
        'rule-failed',
        "rule odd returned a route spec that cannot be read: Cannot perform 'IsArray' on a proxy that has been revoked; the service is left out",
      ],
      ['db', 'rule-failed', 'rule odd returned a route spec that cannot be read: null; the service is left out'],
      ['cache', 'rule-failed', 'rule odd threw null; the service is left out'],
    ]);
  });

  it('reads a spec made by a class, its getters included', () => {
    class Spec {
      port = 80;
      get hosts() {
        return ['web.example.com'];
      }
    }
    const r = buildRoutes(states(), [custom('cls', (s) => (s.name === 'web' ? new Spec() : null))]);
    expect(r.diagnostics).toEqual([]);
    expect(r.routes.map((x) => [x.service, x.hosts])).toEqual([['web', ['web.example.com']]]);
  });

  it('checks a redirect status from a custom rule like the label', () => {
    const redirecting = (redirectCode: number) =>
      custom('moved', (s) =>
        s.name === 'web'
          ? {
              hosts: ['old.example.com'],
              port: 80,
              redirects: [{ from: 'old.example.com', to: 'https://new.example.com' }],
              // A .js config is not type-checked: any number can arrive.
              redirectCode: redirectCode as 302,
            }
          : null,
      );
    const good = buildRoutes(states(), [redirecting(308)]);
    expect(good.diagnostics).toEqual([]);
    expect(good.routes.map((x) => x.redirectCode)).toEqual([308]);
    const bad = buildRoutes(states(), [redirecting(200)]);
    expect(bad.routes).toEqual([]);
    expect(bad.diagnostics.map((d) => [d.code, d.fix])).toEqual([
      ['route-invalid', 'write one of: 301, 302, 303, 307, 308'],
    ]);
  });

  it('refuses a broad wildcard from a custom rule unless the rule allows it', () => {
    const wide: RouteSpec = { hosts: ['*.com'], port: 80 };
    const refused = buildRoutes(states(), [custom('wide', (s) => (s.name === 'web' ? wide : null))]);
    expect(refused.routes).toEqual([]);
    expect(refused.diagnostics.map((d) => [d.code, d.fix])).toEqual([
      ['route-invalid', expect.stringContaining('allowBroadWildcards: true')],
    ]);
    const allowed = buildRoutes(states(), [
      { ...custom('wide', (s) => (s.name === 'web' ? wide : null)), allowBroadWildcards: true },
    ]);
    expect(allowed.diagnostics).toEqual([]);
    expect(allowed.routes.map((x) => x.hosts)).toEqual([['*.com']]);
    // The option of one rule does not widen another.
    const mixed = buildRoutes(
      [cluster('prod', [svc('web', { 'interlock.hostname': '*.io', 'interlock.port': '80' })])],
      [
        { kind: 'interlock', allowRawDirectives: false },
        { ...custom('wide', () => null), allowBroadWildcards: true },
      ],
    );
    expect(mixed.routes).toEqual([]);
  });

  it('refuses a rule that returns a Promise', () => {
    const r = buildRoutes(states(), [custom('async', (async () => ({ hosts: ['a.example.com'], port: 80 })) as never)]);
    expect(r.diagnostics.map((d) => [d.code, d.message])).toContainEqual([
      'rule-failed',
      'rule async returned a Promise; the service is left out',
    ]);
  });

  it('takes several specs from one call, tcp routes included', () => {
    const r = buildRoutes(
      [cluster('prod', [svc('db', {})])],
      [
        custom('db', () => [
          { mode: 'tcp', listenPort: 5432, port: 5432 },
          { hosts: ['db-admin.example.com'], port: 8080 },
        ]),
      ],
    );
    expect(r.diagnostics).toEqual([]);
    expect(r.routes.map((x) => [x.mode, x.listenPort, x.hosts, x.backends.length])).toEqual([
      ['tcp', 5432, [], 2],
      ['http', undefined, ['db-admin.example.com'], 2],
    ]);
  });

  it('refuses http-only settings on a tcp route', () => {
    const r = buildRoutes(
      [cluster('prod', [svc('db', {})])],
      [custom('db', () => ({ mode: 'tcp', listenPort: 5432, port: 5432, hosts: ['x.com'] }))],
    );
    expect(r.diagnostics[0]?.message).toBe('rule db: a tcp route cannot use hosts; the service is left out');
  });

  it('gives each rule an untouched service, even when an earlier rule mutates its copy', () => {
    const r = buildRoutes(
      [cluster('prod', [svc('web', web())])],
      [
        custom('vandal', (s) => {
          (s.labels as Record<string, string>)['interlock.hostname'] = 'stolen.example.com';
          s.tasks.length = 0;
          return null;
        }),
        { kind: 'interlock', allowRawDirectives: false },
      ],
    );
    expect(r.routes.map((x) => [x.hosts, x.backends.length])).toEqual([[['web.example.com'], 2]]);
  });

  it('lets two rules route the same service', () => {
    const r = buildRoutes(
      [
        cluster('prod', [
          svc('web', { ...web(), 'com.docker.lb.hosts': 'other.example.com', 'com.docker.lb.port': '8080' }),
        ]),
      ],
      BOTH,
    );
    expect(r.diagnostics).toEqual([]);
    expect(r.routes.map((x) => [x.rule, x.hosts])).toEqual([
      ['docker-lb', ['other.example.com']],
      ['interlock', ['web.example.com']],
    ]);
  });
});

describe('buildRoutes: a contested claim stays with the route that was there first', () => {
  const at = (iso: string) => ({ createdAt: iso });

  it('keeps a contested host+path with the oldest service, across clusters, and tells both sides', () => {
    const r = buildRoutes(
      [
        cluster('east', [
          svc(
            'shop',
            web('shop.example.com', { 'interlock.alias_domain': 'www.example.com' }),
            at('2026-01-02T00:00:00.000Z'),
          ),
        ]),
        cluster('west', [
          svc('shop2', web('shop.example.com'), at('2026-01-01T00:00:00.000Z')),
          svc('other', web('other.example.com')),
        ]),
      ],
      undefined,
    );
    expect(r.diagnostics).toEqual([
      {
        severity: 'warning',
        code: 'route-conflict',
        message:
          'shop.example.com/ is also claimed by service shop (cluster east, rule interlock); service shop2 (cluster west, rule interlock) was first and keeps it',
        fix: 'remove the claim from the newer service(s), or remove this one if they should have it',
        cluster: 'west',
        service: 'shop2',
      },
      {
        severity: 'error',
        code: 'route-conflict',
        message:
          'shop.example.com/ already belongs to service shop2 (cluster west, rule interlock); service shop (cluster east, rule interlock) does not get it',
        fix: 'give this service its own host or path, or remove the claim from the older service first',
        cluster: 'east',
        service: 'shop',
      },
    ]);
    // shop keeps its uncontested alias; the older shop2 keeps the contested host.
    expect(r.routes.map((x) => [x.cluster, x.service, x.hosts])).toEqual([
      ['west', 'other', ['other.example.com']],
      ['west', 'shop2', ['shop.example.com']],
      ['east', 'shop', ['www.example.com']],
    ]);
  });

  it('does not let a new deploy take a working host offline', () => {
    const before = buildRoutes(
      [cluster('prod', [svc('site', web('site.example.com'), at('2026-01-01T00:00:00.000Z'))])],
      undefined,
    );
    const after = buildRoutes(
      [
        cluster('prod', [
          svc('site', web('site.example.com'), at('2026-01-01T00:00:00.000Z')),
          svc('aaa-intruder', web('site.example.com'), at('2026-06-01T00:00:00.000Z')),
        ]),
      ],
      undefined,
    );
    expect(after.routes).toEqual(before.routes);
    expect(after.diagnostics.filter((d) => d.severity === 'error').map((d) => d.service)).toEqual(['aaa-intruder']);
  });

  it('lets two services share a host on different paths, longest path first', () => {
    const r = buildRoutes(
      [
        cluster('prod', [
          svc('site', web('shop.example.com')),
          svc('api', web('shop.example.com', { 'interlock.context_root': '/api' })),
        ]),
      ],
      undefined,
    );
    expect(r.diagnostics).toEqual([]);
    expect(r.routes.map((x) => [x.service, x.path])).toEqual([
      ['api', '/api'],
      ['site', '/'],
    ]);
  });

  it('gives one TCP port and the default backend to the first claimant only (ties: by name)', () => {
    const tcp = (port: number) =>
      ({ kind: 'custom', name: `tcp${port}`, routes: () => ({ mode: 'tcp', listenPort: 5432, port }) }) as RuleConfig;
    const r = buildRoutes([cluster('prod', [svc('db', {})])], [tcp(5432), tcp(5433)]);
    expect(r.routes.map((x) => [x.rule, x.listenPort])).toEqual([['tcp5432', 5432]]);
    expect(r.diagnostics.map((d) => [d.severity, d.message])).toEqual([
      [
        'warning',
        'tcp port 5432 is also claimed by service db (cluster prod, rule tcp5433); service db (cluster prod, rule tcp5432) was first and keeps it',
      ],
      [
        'error',
        'tcp port 5432 already belongs to service db (cluster prod, rule tcp5432); service db (cluster prod, rule tcp5433) does not get it',
      ],
    ]);
    const dflt = (host: string) => ({
      'com.docker.lb.hosts': host,
      'com.docker.lb.port': '80',
      'com.docker.lb.default_backend': 'true',
    });
    const d = buildRoutes(
      [
        cluster('prod', [
          svc('a', dflt('a.example.com'), at('2026-02-01T00:00:00.000Z')),
          svc('b', dflt('b.example.com'), at('2026-01-01T00:00:00.000Z')),
        ]),
      ],
      BOTH,
    );
    expect(d.routes.map((x) => [x.service, x.defaultBackend])).toEqual([
      ['a', false],
      ['b', true],
    ]);
    expect(d.diagnostics.map((x) => [x.severity, x.service])).toEqual([
      ['warning', 'b'],
      ['error', 'a'],
    ]);
  });

  it('gives each host-less context root its own path; one path goes to the oldest claimant', () => {
    const hostless = (path: string) => ({ 'interlock.context_root': path, 'interlock.port': '80' });
    const r = buildRoutes(
      [
        cluster('prod', [
          svc('app', hostless('/app'), at('2026-01-01T00:00:00.000Z')),
          svc('shop', hostless('/shop'), at('2026-01-02T00:00:00.000Z')),
          svc('late', hostless('/app/'), at('2026-01-03T00:00:00.000Z')),
          svc('fallback', { 'com.docker.lb.default_backend': 'true', 'com.docker.lb.port': '80' }),
        ]),
      ],
      BOTH,
    );
    expect(r.routes.map((x) => [x.service, x.hosts, x.path, x.defaultBackend])).toEqual([
      ['shop', [], '/shop', true],
      ['app', [], '/app', true],
      ['fallback', [], '/', true],
    ]);
    expect(r.diagnostics.map((x) => [x.severity, x.service, x.message])).toEqual([
      [
        'warning',
        'app',
        'path /app on hosts no route names is also claimed by service late (cluster prod, rule interlock); service app (cluster prod, rule interlock) was first and keeps it',
      ],
      [
        'error',
        'late',
        'path /app on hosts no route names already belongs to service app (cluster prod, rule interlock); service late (cluster prod, rule interlock) does not get it',
      ],
    ]);
  });

  it('does not let one service terminate TLS for a host an older one passes through', () => {
    const r = buildRoutes(
      [
        cluster('prod', [
          svc(
            'pass',
            {
              'com.docker.lb.hosts': 'secure.example.com',
              'com.docker.lb.port': '443',
              'com.docker.lb.ssl_passthrough': 'true',
            },
            at('2026-01-01T00:00:00.000Z'),
          ),
          svc('term', web('secure.example.com', { 'interlock.context_root': '/x' }), at('2026-01-02T00:00:00.000Z')),
        ]),
      ],
      BOTH,
    );
    expect(r.routes.map((x) => [x.service, x.hosts, x.sslPassthrough])).toEqual([
      ['pass', ['secure.example.com'], true],
    ]);
    expect(
      r.diagnostics.map((d) => [d.severity, d.service, d.message.split(' is also')[0]?.split(' already')[0]]),
    ).toEqual([
      ['warning', 'pass', 'TLS for secure.example.com (passed through by one of them)'],
      ['error', 'term', 'TLS for secure.example.com (passed through by one of them)'],
    ]);
  });

  it('drops a redirect whose source host was taken away', () => {
    const r = buildRoutes(
      [
        cluster('prod', [
          svc(
            'blog',
            {
              'com.docker.lb.hosts': 'blog.example.com,news.example.com',
              'com.docker.lb.port': '80',
              'com.docker.lb.redirects': 'news.example.com,https://blog.example.com',
            },
            at('2026-03-01T00:00:00.000Z'),
          ),
          svc('news', web('news.example.com'), at('2026-01-01T00:00:00.000Z')),
        ]),
      ],
      BOTH,
    );
    expect(r.routes.map((x) => [x.service, x.hosts, x.redirects])).toEqual([
      ['blog', ['blog.example.com'], []],
      ['news', ['news.example.com'], []],
    ]);
  });

  it('decides the same whatever order services and clusters come in', () => {
    const a = [
      cluster('east', [svc('x', web('same.example.com')), svc('y', web('y.example.com'))]),
      cluster('west', [svc('z', web('same.example.com'))]),
    ];
    const b = [...a].reverse().map((c) => ({ ...c, services: [...c.services].reverse() }));
    expect(JSON.stringify(buildRoutes(b, undefined))).toBe(JSON.stringify(buildRoutes(a, undefined)));
  });
});

describe('buildRoutes: the hostile corpus', () => {
  const doc = hostileSnapshot();
  const mapped = mapSnapshot(doc, { cluster: HOSTILE_CLUSTER });
  const cases = hostileCases();

  it('maps the hostile snapshot without problems: label values are not the mapper’s business', () => {
    expect(mapped.diagnostics).toEqual([]);
    expect(mapped.state.services).toHaveLength(cases.length + GOOD_SERVICES.length);
  });

  for (const allowRawDirectives of [false, true]) {
    describe(`with allowRawDirectives ${allowRawDirectives}`, () => {
      const rules: RuleConfig[] = [
        { kind: 'interlock', allowRawDirectives },
        { kind: 'docker-lb', allowRawDirectives },
      ];
      const result = buildRoutes([mapped.state], rules);
      const routed = new Map(result.routes.map((r) => [r.service, r]));

      it('still routes the good services', () => {
        for (const good of GOOD_SERVICES) {
          expect(routed.get(good.service)?.hosts, good.service).toEqual([good.host]);
        }
      });

      it('refuses every service with a hostile value, by name and label, or routes it without the raw line', () => {
        for (const c of cases) {
          const about = `${c.label} + ${c.hostile.name}`;
          const own = result.diagnostics.filter((d) => d.service === c.service);
          const rawLine = c.label.startsWith('interlock.backend_option');
          if (rawLine && !allowRawDirectives) {
            expect(
              own.map((d) => [d.severity, d.code, d.label]),
              about,
            ).toEqual([['warning', 'raw-directive-refused', c.label]]);
            expect(routed.get(c.service)?.rawBackendOptions, about).toEqual([]);
          } else if (c.expect === 'routed') {
            // The list's own separator at its end: ignored, nothing of it reaches the route.
            expect(own, about).toEqual([]);
            expect(routed.get(c.service)?.redirects, about).toHaveLength(1);
          } else if (c.expect === 'routed-quoted') {
            // Printable text in a header value: kept as the value, for the renderers to quote.
            expect(own, about).toEqual([]);
            const r = routed.get(c.service)?.policies;
            const rules = [...(r?.requestHeaders ?? []), ...(r?.responseHeaders ?? [])];
            const value = c.value.slice(c.value.indexOf(':') + 1).replace(/^ +/, '');
            expect(
              rules.map((h) => h.value),
              about,
            ).toEqual([value]);
          } else if (rawLine && c.hostile.name === 'space') {
            // A plain extra word stays one line inside the backend: trusted by the opt-in.
            expect(routed.get(c.service)?.rawBackendOptions, about).toContain(`option ${c.value}`);
          } else {
            expect(c.expect === 'refused' || allowRawDirectives, about).toBe(true);
            expect(routed.has(c.service), about).toBe(false);
            expect(
              own.some((d) => d.severity === 'error' && d.label === c.label && d.cluster === HOSTILE_CLUSTER),
              about,
            ).toBe(true);
          }
        }
      });

      it('lets no hostile text into a route, and none into a diagnostic line', () => {
        // Header values routed as quoted text are checked on their own: printable, nothing a
        // proxy cannot quote.
        const quoted = new Set(cases.filter((c) => c.expect === 'routed-quoted').map((c) => c.service));
        const json = JSON.stringify(result.routes.filter((r) => !quoted.has(r.service)));
        const quotedJson = JSON.stringify(result.routes.filter((r) => quoted.has(r.service)));
        expect(quoted.size).toBeGreaterThan(0);
        expect(quotedJson).toMatch(/^[\x20-\x7e]*$/);
        for (const marker of ['evil', 'pwned', '${', '$host', '\\\\', '\\n']) {
          expect(quotedJson.includes(marker), marker).toBe(false);
        }
        expect(json).toMatch(/^[\x20-\x7e]*$/);
        for (const marker of ['evil', 'pwned', '${', '$host', '`', ';', '{ ', '#', '\\\\']) {
          expect(json.includes(marker), marker).toBe(false);
        }
        for (const d of result.diagnostics) {
          const lines = formatText(d).split('\n');
          expect(lines.length).toBeLessThanOrEqual(2);
          for (const line of lines) expect(line).toMatch(/^[\x20-\x7e]*$/);
        }
      });
    });
  }
});
