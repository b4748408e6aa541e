/**
 * Reads a live Docker Engine into a snapshot document with a constant number of API calls,
 * whatever the cluster's size: GET /version and /info, then the lists in parallel. Never one
 * inspect per service or container (the lists carry everything the routes need).
 *
 * Every failure becomes one line naming the cluster, the endpoint and the reason, within a bound.
 */
import { createHash } from 'node:crypto';
import { formatDuration } from '../config/duration.ts';
import { ClusterError } from '../errors.ts';
import { ENTRY_OWNERS, type EntryTable, ListDiff, ListEntries } from './list-diff.ts';
import type { SnapshotDocument } from './snapshot.ts';
import { taskContainerHint } from './snapshot-map.ts';

export interface CallOptions {
  abortSignal?: AbortSignal;
}

export interface EventsOptions extends CallOptions {
  since?: number;
  until?: number;
  filters?: string | Record<string, string[]>;
}

/**
 * The part of the Docker Engine API interlock uses. dockerode satisfies it; tests and the watch
 * daemon can pass their own.
 */
export interface DockerApi {
  version(options?: CallOptions): Promise<unknown>;
  info(options?: CallOptions): Promise<unknown>;
  listServices(options?: CallOptions & { filters?: Record<string, string[]> }): Promise<unknown>;
  listTasks(options?: CallOptions & { filters?: Record<string, string[]> }): Promise<unknown>;
  listNetworks(options?: CallOptions): Promise<unknown>;
  listNodes(options?: CallOptions): Promise<unknown>;
  listContainers(options?: CallOptions & { all?: boolean; filters?: Record<string, string[]> }): Promise<unknown>;
  getEvents(options?: EventsOptions): Promise<NodeJS.ReadableStream>;
}

export interface ReadOptions {
  /** Cluster name, for the metadata and messages. */
  cluster: string;
  /** Overall bound on the read. */
  timeoutMs: number;
  /** ResolvedEndpoint.display: safe to print. */
  endpointDisplay: string;
  /** Lets a caller (e.g. the watch daemon shutting down) abandon the read. */
  signal?: AbortSignal;
}

export type ClusterFailureKind =
  | 'refused'
  | 'no-socket'
  | 'permission'
  | 'tls'
  | 'timeout'
  | 'ssh'
  | 'not-docker'
  | 'dns'
  | 'unreachable'
  | 'reset'
  | 'engine'
  | 'aborted'
  | 'other';

/** A cluster could not be reached or read; `failure` says why, for callers that react to it. */
export class ClusterUnavailableError extends ClusterError {
  override name = 'ClusterUnavailableError';
  readonly failure: ClusterFailureKind;
  readonly cluster: string;
  readonly endpoint: string;
  constructor(
    message: string,
    init: { failure: ClusterFailureKind; cluster: string; endpoint: string; cause: unknown },
  ) {
    super(message, { cause: init.cause });
    this.failure = init.failure;
    this.cluster = init.cluster;
    this.endpoint = init.endpoint;
  }
}

/** GET /version and /info, at once: the engine's versions, and its information (an object). */
async function engineOf(
  docker: DockerApi,
  call: { abortSignal: AbortSignal },
): Promise<{ engine: ReturnType<typeof engineVersion>; info: Record<string, unknown> }> {
  const [version, info] = await Promise.all([
    step('GET /version', docker.version(call)),
    step('GET /info', docker.info(call)),
  ]);
  const engine = engineVersion(version);
  if (!isObject(info)) throw new NotDocker('GET /info did not answer with engine information');
  return { engine, info };
}

