/**
 * Fix hints for wrong label values: each one must be something a user can write as it is. Values
 * that people plausibly write in the wrong label (a URL, a host with a port, a bare word, a list in
 * a single-value label) go through both dialects and the hint is checked.
 */
import { describe, expect, it } from 'vitest';
import type { ServiceState } from '../../src/cluster/model.ts';
import { dockerLbDialect } from '../../src/routes/dialect-docker-lb.ts';
import { interlockDialect } from '../../src/routes/dialect-interlock.ts';

function svc(labels: Record<string, string>): ServiceState {
  return { id: 'i', name: 'app', mode: 'replicated', labels, networks: [], vips: [], ingressPorts: [], tasks: [] };
}

const BASE = {
  interlock: { 'interlock.hostname': 'app.example.com', 'interlock.port': '80' },
  'docker-lb': { 'com.docker.lb.hosts': 'app.example.com', 'com.docker.lb.port': '80' },
};

/** The fix of the (first) error on `label` when it is set to `value`. */
function fixFor(label: string, value: string): string | undefined {
  const dialect = label.startsWith('interlock.') ? 'interlock' : 'docker-lb';
  const run = dialect === 'interlock' ? interlockDialect : dockerLbDialect;
  const r = run(svc({ ...BASE[dialect], [label]: value }), { cluster: 'local' });
  const d = r.diagnostics.find((x) => x.label === label && x.severity === 'error');
  if (d === undefined) throw new Error(`${label}=${value} was accepted: ${JSON.stringify(r.diagnostics)}`);
  return d.fix;
}

describe('fix hints', () => {
  it.each([
    // Paths: a URL's path, never the URL glued to a `/`.
    ['interlock.websocket_endpoint', 'ws://example.com:9000', 'write only the path: /'],
    ['interlock.websocket_endpoint', 'ws://example.com:9000/chat', 'write only the path: /chat'],
    ['com.docker.lb.websocket_endpoints', 'wss://example.com/ws', 'write only the path: /ws'],
    ['interlock.context_root', 'http://example.com/app', 'write only the path: /app'],
    ['com.docker.lb.context_root', 'https://example.com', 'write only the path: /'],
    ['interlock.health_check', 'http://localhost:8080/healthz', 'write only the path: /healthz'],
    ['interlock.context_root', 'app', 'write /app'],
    ['interlock.context_root', 'app/v1', 'write /app/v1'],
    ['interlock.context_root', 'example.com:8080', 'write a path such as /api; a host and port do not belong here'],
    ['com.docker.lb.websocket_endpoints', 'ws', 'write /ws'],
    // Host names: the host out of a URL or a host:port.
    ['interlock.hostname', 'http://app.example.com/', 'write only the host name: app.example.com'],
    ['com.docker.lb.hosts', 'https://app.example.com', 'write only the host name: app.example.com'],
    [
      'com.docker.lb.hosts',
      'app.example.com:8080',
      'write the host name without the port: app.example.com (the proxy listens on the ports of its outputs)',
    ],
    ['interlock.alias_domain', 'ws://www.example.com:9000', 'write only the host name: www.example.com'],
    [
      'interlock.hostname',
      'a.example.com,b.example.com',
      'one host per label: put the others in interlock.alias_domain, interlock.alias_domain.1, ...',
    ],
    [
      'interlock.alias_domain',
      'a.example.com,b.example.com',
      'one host per label: put the others in interlock.alias_domain, interlock.alias_domain.1, ...',
    ],
    ['com.docker.lb.hosts', 'a.example.com b.example.com', 'separate the items with `,`'],
    // Ports: the number out of a URL or host:port.
    ['interlock.port', 'http://app:8080', 'write only the port number: 8080'],
    ['com.docker.lb.port', 'app.example.com:9000', 'write only the port number: 9000'],
    ['interlock.port', 'eighty', 'write the port, e.g. 8080'],
    // Names without a hint before.
    [
      'com.docker.lb.service_cluster',
      'http://example.com',
      'write the name of the interlock cluster the service is read from (its key under `clusters` in the config)',
    ],
  ])('%s=%s: %s', (label, value, fix) => {
    expect(fixFor(label, value)).toBe(fix);
  });

  it('never echoes text that would not itself be accepted', () => {
    // A control character or a quote after a plausible start must not reach the hint.
    for (const value of ['app\nserver evil', 'app"x', 'ws://example.com/a b', 'x'.repeat(2000)]) {
      const fix = fixFor('interlock.context_root', value) ?? '';
      expect(fix).toMatch(/^[\x20-\x7e]*$/);
      expect(fix).not.toContain('evil');
      expect(fix.length).toBeLessThan(200);
    }
  });
});
