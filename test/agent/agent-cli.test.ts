/**
 * The `interlock agent` process and its signals: the command runner's handling (src/cli/run.ts),
 * as every long-running command has it. SIGTERM stops it (exit 0); a second signal while it is
 * still stopping (here: waiting on a slow local check) exits at once with 130. No proxy binary.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeBundle } from '../../src/fleet/bundle.ts';
import { FleetHub, startAgentsServer } from '../../src/fleet/server.ts';
import { createLogger } from '../../src/runtime/log.ts';
import { BIN, ROOT } from '../helpers/exec.ts';
import { waitFor } from '../watch/it-helpers.ts';

const TOKEN = 'agent-cli-token';
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setUp(checkCommand: string) {
  const dir = await mkdtemp(path.join(tmpdir(), 'il-agent-cli-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  await writeFile(path.join(dir, 'token'), `${TOKEN}\n`);
  const hub = new FleetHub({
    token: TOKEN,
    waitMs: 1000,
    staleMs: 60_000,
    log: createLogger({ format: 'logfmt', level: 'error', write: () => {} }),
  });
  hub.setOutputs(['edge']);
  const server = await startAgentsServer(hub, { host: '127.0.0.1', port: 0 });
  cleanups.push(() => server.close());
  hub.publish(makeBundle('edge', 'haproxy', '/srv/edge', [{ name: 'haproxy.cfg', content: '# v1\n' }]));
  const child = spawn(
    process.execPath,
    [
      BIN,
      'agent',
      '--controller',
      `http://127.0.0.1:${server.address.port}`,
      '--token-file',
      path.join(dir, 'token'),
      '--output',
      'edge',
      '--dir',
      path.join(dir, 'files'),
      '--check-command',
      checkCommand,
      '--reload-command',
      'true',
    ],
    { cwd: ROOT, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  let log = '';
  child.stderr.on('data', (b: Buffer) => {
    log += b.toString();
  });
  return { child, exited, log: () => log };
}

describe('interlock agent: signals', () => {
  it('SIGTERM stops it: exit 0, said in the log', async () => {
    const { child, exited, log } = await setUp('true');
    await waitFor('applied', () => /msg=applied/.test(log()), { timeoutMs: 20_000 });
    child.kill('SIGTERM');
    expect(await exited).toEqual({ code: 0, signal: null });
    expect(log()).toMatch(/msg=stopping signal=SIGTERM/);
    expect(log()).toMatch(/msg=stopped/);
  });

  it('a second signal while it is stopping exits at once with 130', async () => {
    // The local check takes 20 s: stopping waits for it, and the second signal does not.
    const { child, exited, log } = await setUp('sleep 20');
    await waitFor('the agent to start', () => /msg="agent starting"/.test(log()), { timeoutMs: 20_000 });
    // Time for the agent to fetch the bundle and start its check.
    await new Promise((r) => setTimeout(r, 1500));
    child.kill('SIGTERM');
    await waitFor('stopping', () => /msg=stopping/.test(log()), { timeoutMs: 10_000 });
    child.kill('SIGINT');
    const started = Date.now();
    expect(await exited).toEqual({ code: 130, signal: null });
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(log()).toMatch(/second signal: exiting now/);
  }, 60_000);
});
