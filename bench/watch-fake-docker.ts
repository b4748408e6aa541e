/**
 * A fake Docker Engine API on a unix socket, for the watch daemon's benchmarks at scale: a Swarm of
 * N services answering the calls the daemon makes (/version, /info, /services, /tasks, /networks,
 * /nodes, /containers/json, /events) with bodies shaped and sized like the Engine's. The bench
 * pushes events into the open /events streams. Nothing is ever sent to the published ports.
 *
 * Realistic replies (issue 12): each service runs 3 tasks (published in host mode on 127.0.0.1,
 * one port each) and keeps 2 shut-down tasks of history, as a Swarm with the default task
 * history does after an update; every running task has its container. /tasks honours the
 * `desired-state` and `service` filters the daemon sends (the reader asks for running tasks
 * only; the task follower for one service's tasks, history included), /services the `id` filter
 * and /containers/json the service-id `label` filter (the daemon reads one service after an
 * event about it).
 */
import { rmSync } from 'node:fs';
import http from 'node:http';
import { MANAGER_INFO, NODE_DOC, NODE_ID, VERSION } from '../test/watch/fake-swarm.ts';

export interface FakeDocker {
  socketPath: string;
  /** Sends one event to every open /events stream. */
  emit(event: { Type: string; Action: string; id: string; name: string }): void;
  /** Changes one service's labels (the next /services answer shows it; its version goes up). */
  relabel(index: number, labels: Record<string, string>): void;
  streams(): number;
  requests: Record<string, number>;
  /** Bytes of the last full answers, by route. */
  bodyBytes: Record<string, number>;
  close(): Promise<void>;
}

export const RUNNING_PER_SERVICE = 3;
export const HISTORY_PER_SERVICE = 2;

interface Service {
  index: number;
  id: string;
  name: string;
  labels: Record<string, string>;
  version: number;
  ports: number[];
}

function labelsFor(i: number): Record<string, string> {
  return { 'interlock.hostname': `svc-${i}`, 'interlock.domain': 'bench.test', 'interlock.port': '80' };
}

const hex = (n: number, width = 64) => n.toString(16).padStart(width, '0');
const CREATED = '2026-01-01T00:00:00.000000000Z';
const IMAGE = 'interlock-test/busybox:1@sha256:0e8c3b5e2a1b6f4d9c7e8a2b1c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6';

function serviceDoc(s: Service): unknown {
  return {
    ID: s.id,
    Version: { Index: s.version },
    CreatedAt: CREATED,
    UpdatedAt: CREATED,
    Spec: {
      Name: s.name,
      Labels: s.labels,
      TaskTemplate: {
        ContainerSpec: {
          Image: IMAGE,
          Args: ['/bin/httpd', '-f', '-p', '80', '-h', '/www'],
          Init: false,
          StopGracePeriod: 10_000_000_000,
          DNSConfig: {},
          Isolation: 'default',
        },
        Resources: { Limits: {}, Reservations: {} },
        RestartPolicy: { Condition: 'any', Delay: 5_000_000_000, MaxAttempts: 0 },
        Placement: { Platforms: [{ Architecture: 'amd64', OS: 'linux' }] },
        ForceUpdate: 0,
        Runtime: 'container',
      },
      Mode: { Replicated: { Replicas: s.ports.length } },
      UpdateConfig: {
        Parallelism: 1,
        FailureAction: 'pause',
        Monitor: 5_000_000_000,
        MaxFailureRatio: 0,
        Order: 'stop-first',
      },
      RollbackConfig: {
        Parallelism: 1,
        FailureAction: 'pause',
        Monitor: 5_000_000_000,
        MaxFailureRatio: 0,
        Order: 'stop-first',
      },
      EndpointSpec: {
        Mode: 'vip',
        Ports: s.ports.map((p) => ({ Protocol: 'tcp', TargetPort: 80, PublishedPort: p, PublishMode: 'host' })),
      },
    },
    Endpoint: {
      Spec: {
        Mode: 'vip',
        Ports: s.ports.map((p) => ({ Protocol: 'tcp', TargetPort: 80, PublishedPort: p, PublishMode: 'host' })),
      },
      Ports: s.ports.map((p) => ({ Protocol: 'tcp', TargetPort: 80, PublishedPort: p, PublishMode: 'host' })),
    },
  };
}

