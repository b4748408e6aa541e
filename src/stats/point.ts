/**
 * Metric points and their two Carbon wire formats. Pure: no sockets, no clock.
 *
 * carbon-cache drops data silently in several ways (see FIELD-NOTES "Carbon"); every limit here
 * exists to stay on the accepted side: lines under 16 KiB, pickle frames under 1 MiB, integer
 * second timestamps, finite values, and every line ending in `\n`.
 */

export interface Point {
  /** Graphite path (dots are levels), optionally with `;tag=value` pairs. */
  path: string;
  value: number;
  /** Unix time in whole seconds. */
  timestamp: number;
}

/** carbon's line receiver closes the connection on a line over 16,384 bytes; `\n` included here. */
export const MAX_LINE_BYTES = 16_384;
/** carbon's pickle receiver closes the connection on a frame over 2^20 bytes; stay strictly under. */
export const MAX_PICKLE_PAYLOAD_BYTES = 1_048_575;
/**
 * Seconds since 1970 stay below this until the year 5138; a larger timestamp is almost surely in
 * milliseconds, which carbon would store 50,000 years in the future (i.e. never readable).
 */
const MAX_TIMESTAMP = 100_000_000_000;

// Whitespace splits a plaintext line into the wrong fields; control characters have no place in a path.
const BAD_PATH_CHAR = /[\s\p{Cc}]/u;

/**
 * Why a point cannot be sent, or undefined when it can. Checked once when a point enters the
 * sender, so the encoders below can assume valid input.
 */
export function pointProblem(point: Point): string | undefined {
  if (typeof point.path !== 'string' || point.path.length === 0) return 'empty path';
  if (BAD_PATH_CHAR.test(point.path)) return 'path contains whitespace or a control character';
  if (typeof point.value !== 'number' || !Number.isFinite(point.value)) return `value is ${String(point.value)}`;
  if (!Number.isSafeInteger(point.timestamp) || point.timestamp < 0) {
    return `timestamp ${String(point.timestamp)} is not whole seconds`;
  }
  if (point.timestamp >= MAX_TIMESTAMP) return `timestamp ${point.timestamp} looks like milliseconds`;
  // Cheap bound first (a UTF-16 unit is at most 3 UTF-8 bytes; value and timestamp with their
  // separators take at most 39), so the exact count is only paid for very long paths.
  if (point.path.length * 3 + 40 > MAX_LINE_BYTES && Buffer.byteLength(plaintextLine(point)) > MAX_LINE_BYTES) {
    return `line is longer than ${MAX_LINE_BYTES} bytes`;
  }
  return undefined;
}

/** `path value timestamp\n`. */
export function plaintextLine(point: Point): string {
  // `-0` would print as "0" anyway; String() gives the shortest text that reads back exactly.
  return point.path + ' ' + String(point.value) + ' ' + String(point.timestamp) + '\n';
}

/** Plaintext protocol bytes for valid points (see `pointProblem`). */
export function encodePlaintext(points: readonly Point[]): string {
  let out = '';
  for (const p of points) out += p.path + ' ' + String(p.value) + ' ' + String(p.timestamp) + '\n';
  return out;
}

// Pickle protocol 2 opcodes (CPython Lib/pickle.py). Hand-built so no pickle library is needed;
// the output holds only lists, tuples, str, int and float, which carbon's safe unpickler accepts.
const PROTO = 0x80;
const EMPTY_LIST = 0x5d; // ]
const MARK = 0x28; // (
const APPENDS = 0x65; // e
const STOP = 0x2e; // .
const BINUNICODE = 0x58; // X: uint32 LE length + UTF-8
const BININT = 0x4a; // J: int32 LE
const LONG1 = 0x8a; // 1-byte length + little-endian two's complement
const BINFLOAT = 0x47; // G: float64 BE
const TUPLE2 = 0x86;

const FRAME_OVERHEAD = 2 + 1 + 1 + 1 + 1; // PROTO 2, EMPTY_LIST, MARK ... APPENDS, STOP

function timestampBytes(ts: number): number {
  return ts <= 0x7fffffff ? 5 : 10;
}

/** Bytes one point takes inside a pickle payload. */
function pickledSize(pathBytes: number, ts: number): number {
  return 1 + 4 + pathBytes + timestampBytes(ts) + 9 + 1 + 1;
}

/**
 * Pickle frames (4-byte big-endian length + protocol-2 pickle of `[(path, (timestamp, value)), ...]`)
 * for valid points, split so that each payload is at most `maxPayloadBytes`. A point that alone
 * exceeds the limit is left out and counted in `skipped`.
 */
export function encodePickleFrames(
  points: readonly Point[],
  maxPayloadBytes: number = MAX_PICKLE_PAYLOAD_BYTES,
): { frames: Buffer[]; skipped: number } {
  const frames: Buffer[] = [];
  let skipped = 0;
  let start = 0;
  const sizes = points.map((p) => pickledSize(Buffer.byteLength(p.path), p.timestamp));
  while (start < points.length) {
    let end = start;
    let payload = FRAME_OVERHEAD;
    while (end < points.length && payload + (sizes[end] as number) <= maxPayloadBytes) {
      payload += sizes[end] as number;
      end++;
    }
    if (end === start) {
      // This single point does not fit in any frame.
      skipped++;
      start++;
      continue;
    }
    frames.push(writeFrame(points, start, end, payload));
    start = end;
  }
  return { frames, skipped };
}

function writeFrame(points: readonly Point[], start: number, end: number, payload: number): Buffer {
  const buf = Buffer.allocUnsafe(4 + payload);
  buf.writeUInt32BE(payload, 0);
  let o = 4;
  buf[o++] = PROTO;
  buf[o++] = 2;
  buf[o++] = EMPTY_LIST;
  buf[o++] = MARK;
  for (let i = start; i < end; i++) {
    const p = points[i] as Point;
    buf[o++] = BINUNICODE;
    const len = buf.write(p.path, o + 4, 'utf8');
    buf.writeUInt32LE(len, o);
    o += 4 + len;
    if (p.timestamp <= 0x7fffffff) {
      buf[o++] = BININT;
      buf.writeInt32LE(p.timestamp, o);
      o += 4;
    } else {
      buf[o++] = LONG1;
      buf[o++] = 8;
      buf.writeBigInt64LE(BigInt(p.timestamp), o);
      o += 8;
    }
    buf[o++] = BINFLOAT;
    buf.writeDoubleBE(p.value, o);
    o += 8;
    buf[o++] = TUPLE2;
    buf[o++] = TUPLE2;
  }
  buf[o++] = APPENDS;
  buf[o++] = STOP;
  return buf;
}
