/**
 * Deterministic synthetic cluster snapshots for the render benchmark, in the shapes of the real
 * capture examples/swarm-demo.snapshot.json (the Docker Engine API's own bodies, with the
 * fields a real engine sends and interlock ignores, so parsing and validation cost what they cost).
 *
 * Per service: 3 running tasks (slots 1–3, spread over 3 nodes) and 2 shut-down tasks of an earlier
 * update. One overlay network (plus the networks every Swarm node has). The manager's
 * /containers/json lists the running task containers on the manager node.
 *
 * Features by `index % 10`, so every size has the same mix:
 *   1 context_root /api with prefix stripping   2 health_check /healthz every 3 s
 *   3 com.docker.lb.* labels with a sticky cookie   4 two alias domains
 *   5 a websocket endpoint   6 balance leastconn   0, 7, 8, 9 plain (host, port, network)
 *
 * `backends: 'published'` is the throughput variant: services on no network, each task publishing
 * target 80 on `publishedPort` in host mode (read with a cluster `nodeAddress` override, every
 * backend is then that address and port), and no health checks.
 */
import type { SnapshotDocument } from '../../src/cluster/snapshot.ts';

export interface SyntheticOptions {
  services: number;
  /** `task`: task addresses on the overlay network (what a Swarm deployment uses). */
  backends?: 'task' | 'published';
  /** Host-mode published port of every task, for `backends: 'published'`. */
  publishedPort?: number;
}

export const RUNNING_TASKS = 3;
export const SHUTDOWN_TASKS = 2;
export const NODES = 3;
export const NETWORK = 'appnet';
const DOMAINS = ['example.com', 'example.org', 'shop.example.net', 'apps.example.io'];
const NETWORK_ID = 'klpnx4p7ei03zgak9wi4pbw4c';
const INGRESS_ID = 'lov3l2m5cbl88xd8nz7s79qat';
const BASE_TIME = Date.UTC(2026, 10, 23, 19, 0, 0);

/** Plain feature slots: these routes answer `/` on one host with no extras. */
export function isPlainService(index: number): boolean {
  const f = index % 10;
  return f === 0 || f >= 7;
}

export function serviceName(index: number): string {
  return `app-${String(index).padStart(5, '0')}`;
}

/** The primary host of a service (interlock dialect: hostname + domain). */
export function serviceHost(index: number): string {
  return `${serviceName(index)}.${DOMAINS[index % DOMAINS.length]}`;
}

/** A plain service near the middle of `services`, so its host sits in the middle of the map. */
export function middlePlainService(services: number): number {
  let i = Math.floor(services / 2);
  while (i > 0 && !isPlainService(i)) i--;
  return i;
}

/** splitmix32: a tiny seeded generator, so IDs look like Docker's and are the same every run. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

function idMaker(seed: number, alphabet: string, length: number): () => string {
  const next = random(seed);
  return () => {
    let out = '';
    for (let i = 0; i < length; i++) out += alphabet[next() % alphabet.length];
    return out;
  };
}

function iso(ms: number): string {
  // Docker prints nanoseconds.
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1472101Z');
}

/** The n-th address of 10.64.0.0/10 (the overlay's subnet), skipping .0 and the gateway. */
function overlayAddress(n: number): string {
  const x = n + 2;
  return `10.${64 + ((x >>> 16) & 63)}.${(x >>> 8) & 255}.${x & 255}`;
}

function interlockLabels(index: number, published: boolean): Record<string, string> {
  const name = serviceName(index);
  const labels: Record<string, string> = {
    'interlock.hostname': name,
    'interlock.domain': DOMAINS[index % DOMAINS.length] as string,
    'interlock.port': published ? '80' : '8080',
  };
  if (!published) labels['interlock.network'] = NETWORK;
  switch (index % 10) {
    case 1:
      labels['interlock.context_root'] = '/api';
      labels['interlock.context_root_rewrite'] = 'true';
      break;
    case 2:
      if (!published) {
        labels['interlock.health_check'] = '/healthz';
        labels['interlock.health_check_interval'] = '3000';
      }
      break;
    case 4:
      labels['interlock.alias_domain'] = `www.${name}.example.com`;
      labels['interlock.alias_domain.1'] = `${name}.example.edu`;
      break;
    case 5:
      labels['interlock.websocket_endpoint'] = '/ws';
      break;
    case 6:
      labels['interlock.balance_algorithm'] = 'leastconn';
      break;
  }
  return labels;
}

