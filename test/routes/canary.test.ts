/**
 * Canary groups (issue 14): services that opt in share one host and path, split by weight or by
 * running replicas; the hijack protection stays for everyone else. Also the files basic auth and
 * error pages name: looked up in the policyFiles folder read at the edge, refused with the label
 * and the fix when missing or wrong.
 */
import { describe, expect, it } from 'vitest';
import type { ClusterState, ServiceState, TaskState } from '../../src/cluster/model.ts';
import { buildRoutes, RouteCache } from '../../src/routes/build.ts';
import type { PolicyFiles } from '../../src/routes/types.ts';

function task(service: string, n: number): TaskState {
  return {
    id: `${service}task${String(n).padStart(7, '0')}`,
    slot: n,
    nodeId: 'node1',
    nodeAddress: '192.0.2.1',
    addresses: [{ network: 'appnet', address: `10.0.${service.length}.${n + 10}` }],
    hostPorts: [],
  };
}

/** A service on appnet with `replicas` running tasks, created at minute `age` (older first). */
function svc(name: string, labels: Record<string, string>, age: number, replicas = 1): ServiceState {
  return {
    id: `id-${name}`,
    name,
    mode: 'replicated',
    // docker-lb's port and network unless the service speaks the interlock dialect.
    labels: Object.keys(labels).some((k) => k.startsWith('interlock.'))
      ? labels
      : { 'com.docker.lb.port': '80', 'com.docker.lb.network': 'appnet', ...labels },
    createdAt: `2026-01-01T00:${String(age).padStart(2, '0')}:00.000Z`,
    networks: ['appnet'],
    vips: [],
    ingressPorts: [],
    tasks: Array.from({ length: replicas }, (_, i) => task(name, i + 1)),
  };
}

function build(services: ServiceState[], policyFiles?: PolicyFiles) {
  const state: ClusterState = {
    cluster: 'local',
    swarm: true,
    services,
    nodes: [],
    networks: [{ id: 'n-app', name: 'appnet', driver: 'overlay', scope: 'swarm' }],
  };
  return buildRoutes(
    [state],
    [
      { kind: 'docker-lb', allowRawDirectives: false },
      { kind: 'interlock', allowRawDirectives: false },
    ],
    policyFiles ? { policyFiles } : {},
  );
}

const host = { 'com.docker.lb.hosts': 'app.example.com' };

