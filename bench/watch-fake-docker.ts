/**
 * A fake Docker Engine API on a unix socket, for the watch daemon's memory benchmark: a Swarm of
 * N services (one running task each, published in host mode on 127.0.0.1), answering the calls the
 * daemon makes (/version, /info, /services, /tasks, /networks, /nodes, /containers/json, /events)
 * with bodies shaped like the Engine's. The bench pushes events into the open /events streams.
 * Nothing is ever sent to the published ports.
 */
import { rmSync } from 'node:fs';
import http from 'node:http';
import { MANAGER_INFO, NODE_DOC, serviceDoc, taskDocs, VERSION } from '../test/watch/fake-swarm.ts';

export interface FakeDocker {
  socketPath: string;
  /** Sends one event to every open /events stream. */
  emit(event: { Type: string; Action: string; id: string; name: string }): void;
  /** Changes one service's labels (the next /services answer shows it). */
  relabel(index: number, labels: Record<string, string>): void;
  streams(): number;
  requests: Record<string, number>;
  close(): Promise<void>;
}

function labelsFor(i: number): Record<string, string> {
  return { 'interlock.hostname': `svc-${i}`, 'interlock.domain': 'bench.test', 'interlock.port': '80' };
}

export async function startFakeDocker(socketPath: string, count: number): Promise<FakeDocker> {
  const services = Array.from({ length: count }, (_, i) => ({
    id: `svc${String(i).padStart(22, '0')}`,
    name: `svc-${i}`,
    labels: labelsFor(i),
    ports: [20_000 + (i % 40_000)],
  }));
  // Bodies are built once and rebuilt only after a change: the server must not be the bottleneck.
  let servicesBody: string | undefined;
  let tasksBody: string | undefined;
  const byId = new Map(services.map((s) => [s.id, s]));
  const streams = new Set<http.ServerResponse>();
  const requests: Record<string, number> = {};

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://docker');
    const route = url.pathname.replace(/^\/v[\d.]+/, '');
    requests[route] = (requests[route] ?? 0) + 1;
    const json = (body: unknown) => {
      const text = typeof body === 'string' ? body : JSON.stringify(body);
      res.writeHead(200, { 'content-type': 'application/json', 'api-version': '1.41' }).end(text);
    };
    switch (route) {
      case '/version':
        return json(VERSION);
      case '/info':
        return json(MANAGER_INFO);
      case '/services':
        servicesBody ??= JSON.stringify(services.map(serviceDoc));
        return json(servicesBody);
      case '/tasks': {
        const filters = url.searchParams.get('filters');
        if (filters) {
          const wanted = (JSON.parse(filters) as { service?: string[] }).service ?? [];
          return json(
            wanted.flatMap((id) => (byId.has(id) ? taskDocs(byId.get(id) as (typeof services)[number]) : [])),
          );
        }
        tasksBody ??= JSON.stringify(services.flatMap(taskDocs));
        return json(tasksBody);
      }
      case '/networks':
      case '/containers/json':
        return json([]);
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
