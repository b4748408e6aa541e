import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  encodePickleFrames,
  encodePlaintext,
  MAX_LINE_BYTES,
  MAX_PICKLE_PAYLOAD_BYTES,
  type Point,
  pointProblem,
} from '../../src/stats/point.ts';

/** Python reads the frames exactly as carbon's pickle receiver does: length prefix, then pickle.loads. */
const DECODE_FRAMES = `
import sys, json, pickle
data = sys.stdin.buffer.read()
frames = []
o = 0
while o < len(data):
    n = int.from_bytes(data[o:o + 4], 'big')
    payload = data[o + 4:o + 4 + n]
    assert len(payload) == n, 'truncated frame'
    o += 4 + n
    items = pickle.loads(payload)
    assert isinstance(items, list)
    frames.append([[path, ts, value, type(path).__name__, type(ts).__name__, type(value).__name__]
                   for (path, (ts, value)) in items])
print(json.dumps({'frames': frames}))
`;

function pythonDecode(bytes: Buffer): [string, number, number, string, string, string][][] {
  const r = spawnSync('python3', ['-c', DECODE_FRAMES], { input: bytes, encoding: 'utf8', timeout: 20_000 });
  if (r.status !== 0) throw new Error(`python3 failed (${r.status}): ${r.stderr}`);
  return (JSON.parse(r.stdout) as { frames: [string, number, number, string, string, string][][] }).frames;
}

describe('plaintext', () => {
  it('one `path value timestamp\\n` line per point, the last one terminated too', () => {
    const text = encodePlaintext([
      { path: 'a.b', value: 1.5, timestamp: 1700000000 },
      { path: 'a.c', value: -0, timestamp: 1700000000 },
      { path: 'a.d', value: 1e21, timestamp: 1700000001 },
    ]);
    expect(text).toBe('a.b 1.5 1700000000\na.c 0 1700000000\na.d 1e+21 1700000001\n');
  });

  it('refuses what carbon would drop or mangle', () => {
    const ok: Point = { path: 'a.b', value: 1, timestamp: 1700000000 };
    expect(pointProblem(ok)).toBeUndefined();
    expect(pointProblem({ ...ok, value: Number.NaN })).toBe('value is NaN');
    expect(pointProblem({ ...ok, value: Number.POSITIVE_INFINITY })).toBe('value is Infinity');
    expect(pointProblem({ ...ok, timestamp: 1700000000.5 })).toMatch(/not whole seconds/);
    expect(pointProblem({ ...ok, timestamp: 1700000000123 })).toMatch(/looks like milliseconds/);
    expect(pointProblem({ ...ok, path: '' })).toBe('empty path');
    expect(pointProblem({ ...ok, path: 'a b' })).toMatch(/whitespace/);
    expect(pointProblem({ ...ok, path: 'a\nb' })).toMatch(/whitespace/);
    expect(pointProblem({ ...ok, path: 'a\u0000b' })).toMatch(/control/);
  });

  it(`lines up to ${MAX_LINE_BYTES} bytes with the newline pass, longer ones do not`, () => {
    const rest = ' 1 1700000000\n'.length;
    const fits: Point = { path: 'x'.repeat(MAX_LINE_BYTES - rest), value: 1, timestamp: 1700000000 };
    expect(Buffer.byteLength(encodePlaintext([fits]))).toBe(MAX_LINE_BYTES);
    expect(pointProblem(fits)).toBeUndefined();
    expect(pointProblem({ ...fits, path: `${fits.path}x` })).toMatch(/longer than 16384 bytes/);
    // Multi-byte characters count in bytes, not in characters.
    const wide: Point = { path: 'é'.repeat(MAX_LINE_BYTES / 2), value: 1, timestamp: 1700000000 };
    expect(pointProblem(wide)).toMatch(/longer than/);
  });
});

describe('pickle', () => {
  const points: Point[] = [
    { path: 'interlock.prod.tasks.web.1.cpu.percent', value: 100.46280827930174, timestamp: 1795463237 },
    { path: 'interlock.prod.services.web.memory.used', value: 1093632, timestamp: 1795463237 },
    { path: 'x.negative', value: -3.25e-7, timestamp: 0 },
    { path: 'x.after-2038', value: 5, timestamp: 4_102_444_800 },
    { path: 'x.unicode.café', value: 1.7976931348623157e308, timestamp: 2_147_483_647 },
    { path: 'x.tag;cluster=prod', value: 0, timestamp: 2_147_483_648 },
  ];

  it('python3 pickle.loads reads (path, (timestamp, value)) tuples back exactly', () => {
    const { frames, skipped } = encodePickleFrames(points);
    expect(skipped).toBe(0);
    expect(frames).toHaveLength(1);
    const decoded = pythonDecode(Buffer.concat(frames));
    expect(decoded).toEqual([points.map((p) => [p.path, p.timestamp, p.value, 'str', 'int', 'float'])]);
  });

  it('splits into frames whose payload stays within the limit, keeping every point in order', () => {
    const many: Point[] = Array.from({ length: 3000 }, (_, i) => ({
      path: `interlock.c.tasks.svc-${i % 7}.${i}.net.rx_bytes_per_s`,
      value: i / 3,
      timestamp: 1795463237 + (i % 5),
    }));
    const limit = 16_384;
    const { frames, skipped } = encodePickleFrames(many, limit);
    expect(skipped).toBe(0);
    expect(frames.length).toBeGreaterThan(5);
    for (const f of frames) {
      expect(f.readUInt32BE(0)).toBe(f.length - 4);
      expect(f.length - 4).toBeLessThanOrEqual(limit);
    }
    const decoded = pythonDecode(Buffer.concat(frames)).flat();
    expect(decoded.map(([path, ts, value]) => ({ path, timestamp: ts, value }))).toEqual(many);
  });

  it('the default limit is under the 1 MiB carbon closes the connection at', () => {
    expect(MAX_PICKLE_PAYLOAD_BYTES).toBeLessThan(2 ** 20);
    const big: Point[] = Array.from({ length: 40_000 }, (_, i) => ({
      path: `p.${'s'.repeat(20)}.${i}`,
      value: i,
      timestamp: 1795463237,
    }));
    const { frames } = encodePickleFrames(big);
    expect(frames.length).toBeGreaterThan(1);
    expect(Math.max(...frames.map((f) => f.length - 4))).toBeLessThanOrEqual(MAX_PICKLE_PAYLOAD_BYTES);
  });

  it('a point larger than a frame is skipped and counted, the others are kept', () => {
    const { frames, skipped } = encodePickleFrames(
      [points[0] as Point, { path: 'y'.repeat(200), value: 1, timestamp: 1 }, points[1] as Point],
      100,
    );
    expect(skipped).toBe(1);
    const decoded = pythonDecode(Buffer.concat(frames)).flat();
    expect(decoded.map((d) => d[0])).toEqual([points[0]?.path, points[1]?.path]);
  });
});