describe('canary groups', () => {
  it('merges the members into the oldest one’s route, weighted 90/10', () => {
    const r = build([
      svc('stable', { ...host, 'com.docker.lb.canary_group': 'web', 'com.docker.lb.weight': '90' }, 1),
      svc('canary', { ...host, 'com.docker.lb.canary_group': 'web', 'com.docker.lb.weight': '10' }, 2),
    ]);
    expect(r.diagnostics).toEqual([]);
    expect(r.routes).toHaveLength(1);
    const [route] = r.routes;
    expect(route?.service).toBe('stable');
    expect(route?.backends.map((b) => [b.name, b.weight])).toEqual([
      ['stable-1', 90],
      ['canary-1', 10],
    ]);
    expect(route?.canary?.members.map((m) => [m.service, m.share])).toEqual([
      ['stable', 90],
      ['canary', 10],
    ]);
  });

  it('spreads each member’s weight over its tasks, scaled to 1..256 when it does not divide', () => {
    const r = build([
      svc('stable', { ...host, 'com.docker.lb.canary_group': 'web', 'com.docker.lb.weight': '90' }, 1, 3),
      svc('canary', { ...host, 'com.docker.lb.canary_group': 'web', 'com.docker.lb.weight': '10' }, 2, 1),
    ]);
    // 30 per stable task and 10 for the canary: exact.
    expect(r.routes[0]?.backends.map((b) => b.weight)).toEqual([30, 30, 30, 10]);
    const odd = build([
      svc('stable', { ...host, 'com.docker.lb.canary_group': 'web', 'com.docker.lb.weight': '100' }, 1, 3),
      svc('canary', { ...host, 'com.docker.lb.canary_group': 'web', 'com.docker.lb.weight': '10' }, 2, 1),
    ]);
    const weights = odd.routes[0]?.backends.map((b) => b.weight ?? 0) ?? [];
    expect(Math.max(...weights)).toBeLessThanOrEqual(256);
    const canaryShare = (weights[3] ?? 0) / weights.reduce((a, b) => a + b, 0);
    expect(Math.abs(canaryShare - 10 / 110)).toBeLessThan(0.005);
  });

  it('without weights splits by running replicas (no weights rendered), in either dialect', () => {
    const r = build([
      svc('stable', { ...host, 'com.docker.lb.canary_group': 'web' }, 1, 3),
      svc(
        'canary',
        {
          'interlock.hostname': 'app',
          'interlock.domain': 'example.com',
          'interlock.port': '80',
          'interlock.network': 'appnet',
          'interlock.canary_group': 'web',
        },
        2,
        1,
      ),
    ]);
    expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    expect(r.routes).toHaveLength(1);
    expect(r.routes[0]?.backends.map((b) => b.weight)).toEqual([undefined, undefined, undefined, undefined]);
    expect(r.routes[0]?.canary?.members.map((m) => m.share)).toEqual([75, 25]);
  });

  it('a service outside the group claiming the host still loses it, with the conflict diagnostic of today', () => {
    const r = build([
      svc('stable', { ...host, 'com.docker.lb.canary_group': 'web', 'com.docker.lb.weight': '90' }, 1),
      svc('canary', { ...host, 'com.docker.lb.canary_group': 'web', 'com.docker.lb.weight': '10' }, 2),
      svc('intruder', host, 3),
    ]);
    expect(r.routes.map((x) => x.service)).toEqual(['stable']);
    const lost = r.diagnostics.find((d) => d.service === 'intruder');
    expect(lost?.code).toBe('route-conflict');
    expect(lost?.message).toMatch(/app\.example\.com\/ already belongs to service stable/);
  });

  it('an older service outside the group keeps its host; the group loses it', () => {
    const r = build([
      svc('owner', host, 0),
      svc('stable', { ...host, 'com.docker.lb.canary_group': 'web', 'com.docker.lb.weight': '90' }, 1),
      svc('canary', { ...host, 'com.docker.lb.canary_group': 'web', 'com.docker.lb.weight': '10' }, 2),
    ]);
    expect(r.routes.map((x) => x.service)).toEqual(['owner']);
    expect(r.routes[0]?.backends.every((b) => b.weight === undefined)).toBe(true);
  });

  it('a member with other hosts, or weighted where the oldest is not, does not join (and loses the host)', () => {
    const r = build([
      svc('stable', { ...host, 'com.docker.lb.canary_group': 'web', 'com.docker.lb.weight': '90' }, 1),
      svc('canary', { ...host, 'com.docker.lb.canary_group': 'web' }, 2),
      svc('other', { 'com.docker.lb.hosts': 'other.example.com', 'com.docker.lb.canary_group': 'web' }, 3),
    ]);
    const errors = r.diagnostics.filter((d) => d.code === 'canary-group');
    expect(errors.map((d) => d.service).sort()).toEqual(['canary', 'other']);
    expect(errors.find((d) => d.service === 'canary')?.message).toMatch(/sets no weight/);
    expect(r.routes.map((x) => x.service).sort()).toEqual(['other', 'stable']);
    expect(r.routes.find((x) => x.service === 'stable')?.backends).toHaveLength(1);
  });

  it('groups never span clusters, and a weight without a group is refused naming the label', () => {
    const r = build([svc('lonely', { ...host, 'com.docker.lb.weight': '10' }, 1)]);
    expect(r.routes).toEqual([]);
    expect(r.diagnostics[0]?.label).toBe('com.docker.lb.weight');
    expect(r.diagnostics[0]?.fix).toMatch(/com\.docker\.lb\.canary_group/);
  });

  it('warns when a member’s own settings differ from the route it joins', () => {
    const r = build([
      svc('stable', { ...host, 'com.docker.lb.canary_group': 'web' }, 1),
      svc('canary', { ...host, 'com.docker.lb.canary_group': 'web', 'com.docker.lb.rate_limit': '5' }, 2),
    ]);
    expect(r.routes).toHaveLength(1);
    const w = r.diagnostics.find((d) => d.code === 'canary-group');
    expect(w?.severity).toBe('warning');
    expect(w?.service).toBe('canary');
  });
});

const BCRYPT = '$2b$04$SXcJt9jCmj4Z14XsWgHvauLXkcmEMczbEbTZYVvohc4nFnnW4p68W';