/** Reads services, tasks, networks, nodes and containers (or networks and containers off Swarm). */
export async function readSnapshot(docker: DockerApi, options: ReadOptions): Promise<SnapshotDocument> {
  const takenAt = new Date().toISOString();
  const started = performance.now();
  return withDeadline(options, async (abortSignal) => {
    const call = { abortSignal };
    const { engine, info } = await engineOf(docker, call);
    const metadata = () => ({
      cluster: options.cluster,
      takenAt,
      durationMs: Math.round(performance.now() - started),
      apiVersion: engine.apiVersion,
      engineVersion: engine.version,
    });
    if (isSwarmManager(info)) {
      const [services, tasks, networks, nodes, containers] = await Promise.all([
        list('GET /services', docker.listServices(call)),
        // History (shut-down tasks) is never a backend: leave it on the manager.
        list('GET /tasks', docker.listTasks({ ...call, filters: { 'desired-state': ['running'] } })),
        list('GET /networks', docker.listNetworks(call)),
        list('GET /nodes', docker.listNodes(call)),
        list('GET /containers/json', docker.listContainers({ ...call, all: false })),
      ]);
      return { metadata: metadata(), services, tasks, networks, nodes, containers };
    }
    // A standalone engine (or a Swarm worker, which cannot list services): no services, tasks
    // or nodes keys, so a reader can tell it from a Swarm with no services.
    const [networks, containers] = await Promise.all([
      list('GET /networks', docker.listNetworks(call)),
      list('GET /containers/json', docker.listContainers({ ...call, all: false })),
    ]);
    return { metadata: metadata(), networks, containers };
  });
}

/**
 * The raw bodies of GET requests, before any JSON parse (the watch daemon's connection provides
 * it; dockerode alone parses every answer).
 */
export interface RawGetApi {
  /**
   * The body's SHA-256 (base64), hashed as it streams in; with `keep`, the body too. Without it
   * nothing of the body is held: an idle reconcile of 10,000 services (~80 MB of lists) must not
   * hold the lists to find that they did not change. `each` gets every chunk of the body, in
   * order, as it arrives: the daemon's reads take the body in from there (they never keep).
   */
  getRaw(
    path: string,
    query: Record<string, unknown>,
    options: CallOptions & { keep: boolean; each?: (chunk: Buffer) => void },
  ): Promise<{ digest: string; body?: Buffer }>;
}

/**
 * What the watch daemon's reconcile compares the next read with: the digest of all the lists,
 * each Swarm list's entry table (./list-diff.ts), and the digest of the networks and nodes.
 */
export interface ChangeBaseline {
  digest: string;
  tables: Record<TrackedList, EntryTable>;
  /** Digest of the lists that are not tracked per entry (networks, nodes): any change there re-reads all. */
  others: string;
}

type TrackedList = 'services' | 'tasks' | 'containers';
const TRACKED: readonly TrackedList[] = ['services', 'tasks', 'containers'];

/** The lists of a Swarm manager, or of a standalone engine. */
function listsOf(swarm: boolean): Array<[key: string, path: string, query: Record<string, unknown>]> {
  return swarm
    ? [
        ['services', '/services?', {}],
        // History (shut-down tasks) is never a backend: leave it on the manager.
        ['tasks', '/tasks?', { filters: { 'desired-state': ['running'] } }],
        ['networks', '/networks?', {}],
        ['nodes', '/nodes?', {}],
        ['containers', '/containers/json?', { all: false }],
      ]
    : [
        ['networks', '/networks?', {}],
        ['containers', '/containers/json?', { all: false }],
      ];
}

function digestOf(swarm: boolean, answers: ReadonlyArray<{ digest: string }>): string {
  return createHash('sha256')
    .update([swarm ? 'swarm' : 'engine', ...answers.map((a) => a.digest)].join('\0'))
    .digest('base64');
}

function othersOf(wanted: ReturnType<typeof listsOf>, answers: ReadonlyArray<{ digest: string }>): string {
  return wanted
    .map(([key], i) => (TRACKED.includes(key as TrackedList) ? '' : `${key}=${answers[i]?.digest}`))
    .join('\0');
}

