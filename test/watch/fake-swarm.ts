/**
 * A Swarm in memory, answering the DockerApi calls the daemon makes with bodies shaped like the
 * Engine API's: services published in host mode on one node at 127.0.0.1, their running tasks,
 * and an event stream the test writes to. The bench's fake Docker API server serves the same
 * documents over HTTP.
 */
import { createHash } from 'node:crypto';
import { PassThrough } from 'node:stream';
import type { WatchApi } from '../../src/watch/cluster-watcher.ts';

export interface FakeService {
  id: string;
  name: string;
  labels: Record<string, string>;
  /** Host-published port of each running task. */
  ports: number[];
  /** Task state of each replica (default running). */
  states?: string[];
  /** `CreatedAt` (decides who keeps a contested host). */
  createdAt?: string;
  /** Tasks' id generation: a new one moves every task (a rolling update). */
  generation?: number;
}

export const NODE_ID = 'node0000000000000000000001';

export function serviceDoc(s: FakeService): unknown {
  return {
    ID: s.id,
    Version: { Index: 1 },
    ...(s.createdAt ? { CreatedAt: s.createdAt } : {}),
    Spec: {
      Name: s.name,
      Labels: s.labels,
      TaskTemplate: { ContainerSpec: { Image: 'interlock-test/busybox:1' } },
      Mode: { Replicated: { Replicas: s.ports.length } },
    },
    Endpoint: {
      Ports: s.ports.map((p) => ({ Protocol: 'tcp', TargetPort: 80, PublishedPort: p, PublishMode: 'host' })),
    },
  };
}

export function taskDocs(s: FakeService): unknown[] {
  return s.ports.map((p, i) => ({
    ID: `${s.id}-task-${i + 1}${s.generation ? `-g${s.generation}` : ''}`,
    ServiceID: s.id,
    Slot: i + 1,
    NodeID: NODE_ID,
    DesiredState: 'running',
    Status: {
      State: s.states?.[i] ?? 'running',
      PortStatus: { Ports: [{ Protocol: 'tcp', TargetPort: 80, PublishedPort: p, PublishMode: 'host' }] },
    },
  }));
}

export const NODE_DOC = {
  ID: NODE_ID,
  Spec: { Role: 'manager', Availability: 'active' },
  Description: { Hostname: 'fake' },
  Status: { State: 'ready', Addr: '127.0.0.1' },
};

export const MANAGER_INFO = { Swarm: { LocalNodeState: 'active', ControlAvailable: true } };
export const VERSION = { ApiVersion: '1.41', Version: '20.10.24' };

export function httpService(name: string, port: number, extra: Record<string, string> = {}): FakeService {
  return {
    id: `svc-${name}`,
    name,
    labels: { 'interlock.hostname': name, 'interlock.domain': 'test', 'interlock.port': '80', ...extra },
    ports: [port],
  };
}

export class FakeSwarm {
  services = new Map<string, FakeService>();
  /** When set, every call fails with this error (the engine is away). */
  down: (Error & { code?: string }) | undefined;
  streams: PassThrough[] = [];
  calls: string[] = [];

  add(s: FakeService): void {
    this.services.set(s.id, s);
  }

  remove(id: string): void {
    this.services.delete(id);
  }

  /** Writes one event line to every open stream. */
  emit(type: string, action: string, id: string, attributes: Record<string, string> = {}): void {
    const line = `${JSON.stringify({ Type: type, Action: action, Actor: { ID: id, Attributes: attributes }, time: 1 })}\n`;
    for (const s of this.streams) s.write(line);
  }

  /** Ends every open stream, as a restarting engine does. */
  dropStreams(): void {
    for (const s of this.streams) s.end();
    this.streams = [];
  }

  /** The lists a full read takes, as the Engine answers them. */
  lists(): Record<'services' | 'tasks' | 'networks' | 'nodes' | 'containers', unknown[]> {
    return {
      services: [...this.services.values()].map(serviceDoc),
      tasks: [...this.services.values()].flatMap(taskDocs),
      networks: [],
      nodes: [NODE_DOC],
      containers: [],
    };
  }

  /**
   * With `raw`, the API also answers raw bodies (as the daemon's own connection does), cut into
   * chunks of `chunkBytes()` bytes: the reconcile then finds changes without parsing.
   */
  api(options: { raw?: boolean; chunkBytes?: () => number } = {}): WatchApi {
    const answer =
      <T>(name: string, value: () => T) =>
      async (): Promise<T> => {
        this.calls.push(name);
        if (this.down) throw this.down;
        return value();
      };
    return {
      version: answer('version', () => VERSION),
      info: answer('info', () => MANAGER_INFO),
      listServices: answer('listServices', () => [...this.services.values()].map(serviceDoc)),
      listTasks: async (options?: { filters?: Record<string, string[]> }) => {
        this.calls.push(options?.filters ? 'listTasks(service)' : 'listTasks');
        if (this.down) throw this.down;
        const wanted = options?.filters?.service;
        return [...this.services.values()].filter((s) => !wanted || wanted.includes(s.id)).flatMap(taskDocs);
      },
      listNetworks: answer('listNetworks', () => []),
      listNodes: answer('listNodes', () => [NODE_DOC]),
      listContainers: answer('listContainers', () => []),
      ...(options.raw
        ? {
            getRaw: async (
              path: string,
              _query: Record<string, unknown>,
              o: { keep: boolean; each?: (chunk: Buffer) => void },
            ) => {
              this.calls.push(`raw ${path}`);
              if (this.down) throw this.down;
              const key = path.replace(/^\/|\?$/g, '').replace('containers/json', 'containers') as keyof ReturnType<
                FakeSwarm['lists']
              >;
              const body = Buffer.from(JSON.stringify(this.lists()[key] ?? []));
              if (o.each) {
                for (let at = 0; at < body.length; ) {
                  const n = Math.max(1, options.chunkBytes?.() ?? 65536);
                  o.each(body.subarray(at, at + n));
                  at += n;
                }
              }
              return {
                digest: createHash('sha256').update(body).digest('base64'),
                ...(o.keep ? { body } : {}),
              };
            },
          }
        : {}),
      getEvents: async () => {
        this.calls.push('getEvents');
        if (this.down) throw this.down;
        const s = new PassThrough();
        this.streams.push(s);
        return s;
      },
    };
  }
}

export function refused(): Error & { code: string } {
  return Object.assign(new Error('connect ECONNREFUSED /var/run/docker.sock'), { code: 'ECONNREFUSED' });
}
