/**
 * Access-log formats (issue 14, listener options), and the config checks of the policy options:
 * each named format renders for both proxies and the real ones accept it; without the option the
 * files are as before (access_log off, no log-format).
 */
import { describe, expect, it } from 'vitest';
import { checkConfig } from '../../src/config/check.ts';
import { configSchema } from '../../src/config/schema.ts';
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

  it('takes only the named formats, and validate warns where the HAProxy log differs', () => {
    const config = (format: unknown) =>
      configSchema.safeParse({
        clusters: { local: {} },
        outputs: [
          { kind: 'haproxy', file: 'haproxy.cfg', accessLog: { format } },
          { kind: 'nginx', file: 'nginx.conf', http: { port: 81 }, accessLog: { format } },
        ],
      });
    for (const bad of ['%h %r', 'apache', '', "json'"]) expect(config(bad).success, bad).toBe(false);
    const parsed = config('json');
    if (!parsed.success) throw new Error('the json format is refused');
    const found = checkConfig(parsed.data, {
      configDir: '/cfg',
      displayFile: 'interlock.config.yaml',
      exists: () => true,
      locate: () => undefined,
    }).filter((d) => d.code === 'policy-differs');
    expect(found.map((d) => d.path)).toEqual(['outputs[0].accessLog.format']);
    expect(found[0]?.message).toMatch(/byte count is the whole response/);
  });

  it('validate warns when the policyFiles folder does not exist', () => {
    const parsed = configSchema.parse({
      clusters: { local: {} },
      policyFiles: 'secrets',
      outputs: [{ kind: 'haproxy', file: 'haproxy.cfg' }],
    });
    const check = (existing: string[]) =>
      checkConfig(parsed, {
        configDir: '/cfg',
        displayFile: 'interlock.config.yaml',
        exists: (p) => existing.includes(p),
        locate: () => undefined,
      }).filter((d) => d.code === 'policy-files');
    expect(check([]).map((d) => [d.severity, d.path])).toEqual([['warning', 'policyFiles']]);
    expect(check(['/cfg/secrets'])).toEqual([]);
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