/** The entry tables of a full read's lists, for the next reconcile. */
function baselineOf(
  swarm: boolean,
  wanted: ReturnType<typeof listsOf>,
  answers: ReadonlyArray<{ digest: string }>,
  lists: readonly ListEntries[],
): ChangeBaseline | undefined {
  if (!swarm) return undefined;
  const tables = {} as Record<TrackedList, EntryTable>;
  for (const [i, [key]] of wanted.entries()) {
    if (!TRACKED.includes(key as TrackedList)) continue;
    const table = lists[i]?.table(ENTRY_OWNERS[key as TrackedList]);
    // A standalone container (or an entry that cannot be read) changes what a full read says: no baseline.
    if (!table) return undefined;
    tables[key as TrackedList] = table;
  }
  return { digest: digestOf(swarm, answers), tables, others: othersOf(wanted, answers) };
}

/** What a reconcile found: nothing, the services to read again, or a full read needed. */
export type Detected = { kind: 'same' } | { kind: 'services'; ids: Set<string> } | { kind: 'full' };

/**
 * The watch daemon's reconcile (issue 12): compares the engine's lists with `baseline` without
 * parsing them. First the bodies' digest only (nothing held); when it differs, the lists again,
 * cut into entries and hashed as they stream in: the services whose entries changed are named,
 * and only they are read again. A full read is asked for when there is no baseline, when the
 * networks or nodes changed, when an entry belongs to no service (a standalone container), or
 * off Swarm. Answers the new baseline with it.
 */
export async function detectChanges(
  docker: DockerApi & RawGetApi,
  options: ReadOptions,
  baseline: ChangeBaseline | undefined,
): Promise<{ detected: Detected; baseline: ChangeBaseline | undefined }> {
  const getRaw = docker.getRaw.bind(docker);
  // Each step has the whole bound: at 10,000 services one fetch of the lists is ~80 MB.
  const first = await withDeadline(options, async (abortSignal, progress) => {
    const call = { abortSignal };
    const { info } = await engineOf(docker, call);
    const swarm = isSwarmManager(info);
    const wanted = listsOf(swarm);
    const answers = await Promise.all(
      wanted.map(([, path, query]) =>
        step(`GET ${path.slice(0, -1)}`, getRaw(path, query, { ...call, keep: false, each: progress })),
      ),
    );
    return { swarm, wanted, digest: digestOf(swarm, answers) };
  });
  const { swarm, wanted } = first;
  if (baseline !== undefined && first.digest === baseline.digest) return { detected: { kind: 'same' }, baseline };
  if (!swarm) return { detected: { kind: 'full' }, baseline: undefined };
  return withDeadline(options, async (abortSignal, progress) => {
    const call = { abortSignal };
    const diffs = wanted.map(([key]) =>
      TRACKED.includes(key as TrackedList)
        ? new ListDiff(baseline?.tables[key as TrackedList], ENTRY_OWNERS[key as TrackedList])
        : undefined,
    );
    const answers = await Promise.all(
      wanted.map(([, path, query], i) => {
        const diff = diffs[i];
        return step(
          `GET ${path.slice(0, -1)}`,
          getRaw(path, query, {
            ...call,
            keep: false,
            each: (c: Buffer) => {
              progress();
              diff?.push(c);
            },
          }),
        );
      }),
    );
    const tables = {} as Record<TrackedList, EntryTable>;
    const ids = new Set<string>();
    let unowned = false;
    for (const [i, [key]] of wanted.entries()) {
      const diff = diffs[i];
      if (!diff) continue;
      const changes = diff.end();
      tables[key as TrackedList] = changes.table;
      unowned ||= changes.unowned;
      for (const id of changes.owners) ids.add(id);
    }
    const others = othersOf(wanted, answers);
    const next: ChangeBaseline | undefined = unowned ? undefined : { digest: digestOf(swarm, answers), tables, others };
    if (baseline === undefined || unowned || others !== baseline.others)
      return { detected: { kind: 'full' }, baseline: next };
    return { detected: ids.size === 0 ? { kind: 'same' } : { kind: 'services', ids }, baseline: next };
  });
}

/** One service's entries of the lists a full read takes: what the daemon re-reads after an event about it. */
export interface ServiceLists {
  /** The service (none when it is gone). */
  services: unknown[];
  /** Its running tasks. */
  tasks: unknown[];
  /** Its tasks' running containers on the node read. */
  containers: unknown[];
}

