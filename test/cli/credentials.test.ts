/**
 * A password (or a query-string token) in an engine address is never printed: not by validate
 * (text, GitHub annotations, JSON), not in the error line of a command that cannot connect, not in
 * the watch daemon's log or /healthz. validate says credentials belong in a file or the environment.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { resolveEndpoint } from '../../src/cluster/connect.ts';
import { configSchema } from '../../src/config/schema.ts';
import { createLogger } from '../../src/runtime/log.ts';
import { createMetrics } from '../../src/runtime/metrics.ts';
import { WatchDaemon } from '../../src/watch/daemon.ts';
import { interlock } from '../helpers/exec.ts';
import { templateTexts } from '../helpers/render.ts';

const SECRET = 'hunter2-s3cret';
const dir = mkdtempSync(path.join(os.tmpdir(), 'il-cred-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function writeConfig(name: string, clusters: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, `clusters:\n${clusters}\noutputs:\n  - { kind: log }\n`);
  return file;
}

describe('credentials in endpoints, through the CLI', () => {
  const tcp = writeConfig('tcp.yaml', `  a: { endpoint: { kind: tcp, host: "tcp://admin:${SECRET}@127.0.0.1:2375" } }`);
  const ssh = writeConfig(
    'ssh.yaml',
    `  b: { endpoint: { kind: ssh, host: "ssh://deploy:${SECRET}@example.invalid" } }`,
  );
  const noPort = writeConfig(
    'noport.yaml',
    `  c: { endpoint: { kind: tcp, host: "tcp://admin:${SECRET}@127.0.0.1" } }`,
  );

  it.each(['text', 'github', 'json'])('validate --format %s refuses tcp credentials and masks them', async (format) => {
    const r = await interlock(['validate', '--config', tcp, '--format', format]);
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).not.toContain(SECRET);
    expect(r.stdout).toContain('carries credentials');
    expect(r.stdout).toContain('admin:***@127.0.0.1:2375');
  });

  it('validate warns about an ssh password, masked, and says where credentials belong', async () => {
    const r = await interlock(['validate', '--config', ssh]);
    expect(r.stdout + r.stderr).not.toContain(SECRET);
    expect(r.stdout).toMatch(/warning: clusters\.b\.endpoint\.host: .*ssh:\/\/deploy:\*\*\*@example\.invalid/);
    expect(r.stdout).toMatch(/fix: .*(file|environment)/);
    expect(r.code).toBe(0);
  });

  it('a schema error quoting the value masks the password', async () => {
    const r = await interlock(['validate', '--config', noPort, '--format', 'github']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('admin:***@');
    expect(r.stdout + r.stderr).not.toContain(SECRET);
  });

  it.each(['text', 'github', 'json'])('the error line of render --format %s masks it', async (format) => {
    const r = await interlock(['render', '--config', writeConfig('env.yaml', '  local: {}'), '--format', format], {
      env: { DOCKER_HOST: `tcp://admin:${SECRET}@127.0.0.1:2375` },
    });
    expect(r.code).toBe(2);
    expect(r.stdout + r.stderr).toContain('admin:***@127.0.0.1:2375');
    expect(r.stdout + r.stderr).not.toContain(SECRET);
  });
});

describe('credentials in endpoints, in the watch daemon', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('neither the log nor /healthz shows them, however often the read is retried', async () => {
    const lines: string[] = [];
    const env = { HOME: dir, DOCKER_HOST: `tcp://admin:${SECRET}@127.0.0.1:2375?token=${SECRET}` };
    const config = configSchema.parse({
      clusters: {
        a: { endpoint: { kind: 'tcp', host: `tcp://admin:${SECRET}@127.0.0.1:2375` } },
        b: {},
      },
      outputs: [{ kind: 'log' }],
    });
    const daemon = new WatchDaemon({
      config,
      configDir: dir,
      templates: templateTexts(),
      env,
      log: createLogger({ format: 'logfmt', level: 'debug', write: (l) => lines.push(l) }),
      metrics: createMetrics(),
      apply: async () => ({ kind: 'unchanged' }),
      // As the CLI's: the real resolution of the endpoint.
      connect: async (name, cluster, configDir) => {
        const resolved = await resolveEndpoint(cluster, env, { name, configDir });
        throw new Error(`unreachable: ${resolved.display} resolved`);
      },
      watcher: { backoff: { jitter: 0 } },
    });
    daemon.start();
    await vi.advanceTimersByTimeAsync(12_000);
    await daemon.stop();
    const health = JSON.stringify(daemon.health());
    expect(lines.join('\n')).toContain('***');
    expect(lines.join('\n')).not.toContain(SECRET);
    expect(health).toContain('***');
    expect(health).not.toContain(SECRET);
  });
});
