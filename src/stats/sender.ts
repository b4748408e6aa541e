/**
 * The Carbon connection: one long-lived TCP connection, batched writes that wait for 'drain',
 * a bounded buffer that drops the oldest points, and reconnection with capped exponential backoff.
 *
 * Delivery is at most once per connection, best effort across reconnects:
 * - A point counts as `sent` when its batch was handed to the kernel (the write callback fired
 *   without error). If Carbon goes away right after, whatever sat in the kernel's send buffer or
 *   in Carbon's receive buffer is lost; TCP gives no way to know. That window is bounded by the
 *   socket buffers, a few MB at most.
 * - Batches still inside Node (write callback not yet fired) when the connection drops are put
 *   back at the front of the buffer and sent again after reconnecting. A batch the kernel had
 *   partly taken may so arrive twice; Carbon keeps the last value per slot, and the value is the
 *   same, so a repeat is harmless.
 * - carbon-cache discards an incomplete last line when a connection closes, so a batch cut in
 *   the middle never stores a truncated value.
 */
import net from 'node:net';
import { encodePickleFrames, encodePlaintext, MAX_PICKLE_PAYLOAD_BYTES, type Point, pointProblem } from './point.ts';
import { RingBuffer } from './ring-buffer.ts';

export type CarbonProtocol = 'plaintext' | 'pickle';

export type SenderEvent =
  | { type: 'connected'; address: string }
  /** An established connection ended; the next attempt is in `retryInMs`. */
  | { type: 'disconnected'; reason: string; retryInMs: number }
  /** A connection attempt failed (refused, timed out, …). */
  | { type: 'connect-failed'; reason: string; retryInMs: number }
  /**
   * Points lost: `buffer-full` (the oldest were overwritten while Carbon was slow or away),
   * `invalid` (NaN / Infinity, bad path, ms timestamp, line too long; `detail` says why for the
   * first one), `closed` (still buffered when the sender was closed).
   */
  | { type: 'dropped'; count: number; reason: 'buffer-full' | 'invalid' | 'closed'; detail?: string };

export interface SenderCounters {
  /** Points handed to the kernel on a Carbon connection. */
  sent: number;
  /** Points lost for lack of room or because the sender closed with them buffered. */
  dropped: number;
  /** Points refused by `send()` because Carbon would mangle or silently drop them. */
  rejected: number;
  /** Successful connections after the first one. */
  reconnects: number;
  connected: boolean;
  /** Points waiting in the buffer. */
  queued: number;
  /** Points written to the socket whose write has not completed yet. */
  inFlight: number;
  /** Bytes Node holds for the socket (`writableLength`): bounded by one batch when Carbon is slow. */
  socketBufferedBytes: number;
}

export interface CarbonSenderOptions {
  host: string;
  port: number;
  /** Default `plaintext` (carbon's port 2003); `pickle` for port 2004. */
  protocol?: CarbonProtocol;
  /** Most points held while Carbon is slow or away; the oldest go first. Default 100,000. */
  capacity?: number;
  /** Points per socket write. Default 5,000 (about 300 KB of plaintext). */
  batchSize?: number;
  /** Reconnect delay: `initialMs` doubled per failed attempt up to `maxMs`; defaults 100 ms and 30 s. */
  backoff?: {
    initialMs?: number;
    maxMs?: number;
    /** Fraction of the delay taken off at random, so many daemons do not reconnect in step. Default 0.2. */
    jitter?: number;
  };
  /** Source of randomness for the jitter; inject a constant for deterministic tests. */
  random?: () => number;
  /** Clock (ms) used to tell a stable connection from one Carbon closes right away. */
  now?: () => number;
  /** A connection that lasted at least this long resets the backoff. Default 1 s. */
  stableAfterMs?: number;
  /** Give up on a connection attempt after this long. Default 5 s. */
  connectTimeoutMs?: number;
  /** Largest pickle payload; carbon closes the connection above 1 MiB. */
  maxFramePayloadBytes?: number;
  onEvent?: (event: SenderEvent) => void;
}

interface Batch {
  points: Point[];
  /** Points of the batch actually encoded (a pickle frame can leave an oversized one out). */
  count: number;
  /** The write completed (sent) or the batch was re-queued / given up; either way it is done. */
  settled: boolean;
}

interface FlushWaiter {
  resolve: (flushed: boolean) => void;
  timer: NodeJS.Timeout;
}

export class CarbonSender {
  readonly #host: string;
  readonly #port: number;
  readonly #protocol: CarbonProtocol;
  readonly #batchSize: number;
  readonly #initialMs: number;
  readonly #maxMs: number;
  readonly #jitter: number;
  readonly #random: () => number;
  readonly #now: () => number;
  readonly #stableAfterMs: number;
  readonly #connectTimeoutMs: number;
  readonly #maxFramePayloadBytes: number;
  readonly #onEvent: (event: SenderEvent) => void;

