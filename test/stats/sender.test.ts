/**
 * CarbonSender against an in-process TCP receiver on 127.0.0.1 that can be stopped, restarted on
 * the same port, and made to stop reading. Real timers with short backoffs.
 */
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { setImmediate as nextTick } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { Point } from '../../src/stats/point.ts';
import { CarbonSender, type CarbonSenderOptions, type SenderEvent } from '../../src/stats/sender.ts';

/** Reads lines like carbon does: a line counts once its `\n` arrived; a partial one dies with its connection. */
class Receiver {
  lines: string[] = [];
  raw: Buffer[] = [];
  port = 0;
  accepted = 0;
  #server: net.Server | undefined;
  #sockets = new Set<net.Socket>();
  #paused = false;
  #closeOnAccept = false;

  async listen(port = this.port): Promise<void> {
    const server = net.createServer((socket) => {
      this.accepted++;
      if (this.#closeOnAccept) {
        socket.destroy();
        return;
      }
      this.#sockets.add(socket);
      let partial = '';
      socket.on('data', (chunk: Buffer) => {
        this.raw.push(chunk);
        const text = partial + chunk.toString('utf8');
        const parts = text.split('\n');
        partial = parts.pop() ?? '';
        for (const line of parts) this.lines.push(line);
      });
      socket.on('error', () => {});
      socket.on('close', () => this.#sockets.delete(socket));
      if (this.#paused) socket.pause();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: '127.0.0.1', port }, () => resolve());
    });
    this.#server = server;
    this.port = (server.address() as net.AddressInfo).port;
  }

  /** Like carbon-cache being killed: open connections are cut, nothing listens any more. */
  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const s of this.#sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  pause(): void {
    this.#paused = true;
    for (const s of this.#sockets) s.pause();
  }

  resume(): void {
    this.#paused = false;
    for (const s of this.#sockets) s.resume();
  }

  closeEveryConnection(): void {
    this.#closeOnAccept = true;
  }

  get connections(): number {
    return this.#sockets.size;
  }
}

const receivers: Receiver[] = [];
const senders: CarbonSender[] = [];

afterEach(async () => {
  await Promise.all(senders.splice(0).map((s) => s.close(200)));
  await Promise.all(receivers.splice(0).map((r) => r.stop()));
});

async function receiver(): Promise<Receiver> {
  const r = new Receiver();
  receivers.push(r);
  await r.listen(0);
  return r;
}

/** A port nothing listens on (taken and released at once). */
async function deadPort(): Promise<number> {
  const r = new Receiver();
  await r.listen(0);
  await r.stop();
  return r.port;
}

function sender(options: Partial<CarbonSenderOptions> & { port: number }, events: SenderEvent[] = []): CarbonSender {
  const s = new CarbonSender({
    host: '127.0.0.1',
    backoff: { initialMs: 20, maxMs: 200, jitter: 0 },
    onEvent: (e) => events.push(e),
    ...options,
  });
  senders.push(s);
  return s;
}

function points(tag: string, from: number, to: number, pad = 0): Point[] {
  const out: Point[] = [];
  const filler = pad > 0 ? `.${'x'.repeat(pad)}` : '';
  for (let i = from; i < to; i++) out.push({ path: `t.${tag}${filler}.p${i}`, value: i, timestamp: 1_700_000_000 });
  return out;
}

function line(p: Point): string {
  return `${p.path} ${p.value} ${p.timestamp}`;
}

async function until(what: string, condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('CarbonSender', () => {
  it('delivers every point as a terminated plaintext line, in order, on one connection', async () => {
    const r = await receiver();
    const s = sender({ port: r.port, batchSize: 100 });
    const sent = points('a', 0, 1_000);
    s.send(sent.slice(0, 500));
    s.send(sent.slice(500));
    expect(await s.flush(5_000)).toBe(true);
    await until('all lines', () => r.lines.length === 1_000);
    expect(r.lines).toEqual(sent.map(line));
    expect(r.accepted).toBe(1);
    expect(s.counters()).toMatchObject({
      sent: 1_000,
      dropped: 0,
      rejected: 0,
      queued: 0,
      inFlight: 0,
      connected: true,
    });
  });

  it('refuses NaN, Infinity and ms timestamps, counts them, and sends the rest', async () => {
    const r = await receiver();
    const events: SenderEvent[] = [];
    const s = sender({ port: r.port }, events);
    s.send([
      { path: 'ok.a', value: 1, timestamp: 1_700_000_000 },
      { path: 'bad.nan', value: Number.NaN, timestamp: 1_700_000_000 },
      { path: 'bad.inf', value: Number.NEGATIVE_INFINITY, timestamp: 1_700_000_000 },
      { path: 'bad.ms', value: 1, timestamp: 1_700_000_000_000 },
      { path: 'ok.b', value: 2, timestamp: 1_700_000_000 },
    ]);
    expect(await s.flush(5_000)).toBe(true);
    await until('2 lines', () => r.lines.length === 2);
    expect(r.lines).toEqual(['ok.a 1 1700000000', 'ok.b 2 1700000000']);
    expect(s.counters()).toMatchObject({ sent: 2, rejected: 3, dropped: 0 });
    expect(events).toContainEqual({
      type: 'dropped',
      count: 3,
      reason: 'invalid',
      detail: 'value is NaN ("bad.nan")',
    });
  });

  it('pickle protocol: length-prefixed frames python can read back', async () => {
    const r = await receiver();
    const s = sender({ port: r.port, protocol: 'pickle', batchSize: 300 });
    const sent = points('k', 0, 1_000);
    s.send(sent);
    expect(await s.flush(5_000)).toBe(true);
    const total = () => r.raw.reduce((n, b) => n + b.length, 0);
    await until('bytes', () => total() > 0 && s.counters().sent === 1_000);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const script =
      'import sys,pickle,json\nd=sys.stdin.buffer.read();o=0;out=[]\n' +
      "while o<len(d):\n n=int.from_bytes(d[o:o+4],'big');out+=pickle.loads(d[o+4:o+4+n]);o+=4+n\n" +
      'print(json.dumps(out))';
    const py = spawnSync('python3', ['-c', script], { input: Buffer.concat(r.raw), encoding: 'utf8', timeout: 20_000 });
    expect(py.status, py.stderr).toBe(0);
    expect(JSON.parse(py.stdout)).toEqual(sent.map((p) => [p.path, [p.timestamp, p.value]]));
  });

  it('receiver restarted mid-stream: reconnects, and points sent after the restart arrive', async () => {
    const r = await receiver();
    const events: SenderEvent[] = [];
    const s = sender({ port: r.port, batchSize: 500, capacity: 50_000 }, events);

    // Phase A: a stream in progress when the receiver dies.
    let i = 0;
    while (r.lines.length < 5_000) {
      s.send(points('a', i, i + 500));
      i += 500;
      await nextTick();
      if (i > 200_000) throw new Error('receiver never got 5000 lines');
    }
    await r.stop();
    await until('the sender to notice', () => !s.counters().connected);

    // Phase B: sent while nobody listens; held in the buffer.
    s.send(points('b', 0, 2_000));
    expect(s.counters().queued).toBeGreaterThanOrEqual(2_000);

    await r.listen();
    await until('reconnect', () => s.counters().connected);
    // Phase C: after the restart.
    s.send(points('c', 0, 2_000));
    expect(await s.flush(5_000)).toBe(true);
    await until('phase C', () => r.lines.filter((l) => l.startsWith('t.c.')).length === 2_000);

    const received = new Set(r.lines);
    for (const p of points('b', 0, 2_000)) expect(received.has(line(p))).toBe(true);
    for (const p of points('c', 0, 2_000)) expect(received.has(line(p))).toBe(true);
    // Whatever arrived is a whole line that was sent: no truncated or merged line.
    const valid = new Set([...points('a', 0, i), ...points('b', 0, 2_000), ...points('c', 0, 2_000)].map(line));
    expect(r.lines.filter((l) => !valid.has(l))).toEqual([]);
    expect(s.counters().reconnects).toBe(1);
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(['connected', 'disconnected']));
    expect(events.filter((e) => e.type === 'connected')).toHaveLength(2);
  });

  it('slow receiver: backpressure keeps the buffer and the socket bounded, the oldest are dropped, then it catches up', async () => {
    const r = await receiver();
    r.pause();
    const events: SenderEvent[] = [];
    const capacity = 20_000;
    const batchSize = 1_000;
    const s = sender({ port: r.port, capacity, batchSize }, events);
    await until('connect', () => {
      s.start();
      return s.counters().connected;
    });

    // ~120-byte lines: 250k of them (30 MB) is far more than the loopback socket buffers hold.
    const total = 250_000;
    let maxQueued = 0;
    let maxSocketBytes = 0;
    for (let i = 0; i < total; i += 5_000) {
      s.send(points('s', i, i + 5_000, 80));
      await nextTick();
      const c = s.counters();
      maxQueued = Math.max(maxQueued, c.queued);
      maxSocketBytes = Math.max(maxSocketBytes, c.socketBufferedBytes);
    }
    const stalled = s.counters();
    expect(stalled.dropped).toBeGreaterThan(0);
    expect(maxQueued).toBeLessThanOrEqual(capacity);
    // Node never holds more than the batch it was writing when the socket said "full" (plus the
    // stream's own high-water mark), however many points were sent.
    const lineBytes = line(points('s', total - 1, total, 80)[0] as Point).length + 1;
    expect(maxSocketBytes).toBeLessThanOrEqual(batchSize * lineBytes + 64 * 1024);
    expect(events).toContainEqual(expect.objectContaining({ type: 'dropped', reason: 'buffer-full' }));

    r.resume();
    expect(await s.flush(10_000)).toBe(true);
    const c = s.counters();
    expect(c.sent + c.dropped).toBe(total);
    await until('all sent lines', () => r.lines.length === c.sent, 10_000);
    // The newest point survived; what arrived is in order (only older points were dropped).
    expect(r.lines.at(-1)).toBe(line(points('s', total - 1, total, 80)[0] as Point));
    const indices = r.lines.map((l) => Number(/\.p(\d+) /.exec(l)?.[1]));
    expect(indices.every((n, k) => k === 0 || n > (indices[k - 1] as number))).toBe(true);
  });

  it('receiver gone for a while: buffer bounded to capacity, drops counted, backoff capped, resumes when back', async () => {
    const port = await deadPort();
    const events: SenderEvent[] = [];
    const s = sender({ port, capacity: 8_000 }, events);
    for (let round = 0; round < 3; round++) {
      s.send(points('g', round * 5_000, (round + 1) * 5_000));
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
    await until('several failed attempts', () => events.filter((e) => e.type === 'connect-failed').length >= 6);
    expect(s.counters()).toMatchObject({ queued: 8_000, dropped: 7_000, sent: 0, connected: false });
    const delays = events.flatMap((e) => (e.type === 'connect-failed' ? [e.retryInMs] : []));
    expect(delays.slice(0, 6)).toEqual([20, 40, 80, 160, 200, 200]);
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'connect-failed', reason: expect.stringMatching(/ECONNREFUSED/) }),
    );

    const r = new Receiver();
    receivers.push(r);
    await r.listen(port);
    expect(await s.flush(5_000)).toBe(true);
    await until('8000 lines', () => r.lines.length === 8_000);
    // The 8000 newest points, in order.
    expect(r.lines).toEqual(points('g', 7_000, 15_000).map(line));
    expect(s.counters()).toMatchObject({ sent: 8_000, dropped: 7_000, queued: 0, connected: true });
  });

  it('a receiver that closes every connection at once does not get a tight reconnect loop', async () => {
    const r = await receiver();
    r.closeEveryConnection();
    const events: SenderEvent[] = [];
    const s = sender(
      { port: r.port, backoff: { initialMs: 10, maxMs: 1_000, jitter: 0 }, stableAfterMs: 1_000 },
      events,
    );
    s.send(points('z', 0, 10));
    await new Promise((resolve) => setTimeout(resolve, 400));
    const delays = events.flatMap((e) => (e.type === 'disconnected' ? [e.retryInMs] : []));
    expect(delays.length).toBeGreaterThanOrEqual(3);
    // Growing, never reset to the first step by the short-lived connections.
    expect(delays.slice(0, 4)).toEqual([10, 20, 40, 80].slice(0, Math.min(4, delays.length)));
    expect(r.accepted).toBeLessThanOrEqual(7);
  });

  it('jitter comes from the injected random source', async () => {
    const port = await deadPort();
    const events: SenderEvent[] = [];
    const s = sender({ port, backoff: { initialMs: 40, maxMs: 1_000, jitter: 0.5 }, random: () => 0.5 }, events);
    s.start();
    await until('3 attempts', () => events.length >= 3);
    expect(events.slice(0, 3).map((e) => (e.type === 'connect-failed' ? e.retryInMs : -1))).toEqual([30, 60, 120]);
  });

  it('close() delivers what was written, then drops and counts what is still buffered', async () => {
    const r = await receiver();
    const s = sender({ port: r.port });
    s.send(points('e', 0, 100));
    expect(await s.flush(5_000)).toBe(true);
    await s.close();
    await until('100 lines', () => r.lines.length === 100);
    await until('the receiver to see the end', () => r.connections === 0);

    const events: SenderEvent[] = [];
    const down = sender({ port: await deadPort() }, events);
    down.send(points('f', 0, 50));
    expect(await down.flush(100)).toBe(false);
    await down.close();
    // After close a send is lost at once and counted; there is nothing left to flush.
    down.send(points('f', 50, 60));
    expect(await down.flush(100)).toBe(true);
    expect(down.counters()).toMatchObject({ sent: 0, dropped: 60, queued: 0 });
    expect(events.filter((e) => e.type === 'dropped').map((e) => (e.type === 'dropped' ? e.count : 0))).toEqual([
      50, 10,
    ]);
  });
});