describe('files named by labels', () => {
  const files = (entries: Record<string, string | { error: string }>): PolicyFiles => ({
    dir: '/run/secrets',
    files: new Map(Object.entries(entries)),
  });
  const auth = (more: Record<string, string> = {}) =>
    svc('app', { ...host, 'com.docker.lb.auth_users': 'web-users', ...more }, 1);

  it('parses the users file into the route', () => {
    const r = build([auth({ 'com.docker.lb.auth_realm': 'staff' })], files({ 'web-users': `alice:${BCRYPT}\n` }));
    expect(r.diagnostics).toEqual([]);
    expect(r.routes[0]?.policies?.basicAuth).toEqual({
      file: 'web-users',
      realm: 'staff',
      users: [{ name: 'alice', hash: BCRYPT }],
    });
  });

  it('a route cache (watch) resolves services again when a users file changes, not otherwise', () => {
    const cache = new RouteCache();
    const state = (): ClusterState => ({
      cluster: 'local',
      swarm: true,
      services: [auth()],
      nodes: [],
      networks: [{ id: 'n-app', name: 'appnet', driver: 'overlay', scope: 'swarm' }],
    });
    const rules = [{ kind: 'docker-lb' as const, allowRawDirectives: false }];
    const one = buildRoutes([state()], rules, { policyFiles: files({ 'web-users': `alice:${BCRYPT}\n` }), cache });
    expect(one.routes[0]?.policies?.basicAuth?.users.map((u) => u.name)).toEqual(['alice']);
    // The folder is read anew for every render: same contents, new objects → reused.
    buildRoutes([state()], rules, { policyFiles: files({ 'web-users': `alice:${BCRYPT}\n` }), cache });
    expect(cache.reused).toBe(1);
    const two = buildRoutes([state()], rules, {
      policyFiles: files({ 'web-users': `alice:${BCRYPT}\nbob:${BCRYPT}\n` }),
      cache,
    });
    expect(cache.resolved).toBe(1);
    expect(two.routes[0]?.policies?.basicAuth?.users.map((u) => u.name)).toEqual(['alice', 'bob']);
  });

  it('refuses the one service when the folder is not configured, the file is missing, unreadable or wrong', () => {
    const cases: Array<[PolicyFiles | undefined, RegExp, RegExp]> = [
      [undefined, /the config has no policyFiles folder/, /set `policyFiles` in the config/],
      [files({}), /web-users is not in the policyFiles folder \/run\/secrets/, /--secret-add web-users/],
      [files({ 'web-users': { error: 'EACCES' } }), /cannot be read: EACCES/, /fix the file/],
      [files({ 'web-users': 'alice:secret\n' }), /line 1 \(user alice\): not a bcrypt/, /htpasswd -B/],
    ];
    for (const [folder, message, fix] of cases) {
      const r = build([auth(), svc('other', { 'com.docker.lb.hosts': 'other.example.com' }, 2)], folder);
      expect(r.routes.map((x) => x.service)).toEqual(['other']);
      const d = r.diagnostics.find((x) => x.service === 'app');
      expect(d?.severity).toBe('error');
      expect(d?.label).toBe('com.docker.lb.auth_users');
      expect(d?.message).toMatch(message);
      expect(d?.fix).toMatch(fix);
      expect(JSON.stringify(r.diagnostics)).not.toContain('alice:secret');
    }
  });

  it('custom rules: the same fields, checked the same way (a path is never a file name)', () => {
    const state: ClusterState = {
      cluster: 'local',
      swarm: true,
      services: [svc('app', {}, 1), svc('app2', {}, 2)],
      nodes: [],
      networks: [{ id: 'n-app', name: 'appnet', driver: 'overlay', scope: 'swarm' }],
    };
    const r = buildRoutes(
      [state],
      [
        {
          kind: 'custom',
          name: 'mine',
          routes: (s) =>
            s.name === 'app'
              ? { hosts: ['app.example.com'], network: 'appnet', port: 80, basicAuth: { usersFile: '../etc/shadow' } }
              : {
                  hosts: ['app2.example.com'],
                  network: 'appnet',
                  port: 80,
                  basicAuth: { usersFile: 'web-users', realm: 'staff' },
                  canaryGroup: 'web',
                  weight: 5,
                  maintenance: true,
                },
        },
      ],
      { policyFiles: files({ 'web-users': `alice:${BCRYPT}\n` }) },
    );
    expect(r.routes.map((x) => x.service)).toEqual(['app2']);
    expect(r.routes[0]?.policies?.maintenance).toBe(true);
    expect(r.routes[0]?.canary?.members[0]?.weight).toBe(5);
    const d = r.diagnostics.find((x) => x.service === 'app');
    expect(d?.message).toMatch(/rule mine: users file "..\/etc\/shadow"/);
  });

  it('reads an error page, and maintenance keeps the route', () => {
    const r = build(
      [svc('app', { ...host, 'com.docker.lb.error_page': 'sorry.html', 'com.docker.lb.maintenance': 'true' }, 1)],
      files({ 'sorry.html': '<h1>Sorry</h1>' }),
    );
    expect(r.diagnostics).toEqual([]);
    expect(r.routes[0]?.policies).toEqual({
      errorPage: { file: 'sorry.html', content: '<h1>Sorry</h1>' },
      maintenance: true,
    });
    expect(r.routes[0]?.backends).toHaveLength(1);
    const big = build(
      [svc('app', { ...host, 'com.docker.lb.error_page': 'big.html' }, 1)],
      files({ 'big.html': 'x'.repeat(20_000) }),
    );
    expect(big.routes).toEqual([]);
    expect(big.diagnostics[0]?.label).toBe('com.docker.lb.error_page');
  });
});
