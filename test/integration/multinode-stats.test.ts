/**
 * The stats collectors of deploy/stack.yml on a real three-node Swarm (scripts/multinode-swarm.sh):
 * one collector per node (global, `localOnly`), each reading its own engine, write per-node series
 * to a carbon-cache on the host. The carbon-cache listens on the host's address on the test bridge,
 * so the traffic stays inside the bridge subnet.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { TEST_IMAGE, tempDir } from '../helpers/infra.ts';
import {
  deployStack,
  describeMultinode,
  ensureMultinodeSwarm,
  type Multinode,
  mdocker,
  NODES,
  type NodeName,
  nodeIds,
  removeStack,
  stacksWithPrefix,
  waitUntil,
} from '../helpers/multinode.ts';
import { CarbonCache } from '../stats/carbon-cache.ts';

const STACK_PREFIX = 'mnstats';
const PROBE_PREFIX = 'mnstats-probe';
const suffix = Math.random().toString(36).slice(2, 8);
const stack = `${STACK_PREFIX}${suffix}`;
const probe = `${PROBE_PREFIX}-${suffix}`;
const nowS = () => Math.floor(Date.now() / 1000);

let swarm: Multinode;
let carbon: CarbonCache | undefined;
let ids: Record<NodeName, string>;

/** The newest stored value of a series since `from`, once there is one. */
async function latest(metric: string, from: number): Promise<number | undefined> {
  const series = await carbon?.fetch(metric, from, nowS() + 20);
  const values = (series?.values ?? []).filter((v): v is number => typeof v === 'number');
  return values.at(-1);
}

describeMultinode('stats collectors on a three-node Swarm (deploy/stack.yml)', () => {
  beforeAll(async () => {
    swarm = await ensureMultinodeSwarm();
    ids = await nodeIds();
    // what an interrupted run may have left
    for (const s of await stacksWithPrefix(STACK_PREFIX)) await removeStack(s);
    const services = await mdocker('m1', ['service', 'ls', '--format', '{{.Name}}']);
    for (const s of services.split('\n').filter((x) => x.startsWith(PROBE_PREFIX))) {
      await mdocker('m1', ['service', 'rm', s]);
    }

    carbon = await CarbonCache.create({ host: swarm.bridge });
    await carbon.start();
    const dir = await tempDir('interlock-mnstats-');
    const config = path.join(dir, 'stats.yaml');
    await writeFile(
      config,
      [
        'clusters:',
        '  swarm:',
        '    endpoint: { kind: socket, path: /var/run/docker.sock }',
        '    localOnly: true',
        'outputs:',
        '  - kind: carbon',
        `    address: ${swarm.bridge}:${carbon.linePort}`,
        '    prefix: mn',
        '    interval: 2s',
        '',
      ].join('\n'),
    );
    // one task of the probe on every node, and the collectors
    await mdocker('m1', [
      'service',
      'create',
      '--detach',
      '--name',
      probe,
      '--mode',
      'global',
      '--init',
      '--no-resolve-image',
      TEST_IMAGE,
      '/bin/sleep',
      '3600',
    ]);
    await deployStack(stack, {
      services: ['stats'],
      env: { INTERLOCK_STATS_CONFIG: config, DOCKER_SOCKET: '/run/{{.Node.Hostname}}.sock' },
    });
  }, 900_000);

  afterAll(async () => {
    try {
      await removeStack(stack).catch(() => undefined);
      await mdocker('m1', ['service', 'rm', probe]).catch(() => undefined);
    } finally {
      await carbon?.dispose();
    }
  }, 180_000);

  it('every node writes its own series: the per-node service sums and its collector', async () => {
    const from = nowS() - 60;
    for (const n of NODES) {
      // the probe has exactly one task per node, so each node's sum sampled one task
      const sampled = await waitUntil(
        `mn.swarm.services.${probe}.<node ${n}>.tasks.sampled`,
        () => latest(`mn.swarm.services.${probe}.${ids[n]}.tasks.sampled`, from),
        { timeoutMs: 180_000, intervalMs: 1000 },
      ).catch(async (e: unknown) => {
        throw new Error(`${String(e)}\ncarbon:\n${await carbon?.logTail()}\nstats tasks:\n${await statsLogs()}`);
      });
      expect(sampled, n).toBe(1);
      // the task series carry the node id too (a global service's slot is its node)
      expect(await latest(`mn.swarm.tasks.${probe}.${ids[n]}.pids`, from), n).toBeGreaterThan(0);
      // and each collector reports itself under its own host name (the node's); the count starts
      // at 0 in its first round
      const sent = await waitUntil(`mn.interlock.ilm-${n}.metrics.sent > 0`, async () => {
        const v = await latest(`mn.interlock.ilm-${n}.metrics.sent`, from);
        return v !== undefined && v > 0 ? v : undefined;
      });
      expect(sent, n).toBeGreaterThan(0);
    }
  }, 300_000);
});

/** The collectors' own logs, for a failure message. */
async function statsLogs(): Promise<string> {
  return mdocker('m1', ['service', 'logs', '--raw', '--tail', '20', `${stack}_stats`]).catch((e: unknown) => String(e));
}
