/**
 * The proxy fleet with agents as processes: one controller (`interlock watch`, the built CLI) reads
 * a fake Docker Engine on a unix socket (no Docker needed: the test changes the services), and
 * serves two outputs to agents: HAProxy to three agents, each with its own real HAProxy (the
 * three share the listening port through SO_REUSEPORT, as replicas on one node would not; each
 * is checked through its own master CLI), and Nginx to one agent with a real Nginx. Loopback only.
 *
 * - a change reaches every agent and every proxy;
 * - a wrong token: one log line on the agent, an `unauthorized` entry in the status;
 * - a bundle one agent's local check rejects: that agent keeps its files and reports the proxy's
 *   words; the others apply it;
 * - the controller killed: every proxy keeps serving; an agent restarted meanwhile serves its
 *   last good files; a fresh one says it has none; the controller back → all converge;
 * - 30 changes under continuous load through all proxies: 0 failed requests.
 */
import { chmod, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  type AgentProcess,
  type FakeEngine,
  fleetOf,
  masterCli,
  startAgent,
  startBackend,
  startFakeEngine,
  waitConverged,
} from '../fleet/helpers.ts';
import { interlock } from '../helpers/exec.ts';
import {
  describeIntegration,
  freePort,
  httpGet,
  type ProxyProcess,
  startHaproxy,
  startNginx,
  tempDir,
  waitForHttp,
} from '../helpers/infra.ts';
import { httpService } from '../watch/fake-swarm.ts';
import { runLoad, sleep, startWatch, type WatchProcess, waitFor } from '../watch/it-helpers.ts';

const HAPROXY_AGENTS = ['a1', 'a2', 'a3'];
const ALL = [...HAPROXY_AGENTS, 'n1'];