/**
 * Reads one service, its running tasks and their containers (three calls, whatever the
 * cluster's size): the watch daemon's answer to an event about one service (issue 12).
 */
export async function readServiceLists(
  docker: DockerApi,
  options: ReadOptions,
  serviceId: string,
): Promise<ServiceLists> {
  return withDeadline(options, async (abortSignal) => {
    const call = { abortSignal };
    const [services, tasks, containers] = await Promise.all([
      // The id filter matches prefixes: keep the service itself.
      list('GET /services', docker.listServices({ ...call, filters: { id: [serviceId] } })),
      list(
        'GET /tasks',
        docker.listTasks({ ...call, filters: { service: [serviceId], 'desired-state': ['running'] } }),
      ),
      list(
        'GET /containers/json',
        docker.listContainers({
          ...call,
          all: false,
          filters: { label: [`com.docker.swarm.service.id=${serviceId}`] },
        }),
      ),
    ]);
    return {
      services: services.filter((s) => isObject(s) && s.ID === serviceId),
      tasks: tasks.filter((t) => isObject(t) && t.ServiceID === serviceId),
      containers: containers.filter((c) => {
        const labels = isObject(c) ? c.Labels : undefined;
        return isObject(labels) && labels['com.docker.swarm.service.id'] === serviceId;
      }),
    };
  });
}

/** What readSnapshotIfChanged answers: the digest of the raw lists, and the document when they changed. */
export interface ReadIfChanged {
  digest: string | undefined;
  doc?: SnapshotDocument;
  /** With a document read raw from a Swarm manager: what the next reconcile compares with (detectChanges). */
  baseline?: ChangeBaseline;
}

/**
 * readSnapshot for a caller that already holds the state of an earlier read with digest `last`
 * (the watch daemon's reconcile, issue 12): the lists are fetched raw and hashed, and parsed only
 * when their digest differs. Unchanged, the answer has no document: nothing was parsed. An API
 * without raw bodies (tests' fakes) reads and parses as readSnapshot, and always answers a document.
 */
export async function readSnapshotIfChanged(
  docker: DockerApi & Partial<RawGetApi>,
  options: ReadOptions,
  last: string | undefined,
): Promise<ReadIfChanged> {
  const getRaw = docker.getRaw?.bind(docker);
  if (!getRaw) return { digest: undefined, doc: await readSnapshot(docker, options) };
  const takenAt = new Date().toISOString();
  const started = performance.now();
  return withDeadline(options, async (abortSignal, progress) => {
    const call = { abortSignal };
    const { engine, info } = await engineOf(docker, call);
    const swarm = isSwarmManager(info);
    const wanted = listsOf(swarm);
    if (last !== undefined) {
      const answers = await Promise.all(
        wanted.map(([, path, query]) =>
          step(`GET ${path.slice(0, -1)}`, getRaw(path, query, { ...call, keep: false, each: progress })),
        ),
      );
      if (digestOf(swarm, answers) === last) return { digest: last };
    }
    // Changed (or nothing to compare with): fetch again, each body cut into its entries and each
    // entry parsed as it streams in (issue 12; ListEntries). Never one Buffer nor one text per
    // body: at 10,000 services a body is 20-35 MB, and freeing a malloc'd block that large makes
    // glibc keep up to twice its size of freed memory resident from then on (its mmap threshold
    // follows the largest block freed): ~65 MB of RSS.
    const lists = wanted.map(
      ([key]) =>
        new ListEntries(
          TRACKED.includes(key as TrackedList),
          swarm && key === 'containers' ? taskContainerHint : undefined,
        ),
    );
    const answers = await Promise.all(
      wanted.map(([, path, query], i) =>
        step(
          `GET ${path.slice(0, -1)}`,
          getRaw(path, query, {
            ...call,
            keep: false,
            each: (chunk: Buffer) => {
              progress();
              lists[i]?.push(chunk);
            },
          }),
        ),
      ),
    );
    const digest = digestOf(swarm, answers);
    const doc: Record<string, unknown> = {
      metadata: {
        cluster: options.cluster,
        takenAt,
        durationMs: Math.round(performance.now() - started),
        apiVersion: engine.apiVersion,
        engineVersion: engine.version,
      },
    };
    wanted.forEach(([key, path], i) => {
      const call = `GET ${path.slice(0, -1)}`;
      const list = lists[i] as ListEntries;
      const shape = list.end();
      if (shape === 'not-json') throw new CallFailed(call, new NotDocker(`${call} did not answer JSON`));
      if (shape === 'not-a-list') throw new CallFailed(call, new NotDocker(`${call} did not answer with a list`));
      doc[key] = list.entries;
    });
    const baseline = baselineOf(swarm, wanted, answers, lists);
    return { digest, doc: doc as unknown as SnapshotDocument, ...(baseline ? { baseline } : {}) };
  });
}

