/**
 * The bench's fake Docker API must answer what the daemon asks as an engine would (issue 12): the
 * reader sends `desired-state=running`, the task follower `service=[id]`. It once answered no
 * task at all as soon as any filter came, so the daemon rendered 0 routes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeDocker, serviceId, startFakeDocker } from '../../bench/watch-fake-docker.ts';
import { type DockerApi, readServiceLists, readSnapshot } from '../../src/cluster/read.ts';
import { mapSnapshots } from '../../src/cluster/sources.ts';
import { configSchema } from '../../src/config/schema.ts';
import { buildRoutes } from '../../src/routes/build.ts';

type Task = { ServiceID: string; DesiredState: string; Status: { State: string } };

describe('bench fake Docker API', () => {
  let dir: string;
  let fake: FakeDocker;
  let docker: Docker;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ilfake-'));
    fake = await startFakeDocker(path.join(dir, 'docker.sock'), 20);
    docker = new Docker({ socketPath: fake.socketPath });
  });
  afterAll(async () => {
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the running tasks to the reader (desired-state=running): 3 per service', async () => {
    const tasks = (await docker.listTasks({ filters: { 'desired-state': ['running'] } })) as Task[];
    expect(tasks).toHaveLength(60);
    expect(tasks.every((t) => t.DesiredState === 'running' && t.Status.State === 'running')).toBe(true);
  });

  it('serves one service its tasks with the shut-down history (service=[id])', async () => {
    const tasks = (await docker.listTasks({ filters: { service: [serviceId(3)] } })) as Task[];
    expect(tasks.filter((t) => t.Status.State === 'running')).toHaveLength(3);
    expect(tasks.filter((t) => t.Status.State === 'shutdown')).toHaveLength(2);
    expect(new Set(tasks.map((t) => t.ServiceID))).toEqual(new Set([serviceId(3)]));
  });

  it('lists a container per running task', async () => {
    expect(await docker.listContainers()).toHaveLength(60);
  });

  it('reads one service as the daemon does after an event about it (id and label filters)', async () => {
    const lists = await readServiceLists(
      docker as unknown as DockerApi,
      { cluster: 'fake', timeoutMs: 5000, endpointDisplay: 'fake' },
      serviceId(7),
    );
    expect(lists.services).toHaveLength(1);
    expect(lists.tasks).toHaveLength(3);
    expect(lists.containers).toHaveLength(3);
    expect((lists.services[0] as { ID: string }).ID).toBe(serviceId(7));
  });

  it('reads into 20 routes of 3 servers each, and a relabel shows', async () => {
    const config = configSchema.parse({
      clusters: { fake: { nodeAddress: '127.0.0.1' } },
      outputs: [{ kind: 'haproxy', file: 'haproxy.cfg', http: { address: '127.0.0.1', port: 8080 } }],
    });
    fake.relabel(5, { 'interlock.hostname': 'changed' });
    const doc = await readSnapshot(docker, { cluster: 'fake', timeoutMs: 10_000, endpointDisplay: 'fake' });
    const mapped = mapSnapshots([{ cluster: 'fake', doc }], config);
    const built = buildRoutes(mapped.states, config.rules);
    expect(built.routes).toHaveLength(20);
    expect(built.routes.every((r) => r.backends.length === 3)).toBe(true);
    expect(built.routes.flatMap((r) => r.hosts)).toContain('changed.bench.test');
  });
});
