/**
 * One cluster, watched: its event stream (service, container, network and node events, read as
 * hints), reconnection with capped backoff when the stream ends or the engine restarts (with a
 * full resync afterwards), task following after service events, and full reads on demand.
 *
 * It keeps what health needs (connected / stale / down, last read, last error); the daemon keeps
 * the cluster's last good state, so a cluster that is down still renders as it last was.
 */
import type { CallOptions, DockerApi } from '../cluster/read.ts';
import {
  type ChangeBaseline,
  type Detected,
  detectChanges,
  type RawGetApi,
  readServiceLists,
  readSnapshotIfChanged,
  type ServiceLists,
  toClusterError,
} from '../cluster/read.ts';
import type { SnapshotDocument } from '../cluster/snapshot.ts';
import { Backoff, type BackoffOptions } from '../runtime/backoff.ts';
import type { Timers } from '../runtime/debounce.ts';
import type { Logger } from '../runtime/log.ts';
import { type ClusterEvent, isRelevant, LineSplitter, parseEvent, WATCHED_EVENT_TYPES } from './events.ts';
import { TaskFollower } from './task-follow.ts';

/** DockerApi plus the filtered task list the follower uses (dockerode passes `filters` through). */
export interface WatchApi extends DockerApi, Partial<RawGetApi> {
  listTasks(options?: CallOptions & { filters?: Record<string, string[]> }): Promise<unknown>;
}

/** What connecting needs: resolved lazily, so a cluster whose context is missing at start retries. */
export interface ClusterConnection {
  api: WatchApi;
  /** Safe to log. */
  display: string;
  timeoutMs: number;
}

export type ClusterStatus = 'connected' | 'stale' | 'down';

/** Why the daemon is asked to re-list a cluster. */
export type PokeReason = 'start' | 'event' | 'tasks' | 'resync' | 'reconcile' | 'config';

export interface ClusterHealth {
  cluster: string;
  state: ClusterStatus;
  /** Time of the last successful read (ms since the epoch). */
  lastReadMs?: number;
  error?: string;
  streamUp: boolean;
}

export interface ClusterWatcherOptions {
  cluster: string;
  connect: () => Promise<ClusterConnection>;
  timers: Timers;
  now: () => number;
  log: Logger;
  onPoke: (cluster: string, reason: PokeReason) => void;
  onEvent?: (cluster: string, event: ClusterEvent) => void;
  /**
   * An event (or the task follower) about one service: only that service needs reading again.
   * `known`: it did change (the follower saw its tasks move); otherwise an event hints it may
   * have. Without it, such events poke a full re-list as the others do.
   */
  onPokeService?: (cluster: string, serviceId: string, known?: boolean) => void;
  backoff?: BackoffOptions;
  /** A stream that stayed up this long resets the backoff when it drops. */
  stableStreamMs?: number;
  follow?: { intervalMs?: number; settleMs?: number; maxMs?: number; maxFollowed?: number };
}

export class ClusterWatcher {
  readonly cluster: string;
  readonly #o: ClusterWatcherOptions;
  readonly #backoff: Backoff;
  readonly #follower: TaskFollower;
  #connection: ClusterConnection | undefined;
  #connecting: Promise<ClusterConnection> | undefined;
  #stream: NodeJS.ReadableStream | undefined;
  #abort: AbortController | undefined;
  #streamUp = false;
  #streamSince = 0;
  #everSubscribed = false;
  #retryTimer: unknown;
  #stopped = false;
  #lastReadMs: number | undefined;
  #lastReadOk = false;
  #error: string | undefined;
  /** Digest of the last successful read's raw lists (readIfChanged). */
  #digest: string | undefined;
  /** What the next reconcile compares the lists with (detect). */
  #baseline: ChangeBaseline | undefined;
  /** Events seen, for tests and logs. */
  events = 0;

