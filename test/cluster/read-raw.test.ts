/**
 * The raw reads of the watch daemon (issue 12): a list that keeps arriving is not cut off by the
 * cluster's bound for being large; an engine that stops answering still is.
 */
import { describe, expect, it } from 'vitest';
import {
  ClusterUnavailableError,
  detectChanges,
  type RawGetApi,
  readSnapshot,
  readSnapshotIfChanged,
} from '../../src/cluster/read.ts';
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
});
