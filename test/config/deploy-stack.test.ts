/**
 * deploy/: the stack file and the configs it ships stay valid and agree with each other (the
 * multi-node integration tests deploy them for real; this catches drift without a Swarm).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
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
  outputs: { name?: string; serve?: boolean; file: string; masterSocket?: string }[];
  agents: { listen: string; tokenFile: string };
}

describe('deploy/', () => {
  const stack = read<Stack>('stack.yml');
  const controller = read<ControllerConfig>('controller.yaml');
  const service = (name: string): Service => {
    const s = stack.services[name];
    if (!s) throw new Error(`deploy/stack.yml has no service ${name}`);
    return s;
  };

  it.each(['controller.yaml', 'stats.yaml'])('%s passes `interlock validate`', async (file) => {
    const r = await interlock(['validate', '--config', deploy(file)]);
    expect(r.stderr + r.stdout).toContain('valid');
    expect(r.code).toBe(0);
  });

  it('the agents ask for the output the controller serves, where the proxy reads it', () => {
    const env = service('proxy').environment ?? {};
    const served = (
      controller.outputs as { name?: string; serve?: boolean; file: string; masterSocket?: string }[]
    ).filter((o) => o.serve);
    expect(served.map((o) => o.name)).toEqual([env.INTERLOCK_OUTPUT]);
    const output = served[0] as { file: string; masterSocket?: string };
    expect(path.dirname(output.file)).toBe(env.INTERLOCK_DIR);
    // the entry point starts HAProxy on this file and with this master socket
    expect(output.file).toBe('/etc/haproxy/haproxy.cfg');
    expect(env.INTERLOCK_RELOAD_MASTER_SOCKET).toBe('/run/haproxy/master.sock');
    expect(output.masterSocket).toBe('/run/haproxy/admin.sock');
    // the agents' listener, as the agents address it (the stack's short service name)
    expect(env.INTERLOCK_CONTROLLER).toBe(`http://controller:${String(controller.agents.listen).split(':')[1]}`);
    // the token: the controller and the agents read the same secret
    const secretPath = (s: string) => `/run/secrets/${(service(s).secrets ?? []).map((x) => x.target)[0]}`;
    expect(controller.agents.tokenFile).toBe(secretPath('controller'));
    expect(env.INTERLOCK_TOKEN_FILE).toBe(secretPath('proxy'));
    // the last good files survive a restart: the volume holds the agent's folder
    expect(service('proxy').volumes).toContain(`proxy-files:${env.INTERLOCK_DIR}`);
  });

  it('needs no VIP and no routing mesh: dnsrr everywhere, ports in host mode', () => {
    for (const [name, s] of Object.entries(stack.services)) {
      expect(s.deploy.endpoint_mode, name).toBe('dnsrr');
      for (const p of s.ports ?? []) expect(p.mode, name).toBe('host');
    }
    expect(service('controller').deploy.placement?.constraints).toContain('node.role == manager');
    expect(service('stats').deploy.mode).toBe('global');
  });
});
