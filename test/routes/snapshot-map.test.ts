import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { ServiceState } from '../../src/cluster/model.ts';
import type { SnapshotDocument } from '../../src/cluster/snapshot.ts';
import { MAX_LABELS, mapSnapshot, parseSnapshotText } from '../../src/cluster/snapshot-map.ts';
import { type Diagnostic, formatText } from '../../src/diagnostics.ts';
import { SnapshotError } from '../../src/errors.ts';
import { buildRoutes } from '../../src/routes/build.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DEMO_FILE = path.join(ROOT, 'examples/swarm-demo.snapshot.json');
const demoText = readFileSync(DEMO_FILE, 'utf8');

function demo(): SnapshotDocument {
  return parseSnapshotText(demoText, 'swarm-demo.json');
}

function service(services: readonly ServiceState[], name: string): ServiceState {
  const found = services.find((s) => s.name === name);
  if (!found) throw new Error(`no service ${name}`);
  return found;
}

/** Deep copy with every list reversed, as another engine (or another run) might order them. */
function reversed(doc: SnapshotDocument): SnapshotDocument {
  const copy = structuredClone(doc);
  for (const key of ['services', 'tasks', 'networks', 'nodes', 'containers'] as const) copy[key]?.reverse();
  return copy;
}

describe('mapSnapshot on the swarm-demo capture', () => {
  const { state, diagnostics } = mapSnapshot(demo(), { cluster: 'local' });

  it('reads a Swarm with its six services, sorted, and reports nothing', () => {
    expect(diagnostics).toEqual([]);
    expect(state.swarm).toBe(true);
    expect(state.cluster).toBe('local');
    expect(state.services.map((s) => s.name)).toEqual([
      'blog',
      'metrics-agent',
      'paused',
      'shop-api',
      'shop-web',
      'status',
    ]);
    // The task containers of a Swarm are its services' tasks, not services of their own.
    expect(state.services.some((s) => s.mode === 'container')).toBe(false);
  });

  it('keeps only running tasks, sorted by slot, with their overlay addresses', () => {
    const web = service(state.services, 'shop-web');
    expect(web.mode).toBe('replicated');
    expect(web.replicas).toBe(3);
    expect(web.tasks.map((t) => [t.slot, t.id, t.addresses])).toEqual([
      [1, 'mbcgvbikwig62y8x9a9qtdoen', [{ network: 'appnet', address: '10.0.1.12' }]],
      [2, 'pgj7erszgfohphxbg7rlk8qu0', [{ network: 'appnet', address: '10.0.1.13' }]],
      [3, 'bi8se4a5d7u6vquljxhehmiy3', [{ network: 'appnet', address: '10.0.1.14' }]],
    ]);
    expect(web.tasks[0]?.containerId).toBe('0df0e4b5eefc95ffd3a8ee6b55d95c5b84ddcda3658a0f2abcac514cf64c68d3');
    expect(web.tasks.every((t) => t.nodeAddress === '127.0.0.1' && t.nodeId === '23ssepaw2i099ytvuu356h9ny')).toBe(
      true,
    );
  });

  it('maps network ids to names for networks, VIPs and task addresses, without the ingress network', () => {
    const api = service(state.services, 'shop-api');
    expect(api.networks).toEqual(['appnet', 'backnet']);
    expect(api.vips).toEqual([
      { network: 'appnet', address: '10.0.1.6' },
      { network: 'backnet', address: '10.0.2.2' },
    ]);
    expect(api.tasks.map((t) => t.addresses)).toEqual([
      [
        { network: 'appnet', address: '10.0.1.7' },
        { network: 'backnet', address: '10.0.2.3' },
      ],
      [
        { network: 'appnet', address: '10.0.1.8' },
        { network: 'backnet', address: '10.0.2.4' },
      ],
    ]);
    expect(state.networks.map((n) => n.name)).toEqual([
      'appnet',
      'backnet',
      'bridge',
      'docker_gwbridge',
      'host',
      'ingress',
      'none',
    ]);
  });

  it('reads host-mode published ports once (Docker lists them per address family)', () => {
    const status = service(state.services, 'status');
    expect(status.networks).toEqual([]);
    expect(status.ingressPorts).toEqual([]);
    expect(status.tasks.map((t) => t.hostPorts)).toEqual([
      [{ target: 80, published: 18090, protocol: 'tcp', mode: 'host' }],
    ]);
  });

  it('reads global services without slots, a scaled-to-zero service without tasks, and labels sorted', () => {
    const agent = service(state.services, 'metrics-agent');
    expect(agent.mode).toBe('global');
    expect(agent.replicas).toBeUndefined();
    expect(agent.tasks.map((t) => t.slot)).toEqual([undefined]);
    const paused = service(state.services, 'paused');
    expect(paused.replicas).toBe(0);
    expect(paused.tasks).toEqual([]);
    const api = service(state.services, 'shop-api');
    expect(Object.keys(api.labels)).toEqual([...Object.keys(api.labels)].sort());
    expect(api.labels['interlock.context_root']).toBe('/api');
  });

  it('reads the node and its address', () => {
    expect(state.nodes).toEqual([
      {
        id: '23ssepaw2i099ytvuu356h9ny',
        hostname: 'vm',
        address: '127.0.0.1',
        role: 'manager',
        ready: true,
        available: true,
      },
    ]);
  });

  it('gives the same state whatever order the API listed things in', () => {
    expect(mapSnapshot(reversed(demo()), { cluster: 'local' })).toEqual({ state, diagnostics });
  });

  it('applies the nodeAddress override to every task and records it', () => {
    const doc = demo();
    const nodes = doc.nodes as { Status: { Addr: string } }[];
    for (const n of nodes) n.Status.Addr = '192.0.2.10';
    const own = mapSnapshot(doc, { cluster: 'local' }).state;
    expect(service(own.services, 'status').tasks[0]?.nodeAddress).toBe('192.0.2.10');
    expect(own.nodeAddress).toBeUndefined();
    const over = mapSnapshot(doc, { cluster: 'local', nodeAddress: '127.0.0.1' }).state;
    expect(service(over.services, 'status').tasks[0]?.nodeAddress).toBe('127.0.0.1');
    expect(over.nodeAddress).toBe('127.0.0.1');
    expect(over.nodes[0]?.address).toBe('192.0.2.10');
  });
});

