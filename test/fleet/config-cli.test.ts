/** The fleet's config checks, the agent's flags and environment, and the status table. */
import { describe, expect, it } from 'vitest';
import { agentSettings, envName } from '../../src/cli/agent.ts';
import { statusTable } from '../../src/cli/status.ts';
import { checkConfig } from '../../src/config/check.ts';
import { configSchema } from '../../src/config/schema.ts';

function codes(input: Record<string, unknown>): string[] {
  const config = configSchema.parse({ clusters: { local: {} }, ...input });
  return checkConfig(config, {
    configDir: '/cfg',
    displayFile: 'interlock.config.yaml',
    exists: () => true,
    locate: () => undefined,
  })
    .filter((d) => d.severity === 'error')
    .map((d) => `${d.code} ${d.path}`);
}

const haproxy = { kind: 'haproxy', file: '/etc/haproxy/haproxy.cfg' };

describe('config checks for served outputs', () => {
  it('serve needs agents; write: false needs serve', () => {
    expect(codes({ outputs: [{ ...haproxy, serve: true }] })).toContain('serve-without-agents outputs[0].serve');
    expect(codes({ outputs: [{ ...haproxy, write: false }] })).toContain('write-nothing outputs[0].write');
    expect(
      codes({ agents: { tokenFile: 't' }, outputs: [{ ...haproxy, serve: true, write: false }] }).filter((c) =>
        /serve|write/.test(c),
      ),
    ).toEqual([]);
  });

  it("what the proxy reads must be under the served output's folder", () => {
    const agents = { tokenFile: 't' };
    expect(codes({ agents, outputs: [{ ...haproxy, serve: true, https: { certDir: '/etc/ssl/private' } }] })).toContain(
      'served-outside outputs[0].https.certDir',
    );
    expect(
      codes({ agents, outputs: [{ ...haproxy, serve: true, https: { certDir: '/etc/haproxy/certs' } }] }),
    ).not.toContain('served-outside outputs[0].https.certDir');
    expect(
      codes({ agents, outputs: [{ kind: 'nginx', file: '/etc/nginx/nginx.conf', runDir: '/run/nginx', serve: true }] }),
    ).toContain('served-outside outputs[0].runDir');
    // Not served: no such rule.
    expect(codes({ outputs: [{ ...haproxy, https: { certDir: '/etc/ssl/private' } }] })).not.toContain(
      'served-outside outputs[0].https.certDir',
    );
  });

  it('agents.listen is ADDRESS:PORT', () => {
    expect(
      configSchema.safeParse({ clusters: {}, outputs: [], agents: { tokenFile: 't', listen: 'nope' } }).success,
    ).toBe(false);
    const ok = configSchema.parse({ clusters: {}, outputs: [], agents: { tokenFile: 't' } });
    expect(ok.agents).toMatchObject({ listen: '0.0.0.0:8477', wait: '30s', staleAfter: '90s' });
  });
});

describe('interlock agent settings', () => {
  const base = { logFormat: 'logfmt' as const, logLevel: 'info' as const };

  it('reads flags, else INTERLOCK_* variables; paths resolve against the working folder', () => {
    const r = agentSettings(
      { ...base, controller: 'http://c:8477', output: 'edge', reloadMasterSocket: 'run/master.sock' },
      { INTERLOCK_TOKEN_FILE: 'secret', INTERLOCK_DIR: '/etc/haproxy', INTERLOCK_INSTANCE: 'proxy.1' },
      '/work',
    );
    expect(r).toMatchObject({
      ok: true,
      value: {
        controller: 'http://c:8477/',
        tokenFile: '/work/secret',
        dir: '/etc/haproxy',
        instance: 'proxy.1',
        check: { kind: 'binary' },
        reload: { kind: 'haproxy-master', socket: '/work/run/master.sock' },
      },
    });
    expect(envName('token-file')).toBe('INTERLOCK_TOKEN_FILE');
  });

  it('says what is missing or contradictory', () => {
    const missing = agentSettings({ ...base }, {}, '/');
    expect(missing).toEqual({
      ok: false,
      error:
        'missing --controller (or INTERLOCK_CONTROLLER), --token-file (or INTERLOCK_TOKEN_FILE), --output (or INTERLOCK_OUTPUT), --dir (or INTERLOCK_DIR)',
    });
    const all = { ...base, controller: 'http://c:1', tokenFile: 't', output: 'o', dir: 'd' };
    expect(agentSettings({ ...all, controller: 'ftp://c' }, {}, '/')).toMatchObject({ ok: false, error: /http/ });
    expect(agentSettings({ ...all, reloadCommand: 'x', reloadPidFile: 'p' }, {}, '/')).toMatchObject({
      ok: false,
      error: /one reload method/,
    });
    expect(agentSettings({ ...all, reloadSignal: 'SIGHUP' }, {}, '/')).toMatchObject({ ok: false });
    expect(agentSettings({ ...all, check: false, checkCommand: 'true' }, {}, '/')).toMatchObject({ ok: false });
    expect(agentSettings({ ...all, checkCommand: 'sh check.sh {file}' }, {}, '/')).toMatchObject({
      ok: true,
      value: { check: { kind: 'command', command: ['sh', 'check.sh', '{file}'] } },
    });
  });
});

describe('interlock status table', () => {
  it('lists every agent with its state, short hash and first error line', () => {
    const now = Date.parse('2026-12-02T04:00:10Z');
    const text = statusTable(
      {
        outputs: { edge: { hash: 'a'.repeat(64), since: '2026-12-02T04:00:00.000Z', bytes: 10, gzipBytes: 5 } },
        list: [
          {
            instance: 'p1',
            node: 'n1',
            output: 'edge',
            proxy: 'haproxy',
            state: 'converged',
            applied: 'a'.repeat(64),
            lastSeen: '2026-12-02T04:00:08.000Z',
            error: null,
            address: null,
          },
          {
            instance: 'p2',
            node: 'n2',
            output: 'edge',
            proxy: 'haproxy',
            state: 'not_converged',
            applied: 'b'.repeat(64),
            lastSeen: '2026-12-02T04:00:00.000Z',
            error: '[ALERT] bad line\nmore',
            address: null,
          },
        ],
      },
      now,
    );
    expect(text).toContain(`output edge: hash ${'a'.repeat(12)} since 2026-12-02T04:00:00.000Z`);
    expect(text).toMatch(/p1\s+n1\s+haproxy\s+converged\s+a{12}\s+2s ago\s+-/);
    expect(text).toMatch(/p2\s+n2\s+haproxy\s+not_converged\s+b{12}\s+10s ago\s+\[ALERT\] bad line$/m);
    expect(text).toContain('1 of 2 agents converged');
  });
});
