/**
 * Access-log formats (issue 14, listener options): each named format renders for both proxies and
 * the real ones accept it; without the option the files are as before (access_log off, no
 * log-format).
 */
import { describe, expect, it } from 'vitest';
import { ACCESS_LOG_FORMATS } from '../../src/parse/policy-fields.ts';
import { route } from '../fixtures/routes/base.ts';
import { renderHaproxy, renderNginx } from '../helpers/render.ts';
import { haproxyCheck, itWithTools, nginxCheck, scratchDir } from './proxy-check.ts';

const routes = [
  route({
    service: 'web',
    hosts: ['web.example.com'],
    backends: [{ name: 'web-1', address: '127.0.0.1', port: 8081 }],
  }),
];

function render(format?: (typeof ACCESS_LOG_FORMATS)[number]) {
  const accessLog = format ? { accessLog: { format } } : {};
  return {
    haproxy: renderHaproxy(routes, {
      kind: 'haproxy',
      file: 'haproxy.cfg',
      http: { address: '127.0.0.1', port: 8080 },
      maxconn: 1024,
      ...accessLog,
    }),
    nginx: renderNginx(
      routes,
      {
        kind: 'nginx',
        file: 'nginx.conf',
        http: { address: '127.0.0.1', port: 8081 },
        workerConnections: 1024,
        ...accessLog,
      },
      { runDir: '.' },
    ),
  };
}

describe('access-log formats', () => {
  it('without the option: no log-format, and Nginx keeps access_log off', () => {
    const { haproxy, nginx } = render();
    expect(haproxy[0]?.content).not.toContain('log-format');
    expect(nginx[0]?.content).toContain('    access_log off;\n');
  });

  it('each format names its Nginx log_format and logs to <runDir>/access.log; HAProxy logs to stderr', () => {
    for (const format of ACCESS_LOG_FORMATS) {
      const { haproxy, nginx } = render(format);
      const cfg = haproxy[0]?.content ?? '';
      expect(cfg).toContain('    log stderr format raw local0 info\n');
      expect(cfg).toMatch(/\n {4}log-format '[^'\n]+'\n/);
      const conf = nginx[0]?.content ?? '';
      expect(conf).toContain(`    access_log access.log interlock_${format};\n`);
      expect(conf).not.toContain('access_log off');
    }
  });

  itWithTools('the real proxies accept every format', ['haproxy', 'nginx'], async () => {
    for (const format of ACCESS_LOG_FORMATS) {
      const { haproxy, nginx } = render(format);
      const scratch = await scratchDir([...haproxy, ...nginx]);
      try {
        const h = haproxyCheck(scratch.dir);
        expect(h.ok, `${format}: ${h.output}`).toBe(true);
        const n = nginxCheck(scratch.dir);
        expect(n.ok, `${format}: ${n.output}`).toBe(true);
      } finally {
        await scratch.remove();
      }
    }
  });
});