  readonly #buffer: RingBuffer<Point>;
  #inflight: Batch[] = [];
  #socket: net.Socket | undefined;
  #connected = false;
  #everConnected = false;
  #connectedAt = 0;
  #waitingDrain = false;
  #attempt = 0;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #pumpScheduled = false;
  #started = false;
  #closed = false;
  #flushWaiters = new Set<FlushWaiter>();

  #sent = 0;
  #dropped = 0;
  #rejected = 0;
  #reconnects = 0;

  constructor(options: CarbonSenderOptions) {
    this.#host = options.host;
    this.#port = options.port;
    this.#protocol = options.protocol ?? 'plaintext';
    this.#buffer = new RingBuffer<Point>(options.capacity ?? 100_000);
    this.#batchSize = Math.max(1, options.batchSize ?? 5_000);
    this.#initialMs = options.backoff?.initialMs ?? 100;
    this.#maxMs = Math.max(this.#initialMs, options.backoff?.maxMs ?? 30_000);
    this.#jitter = Math.min(1, Math.max(0, options.backoff?.jitter ?? 0.2));
    this.#random = options.random ?? Math.random;
    this.#now = options.now ?? Date.now;
    this.#stableAfterMs = options.stableAfterMs ?? 1_000;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 5_000;
    this.#maxFramePayloadBytes = options.maxFramePayloadBytes ?? MAX_PICKLE_PAYLOAD_BYTES;
    this.#onEvent = options.onEvent ?? (() => {});
  }

  counters(): SenderCounters {
    let inFlight = 0;
    for (const b of this.#inflight) if (!b.settled) inFlight += b.points.length;
    return {
      sent: this.#sent,
      dropped: this.#dropped,
      rejected: this.#rejected,
      reconnects: this.#reconnects,
      connected: this.#connected,
      queued: this.#buffer.size,
      inFlight,
      socketBufferedBytes: this.#socket?.writableLength ?? 0,
    };
  }

  /** Opens the connection (also done by the first `send`). */
  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    this.#connect();
  }

  /**
   * Queues points; never blocks and never throws. Invalid points are refused and counted; when
   * the buffer is full the oldest queued points are dropped and counted.
   */
  send(points: Iterable<Point>): void {
    let rejected = 0;
    let detail: string | undefined;
    let overwritten = 0;
    let closedDrops = 0;
    for (const p of points) {
      const problem = pointProblem(p);
      if (problem !== undefined) {
        rejected++;
        detail ??= `${problem} (${JSON.stringify(String(p.path).slice(0, 200))})`;
        continue;
      }
      if (this.#closed) {
        closedDrops++;
        continue;
      }
      if (this.#buffer.push(p)) overwritten++;
    }
    if (rejected > 0) {
      this.#rejected += rejected;
      this.#onEvent({ type: 'dropped', count: rejected, reason: 'invalid', ...(detail ? { detail } : {}) });
    }
    this.#drop(overwritten, 'buffer-full');
    this.#drop(closedDrops, 'closed');
    if (this.#closed) return;
    this.start();
    this.#schedulePump();
  }

  /**
   * Resolves true once every queued point was handed to the kernel, false if that did not happen
   * within `timeoutMs` (Carbon away or too slow). Meant for shutdown, before `close()`.
   */
  flush(timeoutMs: number): Promise<boolean> {
    if (this.#isDrained()) return Promise.resolve(true);
    if (this.#closed) return Promise.resolve(false);
    this.start();
    this.#schedulePump();
    return new Promise((resolve) => {
      const waiter: FlushWaiter = {
        resolve,
        timer: setTimeout(() => {
          this.#flushWaiters.delete(waiter);
          resolve(false);
        }, timeoutMs),
      };
      this.#flushWaiters.add(waiter);
    });
  }

  /**
   * Stops reconnecting, drops (and counts) what is still buffered, and closes the connection
   * gracefully: pending writes go out first, then Carbon sees the end of the stream and closes its
   * side, which tells us it has read everything. After `timeoutMs` the socket is destroyed.
   */
  close(timeoutMs = 2_000): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      clearTimeout(this.#reconnectTimer);
      this.#reconnectTimer = undefined;
      const left = this.#buffer.size;
      this.#buffer.clear();
      this.#drop(left, 'closed');
    }
    const socket = this.#socket;
    if (!socket || socket.destroyed) {
      this.#settleFlushWaiters();
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => socket.destroy(), timeoutMs);
      socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.end();
    });
  }

  #drop(count: number, reason: 'buffer-full' | 'closed'): void {
    if (count <= 0) return;
    this.#dropped += count;
    this.#onEvent({ type: 'dropped', count, reason });
  }