/** One GET /version: is the engine there and is it Docker. */
export async function pingCluster(
  docker: DockerApi,
  options: ReadOptions,
): Promise<{ apiVersion: string; engineVersion: string; durationMs: number }> {
  const started = performance.now();
  return withDeadline(options, async (abortSignal) => {
    const engine = engineVersion(await step('GET /version', docker.version({ abortSignal })));
    return {
      apiVersion: engine.apiVersion,
      engineVersion: engine.version,
      durationMs: Math.round(performance.now() - started),
    };
  });
}

/**
 * Turns any failure talking to an engine into a one-line ClusterUnavailableError naming the
 * cluster and endpoint. Exported for other callers of the API (events, stats).
 */
export function toClusterError(
  error: unknown,
  options: { cluster: string; endpointDisplay: string; timeoutMs: number },
): ClusterUnavailableError {
  if (error instanceof ClusterUnavailableError) return error;
  const ssh = options.endpointDisplay.startsWith('ssh://');
  const { failure, reason } = classify(error, { ssh, timeoutMs: options.timeoutMs });
  const cause = error instanceof CallFailed ? error.error : error;
  return new ClusterUnavailableError(oneLine(`cluster "${options.cluster}" (${options.endpointDisplay}): ${reason}`), {
    failure,
    cluster: options.cluster,
    endpoint: options.endpointDisplay,
    cause,
  });
}

// ---------- internals ----------

/** Our own overall deadline fired. */
class DeadlineExceeded extends Error {
  override name = 'DeadlineExceeded';
}

/** The endpoint answered, but not as a Docker Engine would. */
class NotDocker extends Error {
  override name = 'NotDocker';
}

/** Which call failed, kept for the message. */
class CallFailed extends Error {
  override name = 'CallFailed';
  readonly call: string;
  readonly error: unknown;
  constructor(call: string, error: unknown) {
    super(`${call} failed`);
    this.call = call;
    this.error = error;
  }
}

/**
 * Runs `run` within the read's bound. `progress` (given to `run`) restarts the bound: a raw list
 * that keeps arriving is not cut off for being large (10,000 services: ~80 MB), only an engine
 * that stops answering for the whole bound is.
 */