function dockerLbLabels(index: number, published: boolean): Record<string, string> {
  const labels: Record<string, string> = {
    'com.docker.lb.hosts': `${serviceHost(index)},${serviceName(index)}.example.app`,
    'com.docker.lb.port': published ? '80' : '8080',
    'com.docker.lb.sticky_session_cookie': 'SESSION',
  };
  if (!published) labels['com.docker.lb.network'] = NETWORK;
  return labels;
}

function networkBody(name: string, id: string, driver: string, scope: string, ingress: boolean, subnet?: string) {
  return {
    Name: name,
    Id: id,
    Created: iso(BASE_TIME - 3_600_000),
    Scope: scope,
    Driver: driver,
    EnableIPv6: false,
    IPAM: { Driver: 'default', Options: null, Config: subnet ? [{ Subnet: subnet }] : [] },
    Internal: false,
    Attachable: name === NETWORK,
    Ingress: ingress,
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: scope === 'local' ? {} : null,
    Options: driver === 'overlay' ? { 'com.docker.network.driver.overlay.vxlanid_list': '4097' } : {},
    Labels: scope === 'local' ? {} : null,
  };
}

function attachment(address: string) {
  return {
    Network: {
      ID: NETWORK_ID,
      Version: { Index: 55 },
      CreatedAt: iso(BASE_TIME - 3_600_000),
      UpdatedAt: iso(BASE_TIME - 3_600_000),
      Spec: {
        Name: NETWORK,
        Labels: {},
        DriverConfiguration: { Name: 'overlay' },
        Attachable: true,
        IPAMOptions: { Driver: { Name: 'default' } },
        Scope: 'swarm',
      },
      DriverState: { Name: 'overlay', Options: { 'com.docker.network.driver.overlay.vxlanid_list': '4097' } },
      IPAMOptions: { Driver: { Name: 'default' }, Configs: [{ Subnet: '10.64.0.0/10', Gateway: '10.64.0.1' }] },
    },
    Addresses: [`${address}/10`],
  };
}