  constructor(options: ClusterWatcherOptions) {
    this.cluster = options.cluster;
    this.#o = options;
    this.#backoff = new Backoff(options.backoff);
    this.#follower = new TaskFollower({
      ...options.follow,
      timers: options.timers,
      now: options.now,
      list: async (serviceId) => {
        const { api, timeoutMs } = await this.#connect();
        return api.listTasks({ filters: { service: [serviceId] }, abortSignal: AbortSignal.timeout(timeoutMs) });
      },
      onChange: (serviceId) =>
        this.#o.onPokeService
          ? this.#o.onPokeService(this.cluster, serviceId, true)
          : this.#o.onPoke(this.cluster, 'tasks'),
    });
  }

  /** Subscribes to events. Reads happen when the daemon asks (`read`). */
  start(): void {
    void this.#subscribe();
  }

  health(): ClusterHealth {
    const state: ClusterStatus =
      this.#lastReadMs === undefined ? 'down' : this.#lastReadOk && this.#streamUp ? 'connected' : 'stale';
    return {
      cluster: this.cluster,
      state,
      streamUp: this.#streamUp,
      ...(this.#lastReadMs === undefined ? {} : { lastReadMs: this.#lastReadMs }),
      ...(this.#error === undefined ? {} : { error: this.#error }),
    };
  }

  get followedServices(): number {
    return this.#follower.following;
  }

  /** The engine's API, for `docker-signal` reloads. */
  async api(): Promise<WatchApi> {
    return (await this.#connect()).api;
  }

  /** A full read of the cluster (constant number of calls). Throws ClusterUnavailableError. */
  async read(signal?: AbortSignal): Promise<SnapshotDocument> {
    this.#digest = undefined;
    return (await this.readIfChanged(signal)) as SnapshotDocument;
  }

  /**
   * A full read that parses nothing when the lists' raw bodies are byte for byte those of the
   * last read (issue 12: an idle reconcile of a large cluster costs the transfer and a hash):
   * undefined then. Call read() instead when the caller no longer holds the last read's state.
   */
  async readIfChanged(signal?: AbortSignal): Promise<SnapshotDocument | undefined> {
    let connection: ClusterConnection;
    try {
      connection = await this.#connect();
    } catch (error) {
      this.#readFailed(error);
      throw error;
    }
    try {
      const { digest, doc, baseline } = await readSnapshotIfChanged(
        connection.api,
        {
          cluster: this.cluster,
          timeoutMs: connection.timeoutMs,
          endpointDisplay: connection.display,
          ...(signal ? { signal } : {}),
        },
        this.#digest,
      );
      this.#digest = digest;
      if (doc) this.#baseline = baseline;
      this.#lastReadMs = this.#o.now();
      this.#lastReadOk = true;
      if (this.#streamUp) this.#error = undefined;
      return doc;
    } catch (error) {
      // Whatever the next read answers, it is news.
      this.#digest = undefined;
      this.#baseline = undefined;
      if (signal?.aborted) throw error;
      this.#readFailed(error);
      // A read that fails while the stream looks up means the stream may be half-open (an engine
      // that vanished without closing): drop it, so the reconnect and resync happen.
      if (this.#streamUp) this.#dropStream('read failed');
      throw error;
    }
  }

  /** Whether the connection gives raw bodies, so a reconcile can find what changed without parsing (detect). */
  async canDetect(): Promise<boolean> {
    return typeof (await this.#connect()).api.getRaw === 'function';
  }

  /**
   * The reconcile's look at the cluster (issue 12): which services changed since the last look
   * or full read, without parsing the lists (see detectChanges). Throws ClusterUnavailableError.
   */
  async detect(signal?: AbortSignal): Promise<Detected> {
    const connection = await this.#connect();
    const api = connection.api;
    if (typeof api.getRaw !== 'function') return { kind: 'full' };
    try {
      const { detected, baseline } = await detectChanges(
        api as WatchApi & RawGetApi,
        {
          cluster: this.cluster,
          timeoutMs: connection.timeoutMs,
          endpointDisplay: connection.display,
          ...(signal ? { signal } : {}),
        },
        this.#baseline,
      );
      this.#baseline = baseline;
      return detected;
    } catch (error) {
      this.#baseline = undefined;
      throw error;
    }
  }

  /**
   * The daemon's state for this cluster moved on from the last full read (a service was read
   * again on its own): the next readIfChanged must not answer "unchanged" from that read's digest.
   */
  forgetDigest(): void {
    this.#digest = undefined;
  }

  /** One service's entries (after an event about it). Throws ClusterUnavailableError. */
  async readService(serviceId: string, signal?: AbortSignal): Promise<ServiceLists> {
    const connection = await this.#connect();
    return readServiceLists(
      connection.api,
      {
        cluster: this.cluster,
        timeoutMs: connection.timeoutMs,
        endpointDisplay: connection.display,
        ...(signal ? { signal } : {}),
      },
      serviceId,
    );
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#follower.stop();
    if (this.#retryTimer !== undefined) this.#o.timers.clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#abort?.abort();
    const s = this.#stream as (NodeJS.ReadableStream & { destroy?: () => void }) | undefined;
    s?.destroy?.();
    this.#stream = undefined;
    this.#streamUp = false;
  }

  #readFailed(error: unknown): void {
    this.#lastReadOk = false;
    this.#error = error instanceof Error ? error.message : String(error);
  }

  async #connect(): Promise<ClusterConnection> {
    if (this.#connection) return this.#connection;
    this.#connecting ??= this.#o.connect().finally(() => {
      this.#connecting = undefined;
    });
    this.#connection = await this.#connecting;
    return this.#connection;
  }

  async #subscribe(): Promise<void> {
    if (this.#stopped) return;
    this.#retryTimer = undefined;
    const controller = new AbortController();
    this.#abort = controller;
    let stream: NodeJS.ReadableStream;
    let connection: ClusterConnection | undefined;
    try {
      connection = await this.#connect();
      stream = await connection.api.getEvents({
        filters: { type: [...WATCHED_EVENT_TYPES] },
        abortSignal: controller.signal,
      });
    } catch (error) {
      if (this.#stopped) return;
      const message = connection
        ? toClusterError(error, {
            cluster: this.cluster,
            endpointDisplay: connection.display,
            timeoutMs: connection.timeoutMs,
          }).message
        : error instanceof Error
          ? error.message
          : String(error);
      this.#retry(message, false);
      return;
    }
    if (this.#stopped) {
      (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
      return;
    }
    const reconnected = this.#everSubscribed;
    const attempts = this.#backoff.attempts;
    this.#everSubscribed = true;
    this.#stream = stream;
    this.#streamUp = true;
    this.#streamSince = this.#o.now();
    if (reconnected || attempts > 0) {
      this.#o.log.info('event stream reconnected; resyncing', { cluster: this.cluster, attempts });
    } else {
      this.#o.log.debug('event stream connected', { cluster: this.cluster, endpoint: connection.display });
    }
    // Whatever happened while the stream was away is only known from a full re-list.
    this.#o.onPoke(this.cluster, reconnected || attempts > 0 ? 'resync' : 'start');

    const splitter = new LineSplitter();
    let ended = false;
    const end = (why: string) => {
      if (ended) return;
      ended = true;
      if (this.#stream === stream) this.#stream = undefined;
      this.#streamUp = false;
      if (!this.#stopped) this.#retry(why, true);
    };
    stream.on('data', (chunk: Buffer | string) => {
      for (const line of splitter.push(chunk)) {
        const event = parseEvent(line);
        if (event) this.#handle(event);
      }
    });
    stream.on('end', () => end('the engine closed the event stream'));
    stream.on('close', () => end('the event stream closed'));
    stream.on('error', (error: Error) => end(`event stream error: ${error.message}`));
  }

  #handle(event: ClusterEvent): void {
    if (!isRelevant(event)) return;
    this.events++;
    this.#o.onEvent?.(this.cluster, event);
    if (event.type === 'service' && event.serviceId) {
      if (event.action === 'remove') this.#follower.unfollow(event.serviceId);
      else this.#follower.follow(event.serviceId);
    }
    // An event about one service (or one of its tasks' containers) needs only that service read
    // again; the others (networks, nodes, standalone containers) a full re-list.
    if (this.#o.onPokeService && event.serviceId && (event.type === 'service' || event.type === 'container'))
      this.#o.onPokeService(this.cluster, event.serviceId);
    else this.#o.onPoke(this.cluster, 'event');
  }

  #dropStream(why: string): void {
    const s = this.#stream as (NodeJS.ReadableStream & { destroy?: (e?: Error) => void }) | undefined;
    if (!s) return;
    s.destroy?.(new Error(why));
  }

  #retry(why: string, wasUp: boolean): void {
    if (this.#stopped || this.#retryTimer !== undefined) return;
    if (wasUp && this.#o.now() - this.#streamSince >= (this.#o.stableStreamMs ?? 10_000)) this.#backoff.reset();
    this.#error = why;
    const delay = this.#backoff.next();
    const fields = { cluster: this.cluster, retry_in_ms: delay, attempt: this.#backoff.attempts, error: why };
    // Losing a stream that was up is always worth a warning; the tenth failed retry in a row is not worth ten.
    if (wasUp || this.#backoff.attempts <= 1 || this.#backoff.attempts % 10 === 0) {
      this.#o.log.warn(wasUp ? 'event stream lost; reconnecting' : 'cannot subscribe to events; retrying', fields);
    } else {
      this.#o.log.debug('event stream retry', fields);
    }
    this.#retryTimer = this.#o.timers.setTimeout(() => void this.#subscribe(), delay);
  }
}