async function withDeadline<T>(
  options: ReadOptions,
  run: (signal: AbortSignal, progress: () => void) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  let giveUp: (error: Error) => void = () => {};
  // Racing a timer, not only aborting: a request that ignores the signal (e.g. an ssh handshake)
  // still cannot hold the caller past the bound.
  const deadline = new Promise<never>((_, reject) => {
    giveUp = (error) => {
      controller.abort(error);
      reject(error);
    };
  });
  // Bytes arrived since the timer was set: it is set again (no clock read, so fake timers work).
  let moved = false;
  const progress = () => {
    moved = true;
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const arm = () => {
    moved = false;
    timer = setTimeout(() => {
      if (moved) arm();
      else giveUp(new DeadlineExceeded(`no answer within ${formatDuration(options.timeoutMs)}`));
    }, options.timeoutMs);
  };
  arm();
  const outer = options.signal;
  const onOuterAbort = () => giveUp(new CallFailed('read', outer?.reason));
  if (outer?.aborted) onOuterAbort();
  else outer?.addEventListener('abort', onOuterAbort, { once: true });
  try {
    return await Promise.race([run(controller.signal, progress), deadline]);
  } catch (error) {
    // Stop the calls still in flight: nothing will read their answers.
    if (!controller.signal.aborted) controller.abort(error);
    const reason: unknown = controller.signal.reason;
    throw toClusterError(reason instanceof DeadlineExceeded ? reason : error, options);
  } finally {
    clearTimeout(timer);
    outer?.removeEventListener('abort', onOuterAbort);
  }
}

async function step<T>(call: string, promise: Promise<T>): Promise<T> {
  try {
    return await promise;
  } catch (error) {
    throw new CallFailed(call, error);
  }
}

async function list(call: string, promise: Promise<unknown>): Promise<unknown[]> {
  const value = await step(call, promise);
  if (!Array.isArray(value)) throw new CallFailed(call, new NotDocker(`${call} did not answer with a list`));
  return value;
}

function engineVersion(value: unknown): { apiVersion: string; version: string } {
  if (Buffer.isBuffer(value) || typeof value === 'string') {
    throw new NotDocker('not a Docker API: GET /version did not answer JSON');
  }
  if (!isObject(value) || typeof value.ApiVersion !== 'string' || typeof value.Version !== 'string') {
    throw new NotDocker('not a Docker API: GET /version has no ApiVersion');
  }
  return { apiVersion: value.ApiVersion, version: value.Version };
}

function isSwarmManager(info: Record<string, unknown>): boolean {
  const swarm = info.Swarm;
  return isObject(swarm) && swarm.LocalNodeState === 'active' && swarm.ControlAvailable === true;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !Buffer.isBuffer(value);
}

const TLS_VERIFY_FAILED: Record<string, string> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: 'certificate verify failed: the engine certificate is self-signed and not trusted',
  SELF_SIGNED_CERT_IN_CHAIN: 'certificate verify failed: self-signed certificate in the chain, not trusted',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'certificate verify failed: not signed by a trusted CA',
  UNABLE_TO_GET_ISSUER_CERT: 'certificate verify failed: not signed by a trusted CA',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'certificate verify failed: not signed by a trusted CA',
  CERT_SIGNATURE_FAILURE: 'certificate verify failed: bad signature',
  CERT_UNTRUSTED: 'certificate verify failed: not trusted',
  CERT_REJECTED: 'certificate verify failed: rejected',
  CERT_HAS_EXPIRED: 'the engine certificate has expired',
  CERT_NOT_YET_VALID: 'the engine certificate is not valid yet (check the clocks)',
};

interface Classified {
  failure: ClusterFailureKind;
  reason: string;
}

