import { readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { describe, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { ROOT } from './exec.ts';
import { run as runIn, tempDir, whichTool } from './infra.ts';

export const MULTINODE_SCRIPT = path.join(ROOT, 'scripts', 'multinode-swarm.sh');
export const STACK_FILE = path.join(ROOT, 'deploy', 'stack.yml');
export const NODES = ['m1', 'w1', 'w2'] as const;
export type NodeName = (typeof NODES)[number];

export interface MultinodeNode {
  /** e.g. 10.231.0.3: the node's address on the test bridge */
  readonly address: string;
  /** unix:///run/ilm-w1.sock */
  readonly host: string;
  /** ilm-w1: the engine's host name, hence its Swarm node name */
  readonly hostname: string;
}

export interface Multinode {
  /** The host's address on the bridge (a carbon-cache for the nodes listens here). */
  readonly bridge: string;
  readonly nodes: Record<NodeName, MultinodeNode>;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Runs a program from the project's root folder. */
const run = (
  file: string,
  args: readonly string[],
  options: { env?: Record<string, string>; timeoutMs?: number } = {},
) => runIn(file, args, { ...options, cwd: ROOT });

/** What the script needs; empty when it can run here. */
export function multinodeMissing(): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root');
  for (const tool of ['ip', 'iptables', 'nsenter', 'unshare', 'dockerd', 'docker', 'setsid']) {
    if (whichTool(tool) === undefined) missing.push(tool);
  }
  return missing;
}

function isCi(): boolean {
  const ci = process.env.CI;
  return ci !== undefined && ci !== '' && ci !== '0' && ci.toLowerCase() !== 'false';
}

/**
 * A `describe` for the multi-node tests. Where the script cannot run (not root, tools missing) it
 * fails in CI and is skipped elsewhere. Where it can run but the engines do not start, the
 * `beforeAll` that calls `ensureMultinodeSwarm()` fails: that is never a skip.
 */
export function describeMultinode(name: string, fn: () => void): void {
  const missing = multinodeMissing();
  if (missing.length === 0) {
    describe(name, fn);
    return;
  }
  const reason = `needs ${missing.join(', ')}; run as root after scripts/setup-test-infra.sh`;
  if (isCi()) {
    describe(name, () => {
      it('can start the multi-node Swarm', () => {
        throw new Error(`${name}: ${reason}`);
      });
    });
  } else {
    describe.skip(`${name} [skipped: ${reason}]`, fn);
  }
}

/** Runs `scripts/multinode-swarm.sh ARGS`; throws with its output when it fails. */
export async function multinodeScript(
  args: readonly string[],
  timeoutMs = 600_000,
  env?: Record<string, string>,
): Promise<string> {
  const r = await run('bash', [MULTINODE_SCRIPT, ...args], { timeoutMs, ...(env ? { env } : {}) });
  if (r.code !== 0) {
    throw new Error(`scripts/multinode-swarm.sh ${args.join(' ')} failed (${r.code}):\n${r.stderr.slice(-6000)}`);
  }
  return r.stdout;
}

/** Brings the multi-node Swarm up (or finds it up) with the interlock images in every engine. */
export async function ensureMultinodeSwarm(): Promise<Multinode> {
  await multinodeScript(['up']);
  const env = new Map(
    (await multinodeScript(['env']))
      .trim()
      .split('\n')
      .map((line) => {
        const i = line.indexOf('=');
        return [line.slice(0, i), line.slice(i + 1)] as const;
      }),
  );
  const get = (key: string) => {
    const v = env.get(key);
    if (v === undefined) throw new Error(`scripts/multinode-swarm.sh env printed no ${key}`);
    return v;
  };
  const nodes = Object.fromEntries(
    NODES.map((n) => [
      n,
      { address: get(`NODE_${n.toUpperCase()}_ADDR`), host: get(`NODE_${n.toUpperCase()}_HOST`), hostname: `ilm-${n}` },
    ]),
  ) as Record<NodeName, MultinodeNode>;
  return { bridge: get('BRIDGE_ADDR'), nodes };
}

/** `docker -H <node> ARGS`; resolves stdout, throws with stderr on a non-zero exit. */
export async function mdocker(
  node: NodeName,
  args: readonly string[],
  options: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<string> {
  const r = await run('docker', ['-H', `unix:///run/ilm-${node}.sock`, ...args], options);
  if (r.code !== 0) throw new Error(`docker -H ilm-${node} ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** Polls `check` until it returns a value other than undefined; throws after `timeoutMs` with `what` and the last error. */
export async function waitUntil<T>(
  what: string,
  check: () => Promise<T | undefined>,
  options: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const { timeoutMs = 60_000, intervalMs = 500 } = options;
  const deadline = Date.now() + timeoutMs;
  let last = 'not yet';
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (e) {
      last = String(e);
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${last}`);
    await sleep(intervalMs);
  }
}

/** The Swarm node id of each node, by name. */
export async function nodeIds(): Promise<Record<NodeName, string>> {
  const out = await mdocker('m1', ['node', 'ls', '--format', '{{.Hostname}} {{.ID}}']);
  const ids: Partial<Record<NodeName, string>> = {};
  for (const line of out.trim().split('\n')) {
    const [hostname, id] = line.split(' ');
    const n = NODES.find((x) => `ilm-${x}` === hostname);
    if (n && id) ids[n] = id;
  }
  for (const n of NODES) if (!ids[n]) throw new Error(`node ilm-${n} is not in the Swarm:\n${out}`);
  return ids as Record<NodeName, string>;
}

type Yaml = Record<string, unknown>;

/**
 * Deploys some services of the repo's deploy/stack.yml as stack `name` on the test Swarm. Only the
 * networks, volumes, configs and secrets those services use are kept; `env` sets the file's
 * variables (relative file paths in it are read from deploy/).
 */
export async function deployStack(
  name: string,
  options: { services: readonly string[]; env?: Record<string, string> },
): Promise<void> {
  const stack = parse(await readFile(STACK_FILE, 'utf8')) as Yaml;
  const services = stack.services as Record<string, Yaml>;
  const keep: Record<string, Yaml> = {};
  for (const s of options.services) {
    const service = services[s];
    if (!service) throw new Error(`deploy/stack.yml has no service ${s}`);
    keep[s] = service;
  }
  const used = (key: string, refs: (s: Yaml) => string[]) => {
    const all = stack[key] as Record<string, unknown> | undefined;
    if (!all) return undefined;
    const names = new Set(Object.values(keep).flatMap(refs));
    const kept = Object.fromEntries(Object.entries(all).filter(([k]) => names.has(k)));
    return Object.keys(kept).length > 0 ? kept : undefined;
  };
  const sources = (field: string) => (s: Yaml) =>
    ((s[field] as (string | { source: string })[] | undefined) ?? []).map((x) =>
      typeof x === 'string' ? x : x.source,
    );
  const out: Yaml = { version: stack.version, services: keep };
  const networks = used('networks', (s) => (s.networks as string[] | undefined) ?? []);
  const volumes = used('volumes', (s) =>
    ((s.volumes as (string | { type?: string; source?: string })[] | undefined) ?? []).flatMap((v) =>
      typeof v === 'string' ? [v.split(':')[0] ?? ''] : v.type === 'volume' && v.source ? [v.source] : [],
    ),
  );
  const configs = used('configs', sources('configs'));
  const secrets = used('secrets', sources('secrets'));
  if (networks) out.networks = networks;
  if (volumes) out.volumes = volumes;
  if (configs) out.configs = configs;
  if (secrets) out.secrets = secrets;
  const dir = await tempDir('interlock-stack-');
  const file = path.join(dir, 'stack.yml');
  await writeFile(file, stringify(out));
  // file variables: relative paths name files in deploy/, as they do for the stack file itself
  const env: Record<string, string> = {
    INTERLOCK_CONTROLLER_CONFIG: 'controller.yaml',
    INTERLOCK_STATS_CONFIG: 'stats.yaml',
    INTERLOCK_TOKEN_FILE: 'agent-token',
    ...options.env,
  };
  for (const [k, v] of Object.entries(env)) {
    if ((k.endsWith('_CONFIG') || k.endsWith('_FILE')) && !path.isAbsolute(v)) env[k] = path.join(ROOT, 'deploy', v);
  }
  await mdocker('m1', ['stack', 'deploy', '--resolve-image', 'never', '-c', file, name], { env, timeoutMs: 120_000 });
}

/** Removes stack `name` and waits (bounded) until its services, networks, configs and secrets are gone. */
export async function removeStack(name: string, timeoutMs = 90_000): Promise<void> {
  await mdocker('m1', ['stack', 'rm', name]).catch(() => undefined);
  const label = `label=com.docker.stack.namespace=${name}`;
  await waitUntil(
    `stack ${name} to be removed`,
    async () => {
      const left = [
        await mdocker('m1', ['service', 'ls', '-q', '--filter', label]),
        await mdocker('m1', ['network', 'ls', '-q', '--filter', label]),
        await mdocker('m1', ['config', 'ls', '-q', '--filter', label]),
        await mdocker('m1', ['secret', 'ls', '-q', '--filter', label]),
      ].join('');
      if (left.trim() === '') return true;
      // `stack rm` stops at resources still in use; ask again until the tasks are gone
      await mdocker('m1', ['stack', 'rm', name]).catch(() => undefined);
      return undefined;
    },
    { timeoutMs, intervalMs: 1000 },
  );
}

/** Stacks on the test Swarm whose name starts with `prefix` (left over by an interrupted run). */
export async function stacksWithPrefix(prefix: string): Promise<string[]> {
  const out = await mdocker('m1', ['stack', 'ls', '--format', '{{.Name}}']);
  return out
    .trim()
    .split('\n')
    .filter((s) => s.startsWith(prefix));
}

/** The test bridge's subnet: the only non-loopback addresses tests may send traffic to. */
const BRIDGE_NODE = /^10\.231\.0\.\d{1,3}$/;

/**
 * One HTTP GET to a node of the test Swarm (its address on the bridge that
 * scripts/multinode-swarm.sh creates), with `host` as the Host header; no keep-alive.
 */
export function nodeGet(
  address: string,
  port: number,
  options: { host?: string; path?: string; timeoutMs?: number } = {},
): Promise<{ status: number; body: string }> {
  if (!BRIDGE_NODE.test(address)) {
    throw new Error(`multi-node tests send traffic only to the test bridge (10.231.0.0/24), not to ${address}`);
  }
  const timeoutMs = options.timeoutMs ?? 5000;
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: address,
        port,
        path: options.path ?? '/',
        headers: options.host ? { host: options.host } : {},
        agent: false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('error', reject);
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, body });
        });
      },
    );
    const timer = setTimeout(
      () => req.destroy(new Error(`GET ${address}:${port} timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    req.end();
  });
}
