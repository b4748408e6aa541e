/**
 * The raw reads of the watch daemon (issue 12): a list that keeps arriving is not cut off by the
 * cluster's bound for being large; an engine that stops answering still is.
 */
import { describe, expect, it } from 'vitest';
import { syntheticSnapshot } from '../../bench/lib/synthetic.ts';
import {
  ClusterUnavailableError,
  detectChanges,
  type RawGetApi,
  readSnapshot,
  readSnapshotIfChanged,
} from '../../src/cluster/read.ts';
import type { SnapshotDocument } from '../../src/cluster/snapshot.ts';
import { mapSnapshot } from '../../src/cluster/snapshot-map.ts';
import { FakeSwarm, httpService } from '../watch/fake-swarm.ts';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The fake's raw API, each body dribbled in `pieces` chunks `gapMs` apart (or stalling after the first). */
function slowApi(swarm: FakeSwarm, o: { pieces: number; gapMs: number; stall?: boolean }) {
  const api = swarm.api({ raw: true });
  const fast = api.getRaw as RawGetApi['getRaw'];
  api.getRaw = async (path, query, options) => {
    const chunks: Buffer[] = [];
    const whole = await fast(path, query, { keep: true });
    const body = whole.body as Buffer;
    const size = Math.ceil(body.length / o.pieces);
    for (let at = 0; at < body.length; at += size) chunks.push(body.subarray(at, at + size));
    for (const [i, c] of chunks.entries()) {
      if (options.abortSignal?.aborted) throw new Error('aborted');
      if (i > 0) await sleep(o.stall ? 10_000 : o.gapMs);
      options.each?.(c);
    }
    return { digest: whole.digest, ...(options.keep ? { body } : {}) };
  };
  return api as typeof api & RawGetApi;
}

const options = { cluster: 'c', timeoutMs: 150, endpointDisplay: 'fake' };

describe('raw reads: the bound is on silence, not on size', () => {
  const swarm = new FakeSwarm();
  for (let i = 0; i < 20; i++) swarm.add(httpService(`s${i}`, 20_000 + i));

  it('a full read that keeps arriving for longer than the bound completes', async () => {
    const r = await readSnapshotIfChanged(slowApi(swarm, { pieces: 8, gapMs: 60 }), options, undefined);
    expect(r.doc?.services).toHaveLength(20);
    expect(r.baseline).toBeDefined();
  });

  it('a reconcile look that keeps arriving completes too', async () => {
    const base = await readSnapshotIfChanged(swarm.api({ raw: true }) as never, options, undefined);
    swarm.add(httpService('late', 20_100));
    const r = await detectChanges(slowApi(swarm, { pieces: 8, gapMs: 60 }), options, base.baseline);
    expect(r.detected).toEqual({ kind: 'services', ids: new Set(['svc-late']) });
  });

  it('an engine that stops answering is still cut off', async () => {
    await expect(
      readSnapshotIfChanged(slowApi(swarm, { pieces: 4, gapMs: 0, stall: true }), options, undefined),
    ).rejects.toThrow(ClusterUnavailableError);
  });
});

describe('raw full reads: each list is taken in entry by entry', () => {
  const swarm = new FakeSwarm();
  for (let i = 0; i < 5; i++) swarm.add(httpService(`s${i}`, 21_000 + i));

  /** The fake's raw API with the body of `path` replaced, dribbled in 3-byte chunks. */
  function answering(path: string, body: string) {
    const api = swarm.api({ raw: true });
    const fast = api.getRaw as RawGetApi['getRaw'];
    api.getRaw = async (p, query, options) => {
      if (p !== path) return fast(p, query, options);
      const bytes = Buffer.from(body);
      for (let at = 0; at < bytes.length; at += 3) options.each?.(bytes.subarray(at, at + 3));
      return { digest: 'x' };
    };
    return api as typeof api & RawGetApi;
  }

  it('reads the same document as a parse of the whole bodies', async () => {
    const whole = await readSnapshotIfChanged(swarm.api({ raw: true }) as never, options, undefined);
    const api = swarm.api({ raw: true });
    const plain = await readSnapshot(api as never, options);
    expect(whole.doc?.services).toHaveLength(5);
    expect(whole.doc?.tasks?.length).toBeGreaterThan(0);
    for (const key of ['services', 'tasks', 'networks', 'nodes', 'containers'] as const) {
      expect(whole.doc?.[key], key).toEqual(plain[key]);
    }
  });

  it('names a list answered with JSON of another kind, or with what is not JSON', async () => {
    await expect(
      readSnapshotIfChanged(answering('/services?', '{"message":"not a manager"}'), options, undefined),
    ).rejects.toThrow(/GET \/services did not answer with a list/);
    await expect(readSnapshotIfChanged(answering('/tasks?', '[{"ID":'), options, undefined)).rejects.toThrow(
      /GET \/tasks did not answer JSON/,
    );
  });

  it("keeps of a task's container only what mapping reads, and maps to the same state", async () => {
    const doc = syntheticSnapshot({ services: 12, backends: 'published' });
    const standalone = {
      ...(doc.containers?.[0] as Record<string, unknown>),
      Id: 'f'.repeat(64),
      Names: ['/standalone-web'],
      Labels: { 'interlock.hostname': 'standalone' },
    };
    const containers = [...(doc.containers ?? []), standalone];
    const serving = (lists: Record<string, unknown[]>) => {
      const api = swarm.api({ raw: true });
      api.getRaw = async (p, _query, o) => {
        const key = p.replace(/^\/|\?$/g, '').replace('containers/json', 'containers');
        const body = Buffer.from(JSON.stringify(lists[key] ?? []));
        for (let at = 0; at < body.length; at += 500) o.each?.(body.subarray(at, at + 500));
        return { digest: key };
      };
      return api as typeof api & RawGetApi;
    };
    const r = await readSnapshotIfChanged(serving({ ...doc, containers } as never), options, undefined);
    const read = r.doc?.containers as Record<string, unknown>[];
    expect(read).toHaveLength(containers.length);
    const tasks = read.filter((c) => c.Id !== standalone.Id);
    expect(tasks.length).toBeGreaterThan(0);
    for (const c of tasks) expect(Object.keys(c).sort()).toEqual(['Id', 'Labels', 'Ports']);
    expect(read.find((c) => c.Id === standalone.Id)).toEqual(standalone);
    // Without the standalone container there is a reconcile table, and it names every container's service.
    const swarmOnly = await readSnapshotIfChanged(serving(doc as never), options, undefined);
    expect(swarmOnly.baseline?.tables.containers.size).toBe(tasks.length);
    const at = { cluster: 'c' };
    const reduced = mapSnapshot(r.doc as SnapshotDocument, at);
    const whole = mapSnapshot({ ...doc, containers }, at);
    expect(reduced.diagnostics).toEqual(whole.diagnostics);
    expect(reduced.state).toEqual(whole.state);
    // Host ports do come from the containers here: the test would see a reduction that lost them.
    expect(whole.state.services.some((s) => s.tasks.some((t) => t.hostPorts.length > 0))).toBe(true);

    // Read as a standalone engine's (a manager that listed no nodes), the reduced task containers
    // are not mistaken for standalone containers without names: only the real one is a service.
    const noNodes = mapSnapshot({ ...(r.doc as SnapshotDocument), nodes: [] }, at);
    expect(noNodes.state.services.map((s) => s.name)).toEqual(['standalone-web']);
    expect(noNodes.diagnostics.map((d) => d.message)).toEqual([
      'the snapshot lists services but no nodes: read as a standalone engine, services ignored',
    ]);
  });
});
