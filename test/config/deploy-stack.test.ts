// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the file checks shell and compose `${VAR:-default}` text
/**
 * deploy/: the stack file and the configs it ships stay valid and agree with each other (the
 * multi-node integration tests deploy them for real; this catches drift without a Swarm).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { MALLOC_ENV_FILE, readMallocEnv } from '../../bench/lib/malloc-env.ts';
import { interlock, ROOT } from '../helpers/exec.ts';

const deploy = (f: string) => path.join(ROOT, 'deploy', f);
const read = <T>(f: string) => parse(readFileSync(deploy(f), 'utf8')) as T;

interface Service {
  environment?: Record<string, string>;
  secrets?: { target: string }[];
  volumes?: unknown[];
  ports?: { mode?: string }[];
  deploy: { endpoint_mode?: string; mode?: string; placement?: { constraints?: string[] } };
}
interface Stack {
  services: Record<string, Service>;
}
interface ControllerConfig {
  outputs: { kind?: string; name?: string; serve?: boolean; file: string; masterSocket?: string; runDir?: string }[];
  agents: { listen: string; tokenFile: string };
}

describe('deploy/', () => {
  const stack = read<Stack>('stack.yml');
  const service = (name: string): Service => {
    const s = stack.services[name];
    if (!s) throw new Error(`deploy/stack.yml has no service ${name}`);
    return s;
  };

  it.each(['controller.yaml', 'controller-nginx.yaml', 'stats.yaml'])(
    '%s passes `interlock validate`',
    async (file) => {
      const r = await interlock(['validate', '--config', deploy(file)]);
      expect(r.stderr + r.stdout).toContain('valid');
      expect(r.code).toBe(0);
    },
  );

  // The entry point (deploy/proxy-entrypoint.sh) starts the proxy on PROXY_CONFIG (default per
  // kind) and points the agent at the config's folder and at the reload the proxy listens for.
  const entrypoint = readFileSync(deploy('proxy-entrypoint.sh'), 'utf8');
  const kinds = [
    {
      kind: 'haproxy',
      config: 'controller.yaml',
      dir: undefined,
      file: '/etc/haproxy/haproxy.cfg',
      defaults: [
        'conf=${PROXY_CONFIG:-/etc/haproxy/haproxy.cfg}',
        'sock=${PROXY_MASTER_SOCKET:-/run/haproxy/master.sock}',
      ],
    },
    {
      kind: 'nginx',
      config: 'controller-nginx.yaml',
      dir: '/etc/nginx',
      file: '/etc/nginx/nginx.conf',
      defaults: ['conf=${PROXY_CONFIG:-/etc/nginx/nginx.conf}', 'run=${PROXY_RUN_DIR:-/etc/nginx/run}'],
    },
  ];
  it.each(kinds)('$kind: the agents ask for the output the controller serves, where the proxy reads it', (k) => {
    const env = service('proxy').environment ?? {};
    const controller = read<ControllerConfig>(k.config);
    const served = controller.outputs.filter((o) => o.serve);
    expect(served.map((o) => o.name)).toEqual([env.INTERLOCK_OUTPUT]);
    const output = served[0] as { kind?: string; file: string; masterSocket?: string; runDir?: string };
    expect(output.kind).toBe(k.kind);
    // the entry point starts the proxy on this file (and HAProxy with this master socket)
    expect(output.file).toBe(k.file);
    for (const line of k.defaults) expect(entrypoint).toContain(line);
    if (k.kind === 'haproxy') expect(output.masterSocket).toBe('/run/haproxy/admin.sock');
    else expect(output.runDir).toBe('/etc/nginx/run');
    // the agent's folder and reload come from the entry point: the stack sets neither
    expect(env.INTERLOCK_DIR).toBeUndefined();
    expect(Object.keys(env).filter((v) => v.startsWith('INTERLOCK_RELOAD'))).toEqual([]);
    expect(entrypoint).toContain('export INTERLOCK_DIR="$(dirname "$conf")"');
    // the last good files survive a restart: the volume holds the proxy's config folder
    // (INTERLOCK_PROXY_DIR, set for Nginx, default HAProxy's)
    expect(service('proxy').volumes).toContain('proxy-files:${INTERLOCK_PROXY_DIR:-/etc/haproxy}');
    expect(path.dirname(output.file)).toBe(k.dir ?? '/etc/haproxy');
    // the agents' listener, as the agents address it (the stack's short service name)
    expect(env.INTERLOCK_CONTROLLER).toBe(`http://controller:${String(controller.agents.listen).split(':')[1]}`);
    // the token: the controller and the agents read the same secret
    const secretPath = (s: string) => `/run/secrets/${(service(s).secrets ?? []).map((x) => x.target)[0]}`;
    expect(controller.agents.tokenFile).toBe(secretPath('controller'));
    expect(env.INTERLOCK_TOKEN_FILE).toBe(secretPath('proxy'));
  });

  it('the entry point sets the reload for the proxy it started, unless one is given', () => {
    expect(entrypoint).toContain('haproxy) export INTERLOCK_RELOAD_MASTER_SOCKET="$sock" ;;');
    expect(entrypoint).toContain('nginx) export INTERLOCK_RELOAD_PID_FILE="$run/nginx.pid" ;;');
    expect(entrypoint).toContain(
      'if [ -z "${INTERLOCK_RELOAD_MASTER_SOCKET:-}${INTERLOCK_RELOAD_PID_FILE:-}${INTERLOCK_RELOAD_COMMAND:-}" ]; then',
    );
  });

  it('needs no VIP and no routing mesh: dnsrr everywhere, ports in host mode', () => {
    for (const [name, s] of Object.entries(stack.services)) {
      expect(s.deploy.endpoint_mode, name).toBe('dnsrr');
      for (const p of s.ports ?? []) expect(p.mode, name).toBe('host');
    }
    expect(service('controller').deploy.placement?.constraints).toContain('node.role == manager');
    expect(service('stats').deploy.mode).toBe('global');
  });

  it('every image runs with the malloc settings of deploy/malloc.env, the ones the watch benchmark measures', () => {
    const settings = readFileSync(deploy('malloc.env'), 'utf8')
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('#'));
    // Only NAME=value lines (what the build script and the benchmark read), known to glibc.
    expect(settings).toEqual(['MALLOC_ARENA_MAX=2', 'MALLOC_MMAP_THRESHOLD_=65536']);
    const build = readFileSync(path.join(ROOT, 'scripts', 'build-images.sh'), 'utf8');
    expect(build).toContain(
      `while IFS= read -r setting; do changes+=("ENV $setting"); done < <(grep -E '^[A-Z_]+=[^ ]+$' "$REPO/deploy/malloc.env")`,
    );
    // A changed file rebuilds the images.
    expect(build).toMatch(/find dist templates .*deploy\/malloc\.env -type f/);
    // The benchmark's reader (bench/lib/malloc-env.ts) gives the daemons exactly these settings.
    expect(MALLOC_ENV_FILE).toBe(deploy('malloc.env'));
    expect(readMallocEnv()).toEqual({ MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '65536' });
    const bench = readFileSync(path.join(ROOT, 'bench', 'watch.ts'), 'utf8');
    expect(bench).toContain('return readMallocEnv();');
  });
});