function taskDoc(s: Service, slot: number, generation: number, running: boolean, port: number): unknown {
  const id = `${s.id.slice(3, 15)}t${slot}g${generation}`.padEnd(25, 'x');
  const containerId = hex(s.index * 100 + slot * 10 + generation);
  return {
    ID: id,
    Version: { Index: s.version + generation },
    CreatedAt: CREATED,
    UpdatedAt: CREATED,
    Labels: {},
    Spec: {
      ContainerSpec: { Image: IMAGE, Args: ['/bin/httpd', '-f', '-p', '80', '-h', '/www'], Isolation: 'default' },
      Resources: { Limits: {}, Reservations: {} },
      RestartPolicy: { Condition: 'any', Delay: 5_000_000_000, MaxAttempts: 0 },
      Placement: { Platforms: [{ Architecture: 'amd64', OS: 'linux' }] },
      ForceUpdate: 0,
    },
    ServiceID: s.id,
    Slot: slot,
    NodeID: NODE_ID,
    Status: {
      Timestamp: CREATED,
      State: running ? 'running' : 'shutdown',
      Message: running ? 'started' : 'shutdown',
      ContainerStatus: { ContainerID: containerId, PID: running ? 1000 + slot : 0, ExitCode: 0 },
      PortStatus: running
        ? { Ports: [{ Protocol: 'tcp', TargetPort: 80, PublishedPort: port, PublishMode: 'host' }] }
        : {},
    },
    DesiredState: running ? 'running' : 'shutdown',
  };
}

function tasksOf(s: Service, wantRunning: boolean, wantHistory: boolean): unknown[] {
  const out: unknown[] = [];
  s.ports.forEach((port, i) => {
    if (wantRunning) out.push(taskDoc(s, i + 1, 0, true, port));
  });
  if (wantHistory) {
    for (let h = 0; h < HISTORY_PER_SERVICE; h++) out.push(taskDoc(s, (h % s.ports.length) + 1, h + 1, false, 0));
  }
  return out;
}

function containerDocs(s: Service): unknown[] {
  return s.ports.map((port, i) => {
    const slot = i + 1;
    const taskId = `${s.id.slice(3, 15)}t${slot}g0`.padEnd(25, 'x');
    return {
      Id: hex(s.index * 100 + slot * 10),
      Names: [`/${s.name}.${slot}.${taskId}`],
      Image: IMAGE,
      ImageID: `sha256:${hex(7)}`,
      Command: '/bin/httpd -f -p 80 -h /www',
      Created: 1_767_225_600,
      Ports: [{ IP: '0.0.0.0', PrivatePort: 80, PublicPort: port, Type: 'tcp' }],
      Labels: {
        'com.docker.swarm.node.id': NODE_ID,
        'com.docker.swarm.service.id': s.id,
        'com.docker.swarm.service.name': s.name,
        'com.docker.swarm.task': '',
        'com.docker.swarm.task.id': taskId,
        'com.docker.swarm.task.name': `${s.name}.${slot}.${taskId}`,
      },
      State: 'running',
      Status: 'Up 2 hours',
      HostConfig: { NetworkMode: 'default' },
      NetworkSettings: {
        Networks: {
          bridge: {
            NetworkID: hex(1),
            EndpointID: hex(s.index * 10 + slot),
            Gateway: '172.17.0.1',
            IPAddress: '172.17.0.2',
            IPPrefixLen: 16,
            MacAddress: '02:42:ac:11:00:02',
          },
        },
      },
      Mounts: [],
    };
  });
}