export function syntheticSnapshot(options: SyntheticOptions): SnapshotDocument {
  const published = options.backends === 'published';
  const publishedPort = options.publishedPort ?? 18080;
  const swarmId = idMaker(0x5eed, 'abcdefghijklmnopqrstuvwxyz0123456789', 25);
  const hexId = idMaker(0xc0de, '0123456789abcdef', 64);

  const nodes = Array.from({ length: NODES }, (_, n) => ({
    ID: swarmId(),
    Version: { Index: 81 + n },
    CreatedAt: iso(BASE_TIME - 7_200_000),
    UpdatedAt: iso(BASE_TIME - 3_600_000),
    Spec: { Labels: {}, Role: n === 0 ? 'manager' : 'worker', Availability: 'active' },
    Description: {
      Hostname: `node-${n + 1}`,
      Platform: { Architecture: 'x86_64', OS: 'linux' },
      Resources: { NanoCPUs: 2_000_000_000, MemoryBytes: 25_276_514_304 },
      Engine: { EngineVersion: '20.10.24+dfsg1', Plugins: [{ Type: 'Network', Name: 'overlay' }] },
    },
    Status: { State: 'ready', Addr: `10.1.0.${n + 1}` },
    ...(n === 0 ? { ManagerStatus: { Leader: true, Reachability: 'reachable', Addr: '10.1.0.1:2377' } } : {}),
  }));

  const networks = [
    networkBody(NETWORK, NETWORK_ID, 'overlay', 'swarm', false, '10.64.0.0/10'),
    networkBody('ingress', INGRESS_ID, 'overlay', 'swarm', true, '10.0.0.0/24'),
    networkBody('docker_gwbridge', hexId(), 'bridge', 'local', false, '172.18.0.0/16'),
    networkBody('bridge', hexId(), 'bridge', 'local', false, '172.17.0.0/16'),
    networkBody('host', hexId(), 'host', 'local', false),
    networkBody('none', hexId(), 'null', 'local', false),
  ];

  const ports = [{ Protocol: 'tcp', TargetPort: 80, PublishedPort: publishedPort, PublishMode: 'host' }];
  const services: unknown[] = [];
  const tasks: unknown[] = [];
  const containers: unknown[] = [];
  let address = 0;

  for (let i = 0; i < options.services; i++) {
    const id = swarmId();
    const name = serviceName(i);
    const created = BASE_TIME + i * 1000;
    const labels = i % 10 === 3 ? dockerLbLabels(i, published) : interlockLabels(i, published);
    const targetPort = published ? 80 : 8080;
    const containerSpec = {
      Image: 'local/busybox:1',
      Args: ['/bin/httpd', '-f', '-p', String(targetPort), '-h', '/'],
      Init: false,
      DNSConfig: {},
      Isolation: 'default',
    };
    services.push({
      ID: id,
      Version: { Index: 65 + i },
      CreatedAt: iso(created),
      UpdatedAt: iso(created + 500),
      Spec: {
        Name: name,
        Labels: labels,
        TaskTemplate: {
          ContainerSpec: containerSpec,
          Resources: { Limits: {}, Reservations: {} },
          Placement: {},
          ...(published ? {} : { Networks: [{ Target: NETWORK_ID }] }),
          ForceUpdate: 0,
          Runtime: 'container',
        },
        Mode: { Replicated: { Replicas: RUNNING_TASKS } },
        EndpointSpec: published ? { Mode: 'vip', Ports: ports } : { Mode: 'vip' },
      },
      Endpoint: published
        ? { Spec: { Mode: 'vip', Ports: ports }, Ports: ports }
        : { Spec: { Mode: 'vip' }, VirtualIPs: [{ NetworkID: NETWORK_ID, Addr: `${overlayAddress(address++)}/10` }] },
    });

    const task = (slot: number, running: boolean) => {
      const node = nodes[(i + slot) % NODES] as (typeof nodes)[number];
      const taskId = swarmId();
      const containerId = hexId();
      const at = created + (running ? 60_000 : 10_000) + slot * 100;
      const ip = overlayAddress(address++);
      tasks.push({
        ID: taskId,
        Version: { Index: 121 + slot },
        CreatedAt: iso(at - 5000),
        UpdatedAt: iso(at),
        Labels: {},
        Spec: {
          ContainerSpec: containerSpec,
          Resources: { Limits: {}, Reservations: {} },
          Placement: {},
          ...(published ? {} : { Networks: [{ Target: NETWORK_ID }] }),
          ForceUpdate: running ? 1 : 0,
        },
        ServiceID: id,
        Slot: slot,
        NodeID: node.ID,
        Status: {
          Timestamp: iso(at),
          State: running ? 'running' : 'shutdown',
          Message: running ? 'started' : 'shutdown',
          ContainerStatus: { ContainerID: containerId, PID: running ? 20000 + slot : 0, ExitCode: running ? 0 : 137 },
          PortStatus: published ? { Ports: ports } : {},
        },
        DesiredState: running ? 'running' : 'shutdown',
        ...(published ? {} : { NetworksAttachments: [attachment(ip)] }),
      });
      if (running && node === nodes[0]) {
        containers.push({
          Id: containerId,
          Names: [`/${name}.${slot}.${taskId}`],
          Image: 'local/busybox:1',
          ImageID: 'sha256:139950a249d0bc46c74dcc78d0008f331363b45084a0c8533f85dddad6eb9cc9',
          Command: containerSpec.Args.join(' '),
          Created: Math.floor(at / 1000),
          Ports: published ? [{ IP: '0.0.0.0', PrivatePort: 80, PublicPort: publishedPort, Type: 'tcp' }] : [],
          Labels: {
            'com.docker.swarm.node.id': node.ID,
            'com.docker.swarm.service.id': id,
            'com.docker.swarm.service.name': name,
            'com.docker.swarm.task': '',
            'com.docker.swarm.task.id': taskId,
            'com.docker.swarm.task.name': `${name}.${slot}.${taskId}`,
          },
          State: 'running',
          Status: 'Up 7 seconds',
          HostConfig: { NetworkMode: 'default' },
          NetworkSettings: {
            Networks: published
              ? {}
              : {
                  [NETWORK]: {
                    IPAMConfig: { IPv4Address: ip },
                    Links: null,
                    Aliases: null,
                    NetworkID: NETWORK_ID,
                    EndpointID: hexId(),
                    Gateway: '',
                    IPAddress: ip,
                    IPPrefixLen: 10,
                    IPv6Gateway: '',
                    GlobalIPv6Address: '',
                    GlobalIPv6PrefixLen: 0,
                    MacAddress: '02:42:0a:00:01:0e',
                    DriverOpts: null,
                  },
                },
          },
          Mounts: [],
        });
      }
    };
    // History first, as the API lists older tasks too; then the running ones.
    for (let s = 1; s <= SHUTDOWN_TASKS; s++) task(s, false);
    for (let s = 1; s <= RUNNING_TASKS; s++) task(s, true);
  }

  return {
    metadata: { cluster: 'bench', apiVersion: '1.41', engineVersion: '20.10.24+dfsg1' },
    services,
    tasks,
    networks,
    nodes,
    containers,
  };
}
