/**
 * ssh2 (through dockerode's docker-modem) instantiates a WebAssembly module as it loads, which
 * reserves more address space than `ulimit -v` 8 GiB allows: interlock used to die at start under
 * such a limit, even for `render --snapshot`. Now dockerode loads on the first connection, and
 * ssh2 only when a connection goes over ssh.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, type ExecResult, ROOT } from '../helpers/exec.ts';

/** 8,000,000 KiB, just under 8 GiB: what the reporter ran under. */
const LIMIT_KIB = 8_000_000;

function run(command: string, args: readonly string[], options: { cwd?: string } = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd ?? ROOT,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
    });
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 25_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** `interlock ARGS` under `ulimit -v`. */
function limited(args: readonly string[], cwd?: string): Promise<ExecResult> {
  return run(
    'sh',
    ['-c', `ulimit -v ${LIMIT_KIB} && exec "$0" "$@"`, process.execPath, BIN, ...args],
    cwd ? { cwd } : {},
  );
}

describe(`under ulimit -v ${LIMIT_KIB} (KiB)`, () => {
  let dir = '';
  let engine: http.Server | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'il-startup-'));
    // A standalone engine with one labelled container, on a unix socket.
    engine = http.createServer((req, res) => {
      const route = new URL(req.url ?? '/', 'http://docker').pathname.replace(/^\/v[\d.]+/, '');
      const bodies: Record<string, unknown> = {
        '/version': { ApiVersion: '1.41', Version: '20.10.24' },
        '/info': { Swarm: { LocalNodeState: 'inactive' } },
        '/networks': [],
        '/containers/json': [
          {
            Id: `c0ffee${'0'.repeat(58)}`,
            Names: ['/web'],
            Labels: { 'interlock.hostname': 'web' },
            State: 'running',
            Ports: [{ IP: '0.0.0.0', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' }],
          },
        ],
      };
      const body = bodies[route];
      if (body === undefined) res.writeHead(404).end('{"message":"page not found"}');
      else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
    await new Promise<void>((resolve) => engine?.listen(path.join(dir, 'docker.sock'), resolve));
    writeFileSync(
      path.join(dir, 'interlock.config.yaml'),
      'clusters:\n  local:\n    endpoint: { kind: socket, path: docker.sock }\noutputs:\n  - { kind: log }\n',
    );
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => (engine ? engine.close(() => resolve()) : resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('the limit is what kills a process that loads ssh2', async () => {
    // The control: without it the tests below would pass for the wrong reason.
    const r = await run('sh', ['-c', `ulimit -v ${LIMIT_KIB} && exec "$0" -e "require('ssh2')"`, process.execPath]);
    expect(r.code).not.toBe(0);
  });

  it('--version and render --snapshot run', async () => {
    const version = await limited(['--version']);
    expect(version.stderr).toBe('');
    expect(version.code).toBe(0);
    const out = path.join(dir, 'out');
    const r = await limited(['render', '--snapshot', 'examples/swarm-demo.snapshot.json', '--out-dir', out]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('haproxy.cfg created');
  });

  it('reading a live engine over a unix socket runs', async () => {
    const r = await limited(['snapshot'], dir);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).containers).toHaveLength(1);
  });
});

describe('ssh2, deferred', () => {
  it('is not loaded by a socket connection, and loads when a connection goes over ssh', async () => {
    const closed = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address() as net.AddressInfo;
        s.close(() => resolve(port));
      });
    });
    const script = `
      import { createRequire } from 'node:module';
      import { connect } from ${JSON.stringify(path.join(ROOT, 'dist/cluster/connect.js'))};
      const cache = createRequire(import.meta.url).cache;
      const ssh2Loaded = () => Object.keys(cache).some((k) => k.endsWith('/ssh2/lib/client.js'));
      const base = { cluster: 'x', source: { kind: 'config' }, tls: undefined, timeoutMs: 3000, warnings: [] };
      const viaSocket = connect({ ...base, kind: 'socket', display: 'unix:///nowhere',
        dockerOptions: { socketPath: '/nonexistent/docker.sock', protocol: 'http' } });
      const socketError = await viaSocket.version().then(() => 'answered', (e) => e.code);
      const afterSocket = ssh2Loaded();
      const viaSsh = connect({ ...base, kind: 'ssh', display: 'ssh://x@127.0.0.1',
        dockerOptions: { host: '127.0.0.1', port: ${closed}, protocol: 'ssh', username: 'x',
          sshOptions: { readyTimeout: 3000, password: 'x' } } });
      const sshError = await viaSsh.version().then(() => 'answered', (e) => e.code ?? e.message);
      console.log(JSON.stringify({ socketError, afterSocket, sshError, afterSsh: ssh2Loaded() }));
    `;
    // (--no-deprecation: docker-modem's ssh requests make Node warn about their URL, DEP0170.)
    const r = await run(process.execPath, ['--no-deprecation', '--input-type=module', '-e', script]);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({
      socketError: 'ENOENT',
      afterSocket: false,
      // ssh2 itself tried the port: the real client was made.
      sshError: 'ECONNREFUSED',
      afterSsh: true,
    });
  });
});
