import { describe, expect, it } from 'vitest';
import { blame } from '../../src/apply/blame.ts';
import type { Diagnostic } from '../../src/diagnostics.ts';
import type { Route } from '../../src/routes/types.ts';
import { diffDiagnostics, diffRoutes, listField, summarizeRoutes } from '../../src/watch/changes.ts';
import type { ClusterHealth } from '../../src/watch/cluster-watcher.ts';
import { healthReport } from '../../src/watch/health.ts';

function route(service: string, hosts: string[], ports: number[], extra: Partial<Route> = {}): Route {
  return {
    cluster: 'local',
    service,
    rule: 'interlock',
    mode: 'http',
    hosts,
    path: '/',
    stripPath: false,
    backends: ports.map((p, i) => ({ name: `${service}-${i + 1}`, address: '127.0.0.1', port: p })),
    balance: 'roundrobin',
    ipHash: false,
    websocketPaths: [],
    sslOnly: false,
    sslPassthrough: false,
    redirects: [],
    defaultBackend: false,
    rawBackendOptions: [],
    ...extra,
  };
}

describe('route diff (what the log output says changed)', () => {
  it('names hosts added, removed, and those whose backends moved', () => {
    const before = summarizeRoutes([route('web', ['web.test'], [8001]), route('api', ['api.test', 'a.test'], [8002])]);
    const after = summarizeRoutes([
      route('web', ['web.test'], [8001, 8003]),
      route('shop', ['shop.test'], [8004]),
      route('api', ['api.test'], [8002]),
    ]);
    expect(diffRoutes(before, after)).toEqual({ added: ['shop.test'], removed: ['a.test'], changed: ['web.test'] });
    expect(diffRoutes(after, after)).toEqual({ added: [], removed: [], changed: [] });
  });

  it('tells paths and TCP ports apart', () => {
    const s = summarizeRoutes([
      route('api', ['x.test'], [1], { path: '/api' }),
      route('db', [], [2], { mode: 'tcp', listenPort: 5432 }),
    ]);
    expect([...s.keys()].sort()).toEqual(['tcp:5432', 'x.test/api']);
  });

  it('keeps a log field short', () => {
    expect(listField([])).toBeUndefined();
    expect(listField(['a', 'b', 'c'], 2)).toBe('a,b,+1 more');
  });
});

describe('diagnostics once per change', () => {
  const d = (service: string, message = 'bad port'): Diagnostic => ({
    severity: 'error',
    code: 'label-invalid',
    message,
    cluster: 'local',
    service,
    label: 'interlock.port',
  });

  it('reports a diagnostic when it appears, not on the next re-lists, and says when it is gone', () => {
    const first = diffDiagnostics(new Set(), [d('web'), d('web')]);
    expect(first.fresh).toHaveLength(1);
    const again = diffDiagnostics(first.keys, [d('web')]);
    expect(again.fresh).toEqual([]);
    expect(again.resolved).toEqual([]);
    const fixed = diffDiagnostics(again.keys, [d('api')]);
    expect(fixed.fresh.map((x) => x.service)).toEqual(['api']);
    expect(fixed.resolved).toHaveLength(1);
  });
});

describe('blame (who a proxy rejection is about)', () => {
  const cfg = [
    'global',
    '  maxconn 100',
    'frontend http',
    '  bind 127.0.0.1:8080',
    'backend web_test',
    '  server web-1 127.0.0.1:8001',
    '# cluster local, service shop, rule interlock',
    'backend shop_test',
    '  server shop-1 127.0.0.1:8002 bogus-keyword',
    '',
  ].join('\n');

  it('finds the section HAProxy names by file:line', () => {
    const output =
      "[ALERT]    (1234) : config : parsing [haproxy.cfg:9] : 'server shop-1' unknown keyword 'bogus-keyword'.";
    const r = blame(
      output,
      [{ name: 'haproxy.cfg', content: cfg }],
      new Set(['local/web', 'local/shop', 'local/shop-api']),
    );
    expect(r.services).toEqual(['local/shop']);
    expect(r.line).toEqual({ file: 'haproxy.cfg', number: 9, text: 'server shop-1 127.0.0.1:8002 bogus-keyword' });
  });

  it('reads Nginx words too, and names nobody when there is no line', () => {
    const conf = [
      '# cluster local, service web, rule interlock',
      'upstream web {',
      '  server 127.0.0.1:8001;',
      '}',
      '# cluster local, service api, rule interlock',
      'upstream api {',
      '  server x;',
      '}',
    ].join('\n');
    const both = new Set(['local/web', 'local/api']);
    const r = blame(
      'nginx: [emerg] host not found in upstream "x" in /tmp/scratch/nginx.conf:7',
      [{ name: 'nginx.conf', content: conf }],
      both,
    );
    expect(r.services).toEqual(['local/api']);
    expect(blame('something went wrong', [{ name: 'nginx.conf', content: conf }], both).services).toEqual([]);
  });
});

describe('healthReport', () => {
  const cluster = (state: ClusterHealth['state']): ClusterHealth => ({
    cluster: 'local',
    state,
    streamUp: state === 'connected',
    lastReadMs: Date.UTC(2026, 0, 1),
    ...(state === 'connected' ? {} : { error: 'connection refused' }),
  });

  it('is 200 when every cluster is connected and no output failed', () => {
    const r = healthReport([cluster('connected')], [{ name: 'haproxy', state: 'ok', lastSuccessMs: 0 }], undefined);
    expect(r.status).toBe(200);
    expect(r.body.clusters.local).toEqual({ state: 'connected', lastRead: '2026-01-01T00:00:00.000Z', error: null });
    expect(r.body.outputs.haproxy?.lastApply).toBe('1970-01-01T00:00:00.000Z');
  });

  it('is 503 with a stale cluster or a rejected output, and says why', () => {
    expect(healthReport([cluster('stale')], [], undefined).status).toBe(503);
    const r = healthReport(
      [cluster('connected')],
      [{ name: 'nginx', state: 'rejected', error: 'nginx: [emerg] ...', services: ['api'] }],
      { timeMs: 0, message: 'proxy rejected' },
    );
    expect(r.status).toBe(503);
    expect(r.body.outputs.nginx).toMatchObject({ state: 'rejected', services: ['api'], lastApply: null });
    expect(r.body.lastError?.message).toBe('proxy rejected');
  });
});