describeIntegration('proxy fleet: controller and agents as processes', ['haproxy', 'nginx'], () => {
  let dir = '';
  let engine: FakeEngine;
  let controller: WatchProcess;
  let config = '';
  let listenPort = 0;
  let agentsPort = 0;
  let hp = 0;
  let np = 0;
  const backends: { close(): Promise<void> }[] = [];
  const backendPort: Record<string, number> = {};
  const agents = new Map<string, AgentProcess>();
  const proxies = new Map<string, ProxyProcess>();
  let services = [] as ReturnType<typeof httpService>[];

  const env = () => ({ DOCKER_HOST: `unix://${engine.socketPath}` });
  const agentDir = (name: string) => path.join(dir, name);
  const setServices = (next: ReturnType<typeof httpService>[]) => {
    services = next;
    engine.set(next);
  };
  const addBackend = async (name: string) => {
    const port = await freePort();
    backends.push(await startBackend(port, name));
    backendPort[name] = port;
    return httpService(name, port);
  };
  const haproxyAgent = (name: string) =>
    startAgent([
      '--controller',
      `http://127.0.0.1:${agentsPort}`,
      '--token-file',
      path.join(dir, 'token'),
      '--output',
      'edge',
      '--dir',
      agentDir(name),
      '--instance',
      name,
      '--node',
      'node-1',
      '--reload-master-socket',
      path.join(agentDir(name), 'master.sock'),
    ]);
  const startController = async () => {
    controller = await startWatch({ config, listenPort, env: env() });
  };

  beforeAll(async () => {
    dir = await tempDir('ilfl-');
    [listenPort, agentsPort, hp, np] = [await freePort(), await freePort(), await freePort(), await freePort()];
    engine = await startFakeEngine(path.join(dir, 'docker.sock'), []);
    setServices([await addBackend('web')]);
    await writeFile(path.join(dir, 'token'), 'fleet-test-token\n');
    await writeFile(path.join(dir, 'wrong-token'), 'not-the-token\n');
    config = path.join(dir, 'interlock.config.json');
    await writeFile(
      config,
      JSON.stringify({
        clusters: { fake: { nodeAddress: '127.0.0.1' } },
        agents: { tokenFile: 'token', listen: `127.0.0.1:${agentsPort}`, wait: '20s', staleAfter: '60s' },
        watch: { debounce: { min: '50ms', max: '300ms' } },
        outputs: [
          {
            kind: 'haproxy',
            name: 'edge',
            // The paths on the proxy hosts: each agent rebases them onto its own --dir.
            file: '/srv/fleet/haproxy/haproxy.cfg',
            http: { address: '127.0.0.1', port: hp },
            masterSocket: '/srv/fleet/haproxy/stats.sock',
            serve: true,
            write: false,
          },
          {
            kind: 'nginx',
            name: 'web',
            file: '/srv/fleet/nginx/nginx.conf',
            // a run folder of its own (as deploy/controller-nginx.yaml): the agent creates it,
            // in its scratch folder too, where the real `nginx -t` opens the pid file
            runDir: '/srv/fleet/nginx/run',
            http: { address: '127.0.0.1', port: np },
            serve: true,
            write: false,
          },
        ],
      }),
    );
    await startController();
    for (const name of HAPROXY_AGENTS) agents.set(name, haproxyAgent(name));
    agents.set(
      'n1',
      startAgent([
        '--controller',
        `http://127.0.0.1:${agentsPort}`,
        '--token-file',
        path.join(dir, 'token'),
        '--output',
        'web',
        '--dir',
        agentDir('n1'),
        '--instance',
        'n1',
        '--reload-pid-file',
        path.join(agentDir('n1'), 'run', 'nginx.pid'),
      ]),
    );
    // The proxies start on the files their agent wrote (their first reload is retried until then).
    for (const name of HAPROXY_AGENTS) {
      const cfg = path.join(agentDir(name), 'haproxy.cfg');
      await waitFor(`${cfg}`, () => readFile(cfg, 'utf8').catch(() => undefined), { timeoutMs: 30_000 });
      proxies.set(name, await startHaproxy(cfg, { port: hp, cwd: agentDir(name) }));
    }
    const conf = path.join(agentDir('n1'), 'nginx.conf');
    await waitFor(conf, () => readFile(conf, 'utf8').catch(() => undefined), { timeoutMs: 30_000 });
    proxies.set('n1', await startNginx(conf, agentDir('n1'), { port: np }));
  });

  afterAll(async () => {
    for (const a of agents.values()) await a.stop();
    if (controller && controller.child.exitCode === null && controller.child.signalCode === null)
      await controller.stop();
    for (const p of proxies.values()) await p.stop();
    for (const b of backends) await b.close();
    await engine?.close();
  });

  const backendsOf = async (name: string) => masterCli(path.join(agentDir(name), 'master.sock'), '@1 show backend');

  it('every agent converges; every proxy serves; `interlock status` shows them', async () => {
    await waitConverged(listenPort, 'edge', HAPROXY_AGENTS);
    await waitConverged(listenPort, 'web', ['n1']);
    await waitForHttp(`http://127.0.0.1:${hp}/`, { host: 'web.test', timeoutMs: 15_000 });
    await waitForHttp(`http://127.0.0.1:${np}/`, { host: 'web.test', timeoutMs: 15_000 });
    for (const name of HAPROXY_AGENTS)
      await waitFor(`${name}'s haproxy runs the bundle`, async () => /web/.test(await backendsOf(name)), {
        timeoutMs: 15_000,
      });
    const table = await interlock(['status', '--address', `127.0.0.1:${listenPort}`]);
    expect(table.stdout).toMatch(/4 of 4 agents converged/);
    for (const name of ALL) expect(table.stdout).toMatch(new RegExp(`\\b${name}\\b.*converged`));
    expect(table.code).toBe(0);
    const json = await interlock(['status', '--address', `127.0.0.1:${listenPort}`, '--format', 'json']);
    const parsed = JSON.parse(json.stdout) as { agents: { list: { instance: string; state: string }[] } };
    expect(parsed.agents.list.map((a) => a.instance).sort()).toEqual([...ALL].sort());
    const metrics = await controller.metrics();
    expect(metrics).toMatch(/interlock_agents\{output="edge",state="converged"\} 3/);
    expect(metrics).toMatch(/interlock_agents\{output="web",state="converged"\} 1/);
  });

  it('a change reaches every agent and every proxy', async () => {
    const before = (await fleetOf(listenPort)).outputs.edge?.hash ?? '';
    setServices([...services, await addBackend('web2')]);
    await waitConverged(listenPort, 'edge', HAPROXY_AGENTS, { notHash: before });
    await waitConverged(listenPort, 'web', ['n1']);
    for (const name of HAPROXY_AGENTS)
      await waitFor(`${name}'s haproxy has web2`, async () => /web2/.test(await backendsOf(name)), {
        timeoutMs: 15_000,
      });
    await waitForHttp(`http://127.0.0.1:${np}/`, { host: 'web2.test', timeoutMs: 15_000 });
    for (let i = 0; i < 12; i++) {
      const r = await httpGet(`http://127.0.0.1:${hp}/`, { host: 'web2.test' });
      expect(r.status).toBe(200);
    }
  });

  it('a wrong token: one clear line on the agent, an entry in the status', async () => {
    const bad = startAgent([
      '--controller',
      `http://127.0.0.1:${agentsPort}`,
      '--token-file',
      path.join(dir, 'wrong-token'),
      '--output',
      'edge',
      '--dir',
      agentDir('bad'),
      '--instance',
      'bad',
      '--reload-command',
      'true',
    ]);
    try {
      await bad.waitForLog(/refused the token/);
      await waitFor('the refused agent in the status', async () =>
        (await fleetOf(listenPort)).list.some((a) => a.instance === 'bad' && a.state === 'unauthorized'),
      );
      await sleep(2500);
      expect(bad.count(/refused the token/)).toBe(1);
      expect(bad.lines().join('\n')).not.toContain('fleet-test-token');
      expect(controller.lines().join('\n')).not.toContain('fleet-test-token');
      const status = await interlock(['status', '--address', `127.0.0.1:${listenPort}`]);
      expect(status.stdout).toMatch(/bad.*unauthorized/);
      expect(status.code).toBe(1);
    } finally {
      await bad.stop();
    }
  });

  it("a bundle one agent's proxy rejects: it keeps its files and reports why; the others apply it", async () => {
    // This node's "haproxy" lacks what the service `lacks-feature` needs.
    const strict = path.join(dir, 'strict-check.sh');
    await writeFile(
      strict,
      `#!/bin/sh\nif grep -rq lacks-feature "$(dirname "$1")"; then echo "[ALERT] (1) : this haproxy lacks the feature lacks-feature needs" >&2; exit 1; fi\nexec haproxy -c -f "$1"\n`,
    );
    await chmod(strict, 0o755);
    // No proxy beside a4: its reload is `true`, its check is the strict one.
    const strictAgent = startAgent([
      '--controller',
      `http://127.0.0.1:${agentsPort}`,
      '--token-file',
      path.join(dir, 'token'),
      '--output',
      'edge',
      '--dir',
      agentDir('a4'),
      '--instance',
      'a4',
      '--check-command',
      `${strict} {file}`,
      '--reload-command',
      'true',
    ]);
    try {
      const good = await waitConverged(listenPort, 'edge', [...HAPROXY_AGENTS, 'a4']);
      const kept = await readFile(path.join(agentDir('a4'), 'haproxy.cfg'), 'utf8');
      const withLacking = [...services, await addBackend('lacks-feature')];
      setServices(withLacking);
      const next = await waitConverged(listenPort, 'edge', HAPROXY_AGENTS, { notHash: good });
      await strictAgent.waitForLog(/local proxy rejected the bundle/);
      const a4Status = await waitFor('a4 reported', async () =>
        (await fleetOf(listenPort)).list.find((a) => a.instance === 'a4' && a.error !== null),
      );
      expect(a4Status.state).toBe('not_converged');
      expect(a4Status.applied).toBe(good);
      expect(a4Status.error).toMatch(/lacks the feature/);
      expect(next).not.toBe(good);
      expect(await readFile(path.join(agentDir('a4'), 'haproxy.cfg'), 'utf8')).toBe(kept);
      expect(strictAgent.count(/local proxy rejected the bundle/)).toBe(1);
      // The service goes: a4 converges again.
      setServices(withLacking.filter((s) => s.name !== 'lacks-feature'));
      await waitConverged(listenPort, 'edge', [...HAPROXY_AGENTS, 'a4'], { notHash: next });
    } finally {
      await strictAgent.stop();
    }
  });

  it('the controller killed: every proxy keeps serving; restarted and fresh agents; back → all converge', async () => {
    controller.child.kill('SIGKILL');
    await new Promise((r) => controller.child.once('exit', r));
    for (const name of ALL) await agents.get(name)?.waitForLog(/controller unreachable/);
    for (let i = 0; i < 6; i++) {
      expect((await httpGet(`http://127.0.0.1:${hp}/`, { host: 'web.test' })).status).toBe(200);
      expect((await httpGet(`http://127.0.0.1:${np}/`, { host: 'web2.test' })).status).toBe(200);
    }
    // a1 restarts while the controller is away: it says what it serves and its proxy goes on.
    await agents.get('a1')?.stop();
    const a1 = haproxyAgent('a1');
    agents.set('a1', a1);
    await a1.waitForLog(/proxy files in place/);
    await a1.waitForLog(/controller unreachable/);
    // A fresh agent with nothing on disk says so, once.
    const fresh = startAgent([
      '--controller',
      `http://127.0.0.1:${agentsPort}`,
      '--token-file',
      path.join(dir, 'token'),
      '--output',
      'edge',
      '--dir',
      agentDir('a5'),
      '--instance',
      'a5',
      '--check-command',
      'haproxy -c -f {file}',
      '--reload-command',
      'true',
    ]);
    try {
      await fresh.waitForLog(/no proxy files yet/);
      await sleep(2000);
      expect(fresh.count(/no proxy files yet/)).toBe(1);
      expect(fresh.count(/controller unreachable/)).toBe(1);
      for (const name of ['a2', 'a3']) expect(agents.get(name)?.count(/controller unreachable/)).toBe(1);
      expect((await httpGet(`http://127.0.0.1:${hp}/`, { host: 'web.test' })).status).toBe(200);
      // A change while the controller is away, then the controller back: all converge on it.
      setServices([...services, await addBackend('web3')]);
      await startController();
      await waitConverged(listenPort, 'edge', [...HAPROXY_AGENTS, 'a5'], { timeoutMs: 45_000 });
      await waitConverged(listenPort, 'web', ['n1'], { timeoutMs: 45_000 });
      await waitForHttp(`http://127.0.0.1:${np}/`, { host: 'web3.test', timeoutMs: 15_000 });
      for (const name of HAPROXY_AGENTS)
        await waitFor(`${name}'s haproxy has web3`, async () => /web3/.test(await backendsOf(name)), {
          timeoutMs: 15_000,
        });
      await a1.waitForLog(/controller answers again/);
    } finally {
      await fresh.stop();
    }
  });

  it('30 changes under continuous load through every proxy: 0 failed requests', async () => {
    const churn = await addBackend('churn');
    setServices([...services, churn]);
    let hash = await waitConverged(listenPort, 'edge', HAPROXY_AGENTS, { timeoutMs: 45_000 });
    const load = runLoad({
      targets: [
        { url: `http://127.0.0.1:${hp}/`, host: 'web.test' },
        { url: `http://127.0.0.1:${np}/`, host: 'web.test' },
      ],
      concurrency: 6,
      maxMs: 400_000,
    });
    try {
      for (let i = 0; i < 30; i++) {
        setServices(
          services.map((s) =>
            s.name === 'churn' ? { ...s, labels: { ...s.labels, 'interlock.hostname': `churn-${i}` } } : s,
          ),
        );
        hash = await waitConverged(listenPort, 'edge', HAPROXY_AGENTS, { notHash: hash, timeoutMs: 45_000 });
        await waitConverged(listenPort, 'web', ['n1'], { timeoutMs: 45_000 });
      }
    } finally {
      const result = await load.stop();
      expect(result.failed, result.samples.join('\n')).toBe(0);
      expect(result.ok).toBeGreaterThan(30);
    }
  }, 420_000);
});