  #connect(): void {
    if (this.#closed) return;
    const socket = net.createConnection({ host: this.#host, port: this.#port });
    this.#socket = socket;
    let lastError: Error | undefined;
    const connectTimer = setTimeout(() => {
      socket.destroy(new Error(`no connection within ${this.#connectTimeoutMs} ms`));
    }, this.#connectTimeoutMs);

    socket.setNoDelay(true);
    socket.once('connect', () => {
      clearTimeout(connectTimer);
      socket.setKeepAlive(true, 30_000);
      this.#connected = true;
      this.#connectedAt = this.#now();
      if (this.#everConnected) this.#reconnects++;
      this.#everConnected = true;
      this.#onEvent({ type: 'connected', address: `${this.#host}:${this.#port}` });
      this.#pump();
    });
    // Carbon never writes; reading keeps the socket flowing so that its closing is noticed ('end').
    socket.on('data', () => {});
    socket.on('end', () => {
      lastError ??= new Error('carbon closed the connection');
    });
    socket.on('error', (error) => {
      lastError ??= error;
    });
    socket.on('close', () => {
      clearTimeout(connectTimer);
      this.#onClose(socket, lastError?.message ?? 'connection closed');
    });
  }

  #onClose(socket: net.Socket, reason: string): void {
    if (socket !== this.#socket) return;
    this.#socket = undefined;
    const wasConnected = this.#connected;
    this.#connected = false;
    this.#waitingDrain = false;

    const unsent: Point[] = [];
    for (const batch of this.#inflight) {
      if (batch.settled) continue;
      batch.settled = true;
      unsent.push(...batch.points);
    }
    this.#inflight = [];

    if (this.#closed) {
      this.#drop(unsent.length, 'closed');
      this.#settleFlushWaiters();
      return;
    }
    this.#drop(this.#buffer.unshiftMany(unsent), 'buffer-full');

    // A connection Carbon closes at once (e.g. it rejects what we send) must not reset the backoff,
    // or we would reconnect in a tight loop.
    if (wasConnected && this.#now() - this.#connectedAt >= this.#stableAfterMs) this.#attempt = 0;
    const delay = this.#backoffDelay(this.#attempt);
    this.#attempt++;
    this.#onEvent({ type: wasConnected ? 'disconnected' : 'connect-failed', reason, retryInMs: delay });
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      this.#connect();
    }, delay);
    // The reconnect loop alone must not keep a process alive; a pending flush() does.
    this.#reconnectTimer.unref();
  }

  #backoffDelay(attempt: number): number {
    const capped = Math.min(this.#maxMs, this.#initialMs * 2 ** Math.min(attempt, 30));
    return Math.round(capped * (1 - this.#jitter * this.#random()));
  }

  #schedulePump(): void {
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    // Coalesce the sends of one tick into full batches instead of one tiny write per send().
    setImmediate(() => {
      this.#pumpScheduled = false;
      this.#pump();
    });
  }

  #pump(): void {
    const socket = this.#socket;
    if (!socket || !this.#connected || this.#waitingDrain) return;
    while (this.#buffer.size > 0) {
      const points = this.#buffer.shiftMany(this.#batchSize);
      const { data, count } = this.#encode(points);
      if (data === undefined) continue;
      const batch: Batch = { points, count, settled: false };
      this.#inflight.push(batch);
      const ok = socket.write(data, (error) => this.#onWritten(batch, error));
      if (!ok) {
        // Backpressure: nothing more goes to the socket until it drained; meanwhile new points wait
        // in the bounded buffer, so memory stays bounded however slow Carbon is.
        this.#waitingDrain = true;
        socket.once('drain', () => {
          if (socket !== this.#socket) return;
          this.#waitingDrain = false;
          this.#pump();
        });
        return;
      }
    }
    this.#checkFlushed();
  }

  #encode(points: Point[]): { data: string | Buffer | undefined; count: number } {
    if (this.#protocol === 'plaintext') return { data: encodePlaintext(points), count: points.length };
    const { frames, skipped } = encodePickleFrames(points, this.#maxFramePayloadBytes);
    if (skipped > 0) {
      this.#rejected += skipped;
      this.#onEvent({ type: 'dropped', count: skipped, reason: 'invalid', detail: 'point larger than a pickle frame' });
    }
    const count = points.length - skipped;
    if (frames.length === 0) return { data: undefined, count };
    return { data: frames.length === 1 ? frames[0] : Buffer.concat(frames), count };
  }

  #onWritten(batch: Batch, error: Error | null | undefined): void {
    // On error the 'close' handler re-queues the batch; it must not be counted here.
    if (batch.settled || error) return;
    batch.settled = true;
    this.#sent += batch.count;
    while (this.#inflight.length > 0 && this.#inflight[0]?.settled) this.#inflight.shift();
    this.#checkFlushed();
  }

  #isDrained(): boolean {
    return this.#buffer.size === 0 && this.#inflight.every((b) => b.settled);
  }

  #checkFlushed(): void {
    if (this.#flushWaiters.size > 0 && this.#isDrained()) this.#settleFlushWaiters();
  }

  #settleFlushWaiters(): void {
    const drained = this.#isDrained();
    for (const waiter of this.#flushWaiters) {
      clearTimeout(waiter.timer);
      waiter.resolve(drained);
    }
    this.#flushWaiters.clear();
  }
}
