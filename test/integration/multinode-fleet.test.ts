/**
 * The proxy fleet of deploy/stack.yml on a real three-node Swarm (scripts/multinode-swarm.sh): the
 * controller on the manager, a proxy replica (the proxy + `interlock agent` in one task) on each of
 * the two workers, an application on the overlay network `interlock-edge`. HTTP goes to the
 * workers' addresses on the test bridge, where the proxies publish port 80 in host mode.
 *
 * HAProxy (the stack's default): a new service and a label change are served by every replica;
 * `interlock status` shows every replica on the controller's hash; a replica whose container is
 * killed, and a worker that was stopped while a change happened, come back on the current hash
 * with no controller action. Nginx (the same stack with interlock/nginx:local,
 * INTERLOCK_PROXY_DIR=/etc/nginx and deploy/controller-nginx.yaml, as the README says): the first
 * three (the agent's part is the same code for both kinds).
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { TEST_IMAGE, tempDir } from '../helpers/infra.ts';
import {
  deployStack,
  describeMultinode,
  ensureMultinodeSwarm,
  type Multinode,
  mdocker,
  multinodeScript,
  nodeGet,
  removeStack,
  waitUntil,
} from '../helpers/multinode.ts';

interface AgentView {
  output: string;
  instance: string;
  node: string;
  state: string;
  applied: string | null;
  error?: string | null;
}
interface Fleet {
  outputs: Record<string, { hash: string | null }>;
  list: AgentView[];
}

function fleetSuite(kind: 'haproxy' | 'nginx'): void {
  const STACK = kind === 'haproxy' ? 'mnfleet' : 'mnfleetng';
  const WEB_PREFIX = `${STACK}-web`;
  let swarm: Multinode;
  const suffix = Math.random().toString(36).slice(2, 8);
  const web = `${WEB_PREFIX}-${suffix}`;
  const domain = `${suffix}.test`;
  const WORKERS = ['w1', 'w2'] as const;

  /** Resolves once `host` answers 200 with the web page on every worker's proxy; returns the bodies. */
  async function servedEverywhere(host: string, timeoutMs = 90_000): Promise<string[]> {
    return Promise.all(
      WORKERS.map((w) =>
        waitUntil(
          `${host} served by the proxy on ${w}`,
          async () => {
            const r = await nodeGet(swarm.nodes[w].address, 80, { host });
            if (r.status !== 200) throw new Error(`HTTP ${r.status} ${r.body.slice(0, 200)}`);
            return r.body;
          },
          { timeoutMs },
        ),
      ),
    );
  }

  /** Resolves once no worker's proxy serves `host` any more (HAProxy answers 503 for unknown hosts). */
  async function goneEverywhere(host: string): Promise<void> {
    await Promise.all(
      WORKERS.map((w) =>
        waitUntil(
          `${host} no longer served on ${w}`,
          async () => {
            const r = await nodeGet(swarm.nodes[w].address, 80, { host });
            return r.status === 503 ? true : undefined;
          },
          { timeoutMs: 90_000 },
        ),
      ),
    );
  }

  async function controllerContainer(): Promise<string> {
    return waitUntil('the controller container on the manager', async () => {
      const id = (
        await mdocker('m1', ['ps', '-q', '--filter', `label=com.docker.swarm.service.name=${STACK}_controller`])
      ).trim();
      return id === '' ? undefined : (id.split('\n')[0] as string);
    });
  }

  /**
   * `interlock status` run inside the controller's container (it reads the controller's /healthz).
   * Exit 1 ("not every agent converged") throws, so `waitUntil` asks again.
   */
  async function status(format: 'json' | 'table'): Promise<string> {
    return mdocker('m1', ['exec', await controllerContainer(), 'interlock', 'status', '--format', format]);
  }

  /** Waits until `interlock status` shows both replicas converged on the controller's current hash. */
  async function converged(): Promise<{ hash: string; fleet: Fleet }> {
    return waitUntil(
      'every replica converged in `interlock status`',
      async () => {
        const fleet = (JSON.parse(await status('json')) as { agents: Fleet }).agents;
        const hash = fleet.outputs.edge?.hash;
        if (!hash) throw new Error('the controller has no bundle yet');
        const agents = fleet.list.filter((a) => a.output === 'edge');
        const nodes = agents.map((a) => a.node).sort();
        if (nodes.join(',') !== 'ilm-w1,ilm-w2' || agents.some((a) => a.state !== 'converged' || a.applied !== hash)) {
          throw new Error(`hash ${hash}; agents: ${JSON.stringify(agents)}`);
        }
        return { hash, fleet };
      },
      { timeoutMs: 120_000, intervalMs: 1000 },
    );
  }

  async function proxyContainer(node: 'w1' | 'w2'): Promise<string | undefined> {
    const id = (
      await mdocker(node, ['ps', '-q', '--filter', `label=com.docker.swarm.service.name=${STACK}_proxy`])
    ).trim();
    return id === '' ? undefined : id.split('\n')[0];
  }

  async function setHostname(name: string): Promise<void> {
    await mdocker('m1', ['service', 'update', '--detach', '--label-add', `interlock.hostname=${name}`, web]);
  }

  describeMultinode(`a proxy fleet of ${kind} replicas on a three-node Swarm (deploy/stack.yml)`, () => {
    beforeAll(async () => {
      swarm = await ensureMultinodeSwarm();
      // `up` imports the HAProxy image; the Nginx one on demand (re-imported only when it changed)
      if (kind === 'nginx') await multinodeScript(['images'], 600_000, { MULTINODE_IMAGES: 'interlock nginx' });
      // proxies go to the nodes labelled interlock.edge=true: the two workers
      for (const w of WORKERS)
        await mdocker('m1', ['node', 'update', '--label-add', 'interlock.edge=true', `ilm-${w}`]);
      // what an interrupted run may have left
      const services = await mdocker('m1', ['service', 'ls', '--format', '{{.Name}}']);
      for (const s of services.split('\n').filter((x) => x.startsWith(WEB_PREFIX))) {
        await mdocker('m1', ['service', 'rm', s]);
      }
      await removeStack(STACK);

      const dir = await tempDir('interlock-mnfleet-');
      const token = path.join(dir, 'agent-token');
      await writeFile(token, `${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}\n`, {
        mode: 0o600,
      });
      await deployStack(STACK, {
        services: ['controller', 'proxy'],
        env: {
          INTERLOCK_TOKEN_FILE: token,
          DOCKER_SOCKET: '/run/{{.Node.Hostname}}.sock',
          // the README's Nginx variant of the same stack file
          ...(kind === 'nginx'
            ? {
                INTERLOCK_PROXY_IMAGE: 'interlock/nginx:local',
                INTERLOCK_PROXY_DIR: '/etc/nginx',
                INTERLOCK_CONTROLLER_CONFIG: 'controller-nginx.yaml',
              }
            : {}),
        },
      });
      // an application on the proxies' network, one task per node; each page names its node
      await mdocker('m1', [
        'service',
        'create',
        '--detach',
        '--name',
        web,
        '--replicas',
        '2',
        '--init',
        '--no-resolve-image',
        '--network',
        'interlock-edge',
        '--endpoint-mode',
        'dnsrr',
        '--hostname',
        '{{.Node.Hostname}}-web',
        '--label',
        'interlock.hostname=web',
        '--label',
        `interlock.domain=${domain}`,
        '--label',
        'interlock.port=80',
        TEST_IMAGE,
        'sh',
        '-c',
        'hostname >/www/index.html; exec httpd -f -p 80 -h /www',
      ]);
    }, 900_000);

    // The steps build on each other: after a failure the later ones are skipped, not left to time out.
    let broken = false;
    beforeEach((ctx) => {
      if (broken) ctx.skip();
    });
    afterEach((ctx) => {
      if (ctx.task.result?.state === 'fail') broken = true;
    });

    afterAll(async () => {
      await mdocker('m1', ['service', 'rm', web]).catch(() => undefined);
      await removeStack(STACK).catch(() => undefined);
    }, 180_000);

    it('every proxy replica serves a new service, then its label change', async () => {
      const bodies = await servedEverywhere(`web.${domain}`, 180_000);
      for (const b of bodies) expect(b).toMatch(/^ilm-(m1|w1|w2)-web$/m);
      await setHostname('web2');
      await servedEverywhere(`web2.${domain}`);
      await goneEverywhere(`web.${domain}`);
    }, 300_000);

    it('`interlock status` shows every replica on the same hash', async () => {
      const { hash } = await converged();
      const table = await status('table');
      expect(table).toContain(`hash ${hash.slice(0, 12)}`);
      expect(table).toContain('2 of 2 agents converged');
      expect(table).toMatch(/ilm-w1/);
      expect(table).toMatch(/ilm-w2/);
    }, 180_000);

    it('a replica whose container is killed comes back on the current hash', async () => {
      const before = await proxyContainer('w1');
      expect(before).toBeDefined();
      await mdocker('w1', ['kill', before as string]);
      // Swarm starts a new task on w1; its agent asks the controller at once
      await waitUntil('a new proxy container on w1', async () => {
        const id = await proxyContainer('w1');
        return id !== undefined && id !== before ? id : undefined;
      });
      await servedEverywhere(`web2.${domain}`);
      await converged();
    }, 240_000);

    it.runIf(kind === 'haproxy')(
      'a worker stopped while the routes changed converges to the current hash when it is back',
      async () => {
        await multinodeScript(['stop', 'w2'], 180_000);
        try {
          await setHostname('web3');
          // the running replica applies the change meanwhile
          const w1 = swarm.nodes.w1.address;
          await waitUntil('web3 served on w1', async () => {
            const r = await nodeGet(w1, 80, { host: `web3.${domain}` });
            return r.status === 200 ? true : undefined;
          });
        } finally {
          await multinodeScript(['start', 'w2'], 300_000);
        }
        await servedEverywhere(`web3.${domain}`, 180_000);
        await goneEverywhere(`web2.${domain}`);
        const { fleet } = await converged();
        expect(fleet.list.filter((a) => a.output === 'edge')).toHaveLength(2);
      },
      600_000,
    );
  });
}

fleetSuite('haproxy');
fleetSuite('nginx');