function classify(outer: unknown, context: { ssh: boolean; timeoutMs: number }): Classified {
  const call = outer instanceof CallFailed ? outer.call : undefined;
  const error = outer instanceof CallFailed ? outer.error : outer;
  if (error instanceof DeadlineExceeded) return { failure: 'timeout', reason: `timeout: ${error.message}` };
  if (error instanceof NotDocker) return { failure: 'not-docker', reason: error.message };
  const e = (error ?? {}) as NodeJS.ErrnoException & {
    level?: string;
    reason?: unknown;
    statusCode?: number;
    json?: unknown;
  };
  const code = typeof e.code === 'string' ? e.code : undefined;
  const message = typeof e.message === 'string' ? e.message : String(error);
  const via = context.ssh ? 'ssh failure: ' : '';

  switch (code) {
    case 'ECONNREFUSED':
      return {
        failure: 'refused',
        reason: `${via}connection refused (is the Docker Engine running and listening there?)`,
      };
    case 'ENOENT':
      return { failure: 'no-socket', reason: 'no such socket (is the Docker Engine running? is the path right?)' };
    case 'EACCES':
    case 'EPERM':
      return {
        failure: 'permission',
        reason: 'permission denied (run as root or as a member of the group that owns the socket, e.g. docker)',
      };
    case 'ETIMEDOUT':
      return { failure: 'timeout', reason: `${via}timeout: ${message}` };
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return { failure: 'dns', reason: `${via}host name not found (${code})` };
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return { failure: 'unreachable', reason: `${via}host unreachable (${code})` };
    case 'ERR_TLS_CERT_ALTNAME_INVALID': {
      const { host, cert } = e as { host?: unknown; cert?: { subjectaltname?: unknown } };
      const names = typeof cert?.subjectaltname === 'string' ? cert.subjectaltname : undefined;
      return {
        failure: 'tls',
        reason:
          names && typeof host === 'string'
            ? `TLS failure: hostname mismatch: the engine certificate is for ${names}, not ${host}`
            : `TLS failure: hostname mismatch: ${typeof e.reason === 'string' ? e.reason : message}`,
      };
    }
    case 'EPROTO':
    case 'ERR_SSL_WRONG_VERSION_NUMBER':
      return { failure: 'tls', reason: 'TLS failure: the endpoint does not speak TLS' };
  }
  if (code && TLS_VERIFY_FAILED[code]) return { failure: 'tls', reason: `TLS failure: ${TLS_VERIFY_FAILED[code]}` };
  if (code?.startsWith('ERR_SSL_') || code?.startsWith('ERR_OSSL_')) {
    if (/certificate required/i.test(message)) {
      return { failure: 'tls', reason: 'TLS failure: the engine requires a client certificate and key' };
    }
    if (/unknown ca|bad certificate|certificate unknown/i.test(message)) {
      return { failure: 'tls', reason: `TLS failure: the engine rejected the client certificate (${code})` };
    }
    return { failure: 'tls', reason: `TLS failure: ${code}` };
  }
  if (code?.startsWith('HPE_')) {
    return { failure: 'not-docker', reason: `not a Docker API: the endpoint does not answer HTTP (${code})` };
  }
  if (context.ssh || e.level !== undefined) {
    // ssh2 marks its errors with `level`; and over ssh a closed stream means the remote side gave up.
    if (/verification failed|host denied/i.test(message)) {
      return {
        failure: 'ssh',
        reason: 'ssh failure: the host key does not match known_hosts (a man in the middle, or a re-installed host)',
      };
    }
    if (e.level === 'client-authentication') {
      return { failure: 'ssh', reason: 'ssh failure: authentication failed (key not accepted by the host)' };
    }
    if (e.level === 'client-timeout') return { failure: 'timeout', reason: `ssh failure: timeout: ${message}` };
    if (code === 'ECONNRESET' || e.level !== undefined) {
      return {
        failure: 'ssh',
        reason: `ssh failure: ${code === 'ECONNRESET' ? 'the remote side closed the connection (is docker installed there, and may this user run `docker system dial-stdio`?)' : message}`,
      };
    }
  }
  if (typeof e.statusCode === 'number') {
    const engineMessage = isObject(e.json) && typeof e.json.message === 'string' ? e.json.message : undefined;
    if (e.statusCode === 400 && /HTTPS server/i.test(`${engineMessage ?? ''} ${message}`)) {
      return { failure: 'tls', reason: 'TLS failure: the engine expects TLS; configure TLS for this endpoint' };
    }
    if (call === 'GET /version' || engineMessage === undefined) {
      return {
        failure: 'not-docker',
        reason: `not a Docker API: ${call ?? 'the request'} answered HTTP ${e.statusCode}`,
      };
    }
    return { failure: 'engine', reason: `${call ?? 'the engine'} answered HTTP ${e.statusCode}: ${engineMessage}` };
  }
  if (code === 'ECONNRESET') {
    return {
      failure: 'reset',
      reason: 'connection closed before an answer (is it a Docker Engine? does it expect TLS?)',
    };
  }
  if (e.name === 'AbortError') return { failure: 'aborted', reason: 'aborted' };
  return { failure: 'other', reason: `${call ? `${call}: ` : ''}${code ? `${code}: ` : ''}${message}` };
}

function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 400 ? `${flat.slice(0, 397)}...` : flat;
}