export async function startFakeDocker(socketPath: string, count: number): Promise<FakeDocker> {
  const services: Service[] = Array.from({ length: count }, (_, i) => ({
    index: i,
    id: serviceId(i),
    name: `svc-${i}`,
    labels: labelsFor(i),
    version: 10,
    ports: Array.from({ length: RUNNING_PER_SERVICE }, (_, r) => 20_000 + ((i * RUNNING_PER_SERVICE + r) % 40_000)),
  }));
  // Bodies are built once and rebuilt only after a change: the server must not be the bottleneck.
  let servicesBody: string | undefined;
  let runningTasksBody: string | undefined;
  let allTasksBody: string | undefined;
  let containersBody: string | undefined;
  const byId = new Map(services.map((s) => [s.id, s]));
  const streams = new Set<http.ServerResponse>();
  const requests: Record<string, number> = {};
  const bodyBytes: Record<string, number> = {};

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://docker');
    const route = url.pathname.replace(/^\/v[\d.]+/, '');
    requests[route] = (requests[route] ?? 0) + 1;
    const json = (body: unknown) => {
      const text = typeof body === 'string' ? body : JSON.stringify(body);
      res.writeHead(200, { 'content-type': 'application/json', 'api-version': '1.41' }).end(text);
    };
    const big = (key: string, text: string) => {
      bodyBytes[key] = Buffer.byteLength(text);
      json(text);
    };
    switch (route) {
      case '/version':
        return json(VERSION);
      case '/info':
        return json(MANAGER_INFO);
      case '/services': {
        // The daemon reads one service after an event about it: the `id` filter (a prefix match).
        const ids = (JSON.parse(url.searchParams.get('filters') ?? '{}') as { id?: string[] }).id;
        if (ids) return json(services.filter((s) => ids.some((id) => s.id.startsWith(id))).map(serviceDoc));
        servicesBody ??= JSON.stringify(services.map(serviceDoc));
        return big('/services', servicesBody);
      }
      case '/tasks': {
        const raw = url.searchParams.get('filters');
        const filters = (raw ? JSON.parse(raw) : {}) as { service?: string[]; 'desired-state'?: string[] };
        const desired = filters['desired-state'];
        const wantRunning = desired === undefined || desired.includes('running');
        const wantHistory = desired === undefined || desired.includes('shutdown');
        if (filters.service) {
          return json(
            filters.service.flatMap((id) => {
              const s = byId.get(id);
              return s ? tasksOf(s, wantRunning, wantHistory) : [];
            }),
          );
        }
        if (wantRunning && !wantHistory) {
          runningTasksBody ??= JSON.stringify(services.flatMap((s) => tasksOf(s, true, false)));
          return big('/tasks?desired-state=running', runningTasksBody);
        }
        allTasksBody ??= JSON.stringify(services.flatMap((s) => tasksOf(s, wantRunning, wantHistory)));
        return big('/tasks', allTasksBody);
      }
      case '/containers/json': {
        // One service's task containers: the `label` filter `com.docker.swarm.service.id=ID`.
        const labels = (JSON.parse(url.searchParams.get('filters') ?? '{}') as { label?: string[] }).label;
        if (labels) {
          const wanted = labels.map((l) => /^com\.docker\.swarm\.service\.id=(.+)$/.exec(l)?.[1]);
          return json(wanted.flatMap((id) => (id && byId.has(id) ? containerDocs(byId.get(id) as Service) : [])));
        }
        containersBody ??= JSON.stringify(services.flatMap(containerDocs));
        return big('/containers/json', containersBody);
      }
      case '/networks':
        return json([
          { Name: 'bridge', Id: hex(1), Driver: 'bridge', Scope: 'local', Ingress: false },
          { Name: 'ingress', Id: hex(2), Driver: 'overlay', Scope: 'swarm', Ingress: true },
        ]);
      case '/nodes':
        return json([NODE_DOC]);
      case '/events': {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.flushHeaders();
        streams.add(res);
        res.on('close', () => streams.delete(res));
        return;
      }
      default:
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"page not found"}');
    }
  });
  rmSync(socketPath, { force: true });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return {
    socketPath,
    requests,
    bodyBytes,
    emit: (e) => {
      const line = `${JSON.stringify({
        Type: e.Type,
        Action: e.Action,
        Actor: { ID: e.id, Attributes: { name: e.name } },
        time: Math.floor(Date.now() / 1000),
        timeNano: Date.now() * 1e6,
      })}\n`;
      for (const s of streams) s.write(line);
    },
    relabel: (index, labels) => {
      const s = services[index];
      if (!s) return;
      s.labels = { ...labelsFor(index), ...labels };
      s.version++;
      servicesBody = undefined;
    },
    streams: () => streams.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of streams) s.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export function serviceId(i: number): string {
  return `svc${String(i).padStart(22, '0')}`;
}