describe('mapSnapshot on bad entries', () => {
  it('reports a malformed entry by name, leaves it out, and maps the rest', () => {
    const doc = demo();
    const services = doc.services as Record<string, unknown>[];
    (services[0] as { Spec: { Labels: unknown } }).Spec.Labels = { 'interlock.port': 9000 };
    services.push(42 as never, { ID: 'zzz', Spec: {} });
    const { state, diagnostics } = mapSnapshot(doc, { cluster: 'local' });
    expect(state.services.map((s) => s.name)).toEqual(['blog', 'metrics-agent', 'paused', 'shop-web', 'status']);
    expect(diagnostics.map((d) => [d.severity, d.code, d.cluster])).toEqual([
      ['error', 'snapshot-invalid', 'local'],
      ['error', 'snapshot-invalid', 'local'],
      ['error', 'snapshot-invalid', 'local'],
    ]);
    expect(diagnostics[0]?.message).toMatch(
      /^services\[0\] \(shop-api\) is malformed \(Spec\.Labels\.interlock\.port: .*\); left out$/,
    );
    expect(diagnostics[1]?.message).toMatch(/^services\[6\] is malformed/);
    expect(diagnostics[2]?.message).toMatch(/^services\[7\] \(zzz\) is malformed \(Spec\.Name: /);
  });

  it('tolerates unknown fields and missing optional ones', () => {
    const doc: SnapshotDocument = {
      services: [{ ID: 's1', Spec: { Name: 'web', Future: { x: 1 } }, Brand: 'new' }],
      tasks: [{ ID: 't1', ServiceID: 's1', Status: { State: 'running' }, DesiredState: 'running', Extra: [1, 2] }],
      nodes: [{ ID: 'n1', Status: { State: 'ready', Addr: '10.0.0.5' } }],
    };
    const { state, diagnostics } = mapSnapshot(doc, { cluster: 'c' });
    expect(diagnostics).toEqual([]);
    expect(state.services).toEqual([
      {
        id: 's1',
        name: 'web',
        mode: 'replicated',
        labels: {},
        networks: [],
        vips: [],
        ingressPorts: [],
        tasks: [{ id: 't1', nodeId: '', nodeAddress: '', addresses: [], hostPorts: [] }],
      },
    ]);
  });

  it('refuses names and addresses that could carry text into a proxy file, escaping them in the message', () => {
    const doc: SnapshotDocument = {
      services: [
        { ID: 's1', Spec: { Name: 'web\nbackend evil' } },
        { ID: 's2', Spec: { Name: 'ok' } },
      ],
      tasks: [
        {
          ID: 't1',
          ServiceID: 's2',
          Status: { State: 'running' },
          DesiredState: 'running',
          NetworksAttachments: [
            { Network: { ID: 'n', Spec: { Name: 'appnet' } }, Addresses: ['10.0.0.1\n  server x 1.2.3.4/24'] },
          ],
        },
      ],
      nodes: [
        { ID: 'n1', Status: { State: 'ready', Addr: '10.0.0.5' } },
        { ID: 'n2', Status: { State: 'ready', Addr: '10.0.0.6; evil' } },
      ],
    };
    const { state, diagnostics } = mapSnapshot(doc, { cluster: 'c' });
    expect(state.services.map((s) => [s.name, s.tasks.length])).toEqual([['ok', 0]]);
    expect(state.nodes.map((n) => n.id)).toEqual(['n1']);
    expect(diagnostics).toHaveLength(3);
    for (const d of diagnostics) {
      // One line of text plus the fix line: nothing forged.
      expect(formatText(d).split('\n')).toHaveLength(2);
    }
    expect(diagnostics.map((d) => d.message).join(' | ')).toContain('"10.0.0.1\\n  server x 1.2.3.4/24"');
  });

  it('keeps a message about a strange label key on one line', () => {
    const doc: SnapshotDocument = {
      services: [{ ID: 's1', Spec: { Name: 'web', Labels: { 'a\nerror: forged': 1 } } }],
      tasks: [],
      nodes: [{ ID: 'n1', Status: { State: 'ready', Addr: '10.0.0.5' } }],
    };
    const { diagnostics } = mapSnapshot(doc, { cluster: 'c' });
    expect(diagnostics).toHaveLength(1);
    expect(formatText(diagnostics[0] as Diagnostic).split('\n')).toHaveLength(2);
    expect(diagnostics[0]?.message).toContain('Spec.Labels.a\\nerror: forged');
  });

  it('does not validate task history: a broken shut-down task is not a problem', () => {
    const doc = demo();
    (doc.tasks as unknown[]).push({ ID: 'old', ServiceID: 7, Status: { State: 'shutdown' }, DesiredState: 'shutdown' });
    expect(mapSnapshot(doc, { cluster: 'local' }).diagnostics).toEqual([]);
  });

  it('says so when services come without tasks or without nodes', () => {
    const noTasks = demo();
    delete noTasks.tasks;
    const a = mapSnapshot(noTasks, { cluster: 'local' });
    expect(a.diagnostics.map((d) => [d.severity, d.message])).toEqual([
      ['warning', 'the snapshot has services but no `tasks`: no service has a running task'],
    ]);
    const noNodes = demo();
    noNodes.nodes = [];
    const b = mapSnapshot(noNodes, { cluster: 'local' });
    expect(b.state.swarm).toBe(false);
    expect(b.diagnostics[0]?.message).toMatch(/lists services but no nodes/);
  });

  it('refuses a nodeAddress override that is not an address', () => {
    const { state, diagnostics } = mapSnapshot(demo(), { cluster: 'local', nodeAddress: '127.0.0.1 evil' });
    expect(state.nodeAddress).toBeUndefined();
    expect(diagnostics[0]?.message).toMatch(/^nodeAddress "127.0.0.1 evil" is not an address/);
  });
});

describe('mapSnapshot details of Swarm', () => {
  it('reads ingress-published ports and leaves the ingress network out of a service', () => {
    const doc: SnapshotDocument = {
      networks: [
        { Id: 'ing', Name: 'ingress', Driver: 'overlay', Scope: 'swarm', Ingress: true },
        { Id: 'app', Name: 'appnet', Driver: 'overlay', Scope: 'swarm' },
      ],
      services: [
        {
          ID: 's1',
          Spec: { Name: 'web', TaskTemplate: { Networks: [{ Target: 'app' }] }, Mode: { Replicated: { Replicas: 1 } } },
          Endpoint: {
            Ports: [
              { Protocol: 'tcp', TargetPort: 80, PublishedPort: 8080, PublishMode: 'ingress' },
              { Protocol: 'udp', TargetPort: 53, PublishedPort: 5353 },
              { Protocol: 'tcp', TargetPort: 81, PublishedPort: 8081, PublishMode: 'host' },
            ],
            VirtualIPs: [
              { NetworkID: 'ing', Addr: '10.0.0.5/24' },
              { NetworkID: 'app', Addr: '10.0.1.5/24' },
            ],
          },
        },
      ],
      tasks: [],
      nodes: [{ ID: 'n1', Status: { State: 'ready', Addr: '0.0.0.0' }, ManagerStatus: { Addr: '192.0.2.7:2377' } }],
    };
    const { state, diagnostics } = mapSnapshot(doc, { cluster: 'c' });
    expect(diagnostics).toEqual([]);
    const web = service(state.services, 'web');
    expect(web.networks).toEqual(['appnet']);
    expect(web.vips).toEqual([{ network: 'appnet', address: '10.0.1.5' }]);
    expect(web.ingressPorts).toEqual([
      { target: 53, published: 5353, protocol: 'udp', mode: 'ingress' },
      { target: 80, published: 8080, protocol: 'tcp', mode: 'ingress' },
    ]);
    // A manager reporting 0.0.0.0 is reached on its manager address.
    expect(state.nodes[0]?.address).toBe('192.0.2.7');
  });
});

describe('mapSnapshot on a standalone engine', () => {
  const container = (over: Record<string, unknown>) => ({
    Id: 'c0ffee0000000000000000000000000000000000000000000000000000000001',
    Names: ['/web'],
    Labels: { 'interlock.hostname': 'web' },
    State: 'running',
    Ports: [],
    NetworkSettings: { Networks: { bridge: { IPAddress: '172.17.0.2', GlobalIPv6Address: '' } } },
    ...over,
  });

  it('makes each container a service of mode container', () => {
    const doc: SnapshotDocument = {
      networks: [{ Id: 'b', Name: 'bridge', Driver: 'bridge', Scope: 'local' }],
      containers: [
        container({
          Ports: [
            { IP: '0.0.0.0', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' },
            { IP: '::', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' },
            { PrivatePort: 443, Type: 'tcp' },
          ],
        }),
        container({
          Id: 'c0ffee0000000000000000000000000000000000000000000000000000000002',
          Names: ['/api'],
          Ports: [{ IP: '192.0.2.4', PrivatePort: 9000, PublicPort: 9000, Type: 'tcp' }],
        }),
        container({
          Id: 'c0ffee0000000000000000000000000000000000000000000000000000000003',
          Names: ['/stopped'],
          State: 'exited',
        }),
      ],
    };
    const { state, diagnostics } = mapSnapshot(doc, { cluster: 'dev' });
    expect(diagnostics).toEqual([]);
    expect(state.swarm).toBe(false);
    expect(state.nodes).toEqual([]);
    expect(state.services.map((s) => [s.name, s.mode, s.networks, s.tasks.length])).toEqual([
      ['api', 'container', ['bridge'], 1],
      ['stopped', 'container', ['bridge'], 0],
      ['web', 'container', ['bridge'], 1],
    ]);
    const web = service(state.services, 'web');
    expect(web.tasks[0]).toEqual({
      id: 'c0ffee0000000000000000000000000000000000000000000000000000000001',
      nodeId: '',
      nodeAddress: '127.0.0.1',
      containerId: 'c0ffee0000000000000000000000000000000000000000000000000000000001',
      addresses: [{ network: 'bridge', address: '172.17.0.2' }],
      hostPorts: [{ target: 80, published: 8080, protocol: 'tcp', mode: 'host' }],
    });
    // A port bound to one address is reached on that address, whatever the cluster's override.
    expect(service(state.services, 'api').tasks[0]?.nodeAddress).toBe('192.0.2.4');
    expect(
      service(mapSnapshot(doc, { cluster: 'dev', nodeAddress: '10.9.9.9' }).state.services, 'api').tasks[0]
        ?.nodeAddress,
    ).toBe('192.0.2.4');
    // A port on every address (0.0.0.0) is reached on the override.
    expect(
      service(mapSnapshot(doc, { cluster: 'dev', nodeAddress: '10.9.9.9' }).state.services, 'web').tasks[0]
        ?.nodeAddress,
    ).toBe('10.9.9.9');
  });

  it('in Swarm mode keeps standalone containers but not the containers of tasks', () => {
    const doc = demo();
    (doc.containers as unknown[]).push(container({ Names: ['/legacy'] }));
    const { state } = mapSnapshot(doc, { cluster: 'local' });
    expect(state.services.filter((s) => s.mode === 'container').map((s) => s.name)).toEqual(['legacy']);
  });
});

describe('parseSnapshotText', () => {
  it('reads the demo snapshot with its metadata', () => {
    const doc = demo();
    expect(doc.metadata).toEqual({ cluster: 'local', apiVersion: '1.41', engineVersion: '20.10.24+dfsg1' });
    expect(doc.services).toHaveLength(6);
    expect(doc.tasks).toHaveLength(11);
  });

  it('ships the same snapshot as the example the README renders', () => {
    expect(readFileSync(path.join(ROOT, 'examples/swarm-demo.snapshot.json'), 'utf8')).toBe(demoText);
  });

  it('says where JSON is broken', () => {
    expect(() => parseSnapshotText('{\n  "services": [\n    {,\n  ]\n}', 'snap.json')).toThrow(SnapshotError);
    expect(() => parseSnapshotText('{\n  "services": [\n    {,\n  ]\n}', 'snap.json')).toThrow(
      /^snap\.json:3:6: not valid JSON/,
    );
  });

  it.each([
    ['[]', /is a JSON array, not a snapshot; it looks like a single API response/],
    ['"x"', /not a snapshot: a snapshot is a JSON object with the Docker API bodies under services, tasks/],
    ['{"service": []}', /not a snapshot/],
    ['{"services": {}}', /`services` must be a JSON array \(the body of GET \/services\)/],
    ['{"containers": 1}', /GET \/containers\/json/],
    ['{"tasks": [], "metadata": {"cluster": 3}}', /metadata is wrong: cluster: /],
  ])('refuses %s', (text, message) => {
    expect(() => parseSnapshotText(text, 'snap.json')).toThrow(message);
  });
});

describe('host-mode ports per address family (Docker gives 0.0.0.0 and :: different host ports)', () => {
  // Seen on Docker 20.10: `--publish mode=host,target=80` with no published port, once the
  // engine's IPv4 and IPv6 port allocators have drifted apart, gives the task 32781 on 0.0.0.0
  // and 32770 on ::. PortStatus lists both, without the address, IPv4 first; /containers/json
  // lists them with the address. The lower one is the IPv6-only port: on 127.0.0.1 it is closed,
  // or is another container's.
  const TASK_CONTAINER = 'e4a911817b5c0000000000000000000000000000000000000000000000000001';
  const swarmDoc = (options: { nodeAddr?: string; containerPorts?: unknown[] | null } = {}): SnapshotDocument => ({
    networks: [],
    nodes: [{ ID: 'n1', Status: { State: 'ready', Addr: options.nodeAddr ?? '127.0.0.1' } }],
    services: [
      {
        ID: 's1',
        Spec: { Name: 'web', Labels: { 'interlock.hostname': 'web' }, Mode: { Replicated: { Replicas: 1 } } },
        Endpoint: { Ports: [{ Protocol: 'tcp', TargetPort: 80, PublishedPort: 0, PublishMode: 'host' }] },
      },
    ],
    tasks: [
      {
        ID: 't1',
        ServiceID: 's1',
        Slot: 1,
        NodeID: 'n1',
        DesiredState: 'running',
        Status: {
          State: 'running',
          ContainerStatus: { ContainerID: TASK_CONTAINER },
          PortStatus: {
            Ports: [
              { Protocol: 'tcp', TargetPort: 80, PublishedPort: 32781, PublishMode: 'host' },
              { Protocol: 'tcp', TargetPort: 80, PublishedPort: 32770, PublishMode: 'host' },
            ],
          },
        },
      },
    ],
    containers:
      options.containerPorts === null
        ? []
        : [
            {
              Id: TASK_CONTAINER,
              Names: ['/web.1.t1'],
              Labels: { 'com.docker.swarm.task.id': 't1', 'com.docker.swarm.service.name': 'web' },
              State: 'running',
              Ports: options.containerPorts ?? [
                { IP: '0.0.0.0', PrivatePort: 80, PublicPort: 32781, Type: 'tcp' },
                { IP: '::', PrivatePort: 80, PublicPort: 32770, Type: 'tcp' },
              ],
            },
          ],
  });
  const ports = (doc: SnapshotDocument, nodeAddress?: string) =>
    service(mapSnapshot(doc, { cluster: 'c', ...(nodeAddress ? { nodeAddress } : {}) }).state.services, 'web').tasks[0]
      ?.hostPorts;
  const host = (published: number) => [{ target: 80, published, protocol: 'tcp', mode: 'host' }];

  it('takes the IPv4 port for an IPv4 node, whatever order /containers/json lists them in', () => {
    expect(ports(swarmDoc())).toEqual(host(32781));
    const v6First = [
      { IP: '::', PrivatePort: 80, PublicPort: 32770, Type: 'tcp' },
      { IP: '0.0.0.0', PrivatePort: 80, PublicPort: 32781, Type: 'tcp' },
    ];
    expect(ports(swarmDoc({ containerPorts: v6First }))).toEqual(host(32781));
    expect(ports(swarmDoc(), '127.0.0.1')).toEqual(host(32781));
    // A host name (e.g. localhost) is reached over IPv4 first, as by the proxies' resolvers.
    expect(ports(swarmDoc(), 'localhost')).toEqual(host(32781));
  });

  it('takes the IPv6 port for an IPv6 node or override', () => {
    expect(ports(swarmDoc({ nodeAddr: '2001:db8::7' }))).toEqual(host(32770));
    expect(ports(swarmDoc(), '::1')).toEqual(host(32770));
  });

  it("goes by Docker's order (IPv4 first) for a task whose container is on another node", () => {
    // Without the addresses both ports stay; a route takes the first one listed for its target.
    expect(ports(swarmDoc({ containerPorts: null }))?.[0]).toEqual(host(32781)[0]);
    expect(ports(swarmDoc({ containerPorts: null, nodeAddr: '2001:db8::7' }))?.[0]).toEqual(host(32770)[0]);
  });

  it('routes the host to the IPv4 port', () => {
    const { state } = mapSnapshot(swarmDoc(), { cluster: 'c' });
    const built = buildRoutes([state], [{ kind: 'interlock', allowRawDirectives: false }]);
    expect(built.routes.flatMap((r) => r.backends.map((b) => `${b.address}:${b.port}`))).toEqual(['127.0.0.1:32781']);
  });

  it('does the same for a standalone container', () => {
    const doc: SnapshotDocument = {
      networks: [],
      containers: [
        {
          Id: 'c0ffee0000000000000000000000000000000000000000000000000000000009',
          Names: ['/web'],
          Labels: { 'interlock.hostname': 'web' },
          State: 'running',
          Ports: [
            { IP: '::', PrivatePort: 80, PublicPort: 32770, Type: 'tcp' },
            { IP: '0.0.0.0', PrivatePort: 80, PublicPort: 32781, Type: 'tcp' },
          ],
        },
      ],
    };
    expect(ports(doc)).toEqual(host(32781));
    expect(ports(doc, '::1')).toEqual(host(32770));
  });
});

describe('creation times out of range', () => {
  const container = (name: string, Created: unknown) => ({
    Id: `c0ffee${name.padEnd(58, '0')}`,
    Names: [`/${name}`],
    Labels: { 'interlock.hostname': name },
    State: 'running',
    Created,
  });

  it('ignores a container Created that is no time (1e300, negative, past year 9999), with a warning', () => {
    const doc: SnapshotDocument = {
      containers: [
        container('huge', 1e300),
        container('negative', -1e300),
        container('beforeepoch', -5),
        container('year99999', 3e12),
        container('fine', 1_700_000_000),
      ],
    };
    const { state, diagnostics } = mapSnapshot(doc, { cluster: 'c' });
    expect(state.services.map((s) => [s.name, s.createdAt])).toEqual([
      ['beforeepoch', undefined],
      ['fine', '2023-11-14T22:13:20.000Z'],
      ['huge', undefined],
      ['negative', undefined],
      ['year99999', undefined],
    ]);
    expect(diagnostics.map((d) => [d.severity, d.service, d.message])).toEqual([
      [
        'warning',
        'huge',
        'Created 1e+300 is not a time; ignored: the container counts as the newest for a contested host',
      ],
      [
        'warning',
        'negative',
        'Created -1e+300 is not a time; ignored: the container counts as the newest for a contested host',
      ],
      [
        'warning',
        'beforeepoch',
        'Created -5 is not a time; ignored: the container counts as the newest for a contested host',
      ],
      [
        'warning',
        'year99999',
        'Created 3000000000000 is not a time; ignored: the container counts as the newest for a contested host',
      ],
    ]);
  });

  it('does the same for a service CreatedAt that is not a time, or past year 9999', () => {
    const svc = (ID: string, CreatedAt: unknown) => ({ ID, CreatedAt, Spec: { Name: ID } });
    const doc: SnapshotDocument = {
      nodes: [{ ID: 'n1', Status: { State: 'ready', Addr: '127.0.0.1' } }],
      services: [
        svc('yesterday', 'yesterday'),
        svc('far', '+275760-09-13T00:00:00.000Z'),
        svc('ok', '2026-11-23T19:13:51.472101876Z'),
      ],
      tasks: [],
    };
    const { state, diagnostics } = mapSnapshot(doc, { cluster: 'c' });
    expect(state.services.map((s) => [s.name, s.createdAt])).toEqual([
      ['far', undefined],
      ['ok', '2026-11-23T19:13:51.472Z'],
      ['yesterday', undefined],
    ]);
    expect(diagnostics.map((d) => [d.severity, d.service, d.message])).toEqual([
      [
        'warning',
        'yesterday',
        'CreatedAt "yesterday" is not a time; ignored: the service counts as the newest for a contested host',
      ],
      [
        'warning',
        'far',
        'CreatedAt "+275760-09-13T00:00:00.000Z" is not a time; ignored: the service counts as the newest for a contested host',
      ],
    ]);
  });
});

describe('a label bomb (Swarm accepts about 45,000 labels on a service)', () => {
  const doc = (labels: Record<string, string>): SnapshotDocument => ({
    nodes: [{ ID: 'n1', Status: { State: 'ready', Addr: '127.0.0.1' } }],
    services: [
      { ID: 'bomb', Spec: { Name: 'bomb', Labels: labels } },
      { ID: 'fine', Spec: { Name: 'fine', Labels: { 'interlock.hostname': 'fine' } } },
    ],
    tasks: [],
  });
  const many = (n: number, key: (i: number) => string) =>
    Object.fromEntries(Array.from({ length: n }, (_, i) => [key(i), 'x']));

  it('reads at most 1,000 labels, those of the rules first, and says so once', () => {
    const labels = { ...many(45_000, (i) => `junk.${i}`), 'interlock.hostname': 'bomb', 'interlock.port': '80' };
    const { state, diagnostics } = mapSnapshot(doc(labels), { cluster: 'c', labelPrefixes: ['interlock'] });
    const bomb = service(state.services, 'bomb');
    expect(Object.keys(bomb.labels)).toHaveLength(MAX_LABELS);
    expect(bomb.labels['interlock.hostname']).toBe('bomb');
    expect(bomb.labels['interlock.port']).toBe('80');
    expect(service(state.services, 'fine').labels).toEqual({ 'interlock.hostname': 'fine' });
    expect(diagnostics.map((d) => [d.severity, d.code, d.service, d.message])).toEqual([
      [
        'warning',
        'labels-capped',
        'bomb',
        `has 45,002 labels; only the first ${MAX_LABELS.toLocaleString('en')} are read (those under interlock.* first)`,
      ],
    ]);
  });

  it('refuses a service whose labels under the rules prefixes alone are too many to read whole', () => {
    const labels = many(1_500, (i) => `interlock.x${i}`);
    const { state, diagnostics } = mapSnapshot(doc(labels), { cluster: 'c', labelPrefixes: ['interlock'] });
    expect(service(state.services, 'bomb').labels).toEqual({});
    expect(diagnostics.map((d) => [d.severity, d.code, d.service])).toEqual([['error', 'labels-capped', 'bomb']]);
    expect(diagnostics[0]?.message).toContain('1,500 labels under interlock.*');
  });
});
