/**
 * Docker stats bodies → figures → points. Pure: the caller passes the clock in.
 *
 * The engine is asked with `one-shot=true` (one sample, ~1 s faster), so `precpu_stats` is empty
 * and the previous sample of the same container, kept by the collector, is the base for CPU % and
 * for every per-second rate. A figure that cannot be computed honestly (first sample, counter
 * went backwards, division by zero) is left out rather than sent as 0, NaN or Infinity.
 */
import type { ClusterState } from '../cluster/model.ts';
import { type Namer, type ServiceKey, sanitizeSegment, type TaskKey } from './names.ts';
import type { Point } from './point.ts';

export interface CpuCounters {
  /** `cpu_stats.cpu_usage.total_usage`, ns of CPU time used by the container. */
  total: number;
  /** `cpu_stats.system_cpu_usage`, ns of CPU time of the whole host. */
  system: number;
  /** `online_cpus`, or the length of `percpu_usage` on engines that do not report it. */
  onlineCpus: number;
}

export interface NetworkCounters {
  rxBytes: number;
  rxPackets: number;
  rxErrors: number;
  rxDropped: number;
  txBytes: number;
  txPackets: number;
  txErrors: number;
  txDropped: number;
}

/** The parts of one stats body interlock uses, with the cgroup v1 / v2 differences resolved. */
export interface ContainerSample {
  /** When the engine read the figures (`read`), in ms; the caller's clock when the body has none. */
  time: number;
  cpu?: CpuCounters;
  /** The engine's own previous sample; present only when it took two (no `one-shot`). */
  precpu?: CpuCounters;
  memory?: { usage: number; inactiveFile: number; limit?: number };
  /** Summed over the container's interfaces; absent on host networking (the body has no `networks`). */
  network?: NetworkCounters;
  /** Bytes read / written, summed over devices; absent when the engine does not report block I/O. */
  blkio?: { read: number; write: number };
  pids?: number;
}

/** Metric name (dotted, interlock's own) → value. Only finite values are ever stored. */
export type Figures = Record<string, number>;

type Obj = Record<string, unknown>;

function obj(v: unknown): Obj | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : undefined;
}

function num(o: Obj | undefined, key: string): number | undefined {
  const v = o?.[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function parseCpu(v: unknown): CpuCounters | undefined {
  const cpu = obj(v);
  const usage = obj(cpu?.cpu_usage);
  const total = num(usage, 'total_usage');
  const system = num(cpu, 'system_cpu_usage');
  if (total === undefined || system === undefined) return undefined;
  let onlineCpus = num(cpu, 'online_cpus') ?? 0;
  if (onlineCpus === 0) {
    const percpu = usage?.percpu_usage;
    onlineCpus = Array.isArray(percpu) ? percpu.length : 0;
  }
  if (onlineCpus <= 0) return undefined;
  return { total, system, onlineCpus };
}

function parseMemory(v: unknown): ContainerSample['memory'] {
  const mem = obj(v);
  const usage = num(mem, 'usage');
  if (usage === undefined) return undefined;
  const stats = obj(mem?.stats);
  // The docker CLI's order: cgroup v1 reports the hierarchical `total_inactive_file`, cgroup v2 only `inactive_file`.
  const inactiveFile = num(stats, 'total_inactive_file') ?? num(stats, 'inactive_file') ?? 0;
  const limit = num(mem, 'limit');
  return limit !== undefined && limit > 0 ? { usage, inactiveFile, limit } : { usage, inactiveFile };
}

const NET_KEYS: readonly [keyof NetworkCounters, string][] = [
  ['rxBytes', 'rx_bytes'],
  ['rxPackets', 'rx_packets'],
  ['rxErrors', 'rx_errors'],
  ['rxDropped', 'rx_dropped'],
  ['txBytes', 'tx_bytes'],
  ['txPackets', 'tx_packets'],
  ['txErrors', 'tx_errors'],
  ['txDropped', 'tx_dropped'],
];

function parseNetworks(v: unknown): NetworkCounters | undefined {
  const networks = obj(v);
  if (!networks) return undefined;
  const sum: NetworkCounters = {
    rxBytes: 0,
    rxPackets: 0,
    rxErrors: 0,
    rxDropped: 0,
    txBytes: 0,
    txPackets: 0,
    txErrors: 0,
    txDropped: 0,
  };
  let any = false;
  for (const iface of Object.values(networks)) {
    const o = obj(iface);
    if (!o) continue;
    any = true;
    for (const [field, key] of NET_KEYS) sum[field] += num(o, key) ?? 0;
  }
  return any ? sum : undefined;
}

function parseBlkio(v: unknown): ContainerSample['blkio'] {
  const list = obj(v)?.io_service_bytes_recursive;
  // null / absent: the engine measures nothing; an empty list: it measures, and nothing happened.
  if (!Array.isArray(list)) return undefined;
  let read = 0;
  let write = 0;
  for (const entry of list) {
    const o = obj(entry);
    const op = typeof o?.op === 'string' ? o.op.toLowerCase() : '';
    const value = num(o, 'value') ?? 0;
    // cgroup v1 says "Read"/"Write" (plus "Sync", "Async", "Total", which would double count); v2 "read"/"write".
    if (op === 'read') read += value;
    else if (op === 'write') write += value;
  }
  return { read, write };
}

function parseTime(v: unknown, nowMs: number): number {
  if (typeof v !== 'string') return nowMs;
  const t = Date.parse(v);
  // The engine writes the zero time "0001-01-01T00:00:00Z" for a sample it did not take.
  return Number.isFinite(t) && t > 0 ? t : nowMs;
}

/**
 * Reads a raw stats body (GET /containers/{id}/stats, cgroup v1 or v2). Undefined when the body is
 * not a stats object at all.
 */
export function parseStatsBody(body: unknown, nowMs: number): ContainerSample | undefined {
  const b = obj(body);
  if (!b) return undefined;
  const sample: ContainerSample = { time: parseTime(b.read, nowMs) };
  const cpu = parseCpu(b.cpu_stats);
  if (cpu) sample.cpu = cpu;
  const precpu = parseCpu(b.precpu_stats);
  // With one-shot the engine sends an all-zero precpu: not a sample.
  if (precpu && precpu.system > 0) sample.precpu = precpu;
  const memory = parseMemory(b.memory_stats);
  if (memory) sample.memory = memory;
  const network = parseNetworks(b.networks);
  if (network) sample.network = network;
  const blkio = parseBlkio(b.blkio_stats);
  if (blkio) sample.blkio = blkio;
  const pids = num(obj(b.pids_stats), 'current');
  if (pids !== undefined) sample.pids = pids;
  return sample;
}

function put(figures: Figures, name: string, value: number): void {
  if (Number.isFinite(value)) figures[name] = value;
}

/** A per-second rate, or nothing when the counter went backwards (reset) or no time passed. */
function putRate(figures: Figures, name: string, current: number, previous: number, seconds: number): void {
  if (seconds > 0 && current >= previous) put(figures, name, (current - previous) / seconds);
}

/** The docker CLI's CPU %: 100 means one CPU fully used, so a busy 2-thread task shows 200. */
export function cpuPercent(current: CpuCounters, base: CpuCounters): number | undefined {
  const cpuDelta = current.total - base.total;
  const systemDelta = current.system - base.system;
  if (systemDelta <= 0 || cpuDelta < 0) return undefined;
  return (cpuDelta / systemDelta) * current.onlineCpus * 100;
}

/**
 * The figures of one container from its current sample and the previous one (undefined on the
 * first round: counters are sent, rates and CPU % are not, unless the engine supplied its own precpu).
 */
export function containerFigures(current: ContainerSample, previous?: ContainerSample): Figures {
  const figures: Figures = {};
  const prev = previous !== undefined && previous.time < current.time ? previous : undefined;
  const seconds = prev ? (current.time - prev.time) / 1000 : 0;

  // Our own previous sample spans the whole interval; the engine's precpu only the last second.
  const cpuBase = prev?.cpu ?? current.precpu;
  if (current.cpu && cpuBase) {
    const pct = cpuPercent(current.cpu, cpuBase);
    if (pct !== undefined) put(figures, 'cpu.percent', pct);
  }

  const mem = current.memory;
  if (mem) {
    // As the docker CLI: page cache that can be dropped is not "used".
    const used = mem.inactiveFile < mem.usage ? mem.usage - mem.inactiveFile : mem.usage;
    put(figures, 'memory.used', used);
    if (mem.limit !== undefined) {
      put(figures, 'memory.limit', mem.limit);
      put(figures, 'memory.percent', (used / mem.limit) * 100);
    }
  }

  const net = current.network;
  if (net) {
    for (const [field, key] of NET_KEYS) {
      put(figures, `net.${key}`, net[field]);
      if (prev?.network) putRate(figures, `net.${key}_per_s`, net[field], prev.network[field], seconds);
    }
  }

  const io = current.blkio;
  if (io) {
    put(figures, 'blkio.read_bytes', io.read);
    put(figures, 'blkio.write_bytes', io.write);
    if (prev?.blkio) {
      putRate(figures, 'blkio.read_bytes_per_s', io.read, prev.blkio.read, seconds);
      putRate(figures, 'blkio.write_bytes_per_s', io.write, prev.blkio.write, seconds);
    }
  }

  if (current.pids !== undefined) put(figures, 'pids', current.pids);
  return figures;
}

/**
 * A service's figures from its tasks' figures.
 * - Summed: bytes, packets, rates, memory used, pids, and `cpu.percent` (docker's CPU % is in
 *   "% of one CPU", so the sum is the CPU the whole service uses: 3 tasks at 50% = 150).
 * - `cpu.percent_avg`: the mean per task (what a scaling decision looks at).
 * - `memory.percent_avg` / `memory.percent_max`: a sum of percentages means nothing; the max tells
 *   whether any one task is near its limit.
 * - `memory.limit` is not aggregated: without a limit every task reports the host's memory.
 * - `tasks.sampled`: how many tasks gave stats this round.
 * A figure missing from some tasks (e.g. `net.*` on host networking) is aggregated over those that have it.
 */
export function serviceFigures(tasks: readonly Figures[]): Figures {
  const sums: Record<string, number> = {};
  const counts: Record<string, number> = {};
  const maxima: Record<string, number> = {};
  for (const t of tasks) {
    for (const [name, value] of Object.entries(t)) {
      sums[name] = (sums[name] ?? 0) + value;
      counts[name] = (counts[name] ?? 0) + 1;
      maxima[name] = Math.max(maxima[name] ?? Number.NEGATIVE_INFINITY, value);
    }
  }
  const figures: Figures = {};
  for (const [name, sum] of Object.entries(sums)) {
    const count = counts[name] as number;
    if (name === 'memory.limit') continue;
    if (name === 'memory.percent') {
      put(figures, 'memory.percent_avg', sum / count);
      put(figures, 'memory.percent_max', maxima[name] as number);
      continue;
    }
    put(figures, name, sum);
    if (name === 'cpu.percent') put(figures, 'cpu.percent_avg', sum / count);
  }
  put(figures, 'tasks.sampled', tasks.length);
  return figures;
}

function toPoints(figures: Figures, name: (metric: string) => string, timestamp: number): Point[] {
  return Object.keys(figures)
    .sort()
    .map((metric) => ({ path: name(metric), value: figures[metric] as number, timestamp }));
}

export function taskPoints(key: TaskKey, figures: Figures, namer: Namer, timestamp: number): Point[] {
  return toPoints(figures, (metric) => namer.task(key, metric), timestamp);
}

export function servicePoints(key: ServiceKey, figures: Figures, namer: Namer, timestamp: number): Point[] {
  return toPoints(figures, (metric) => namer.service(key, metric), timestamp);
}

/**
 * Cluster-wide task counts from a manager's view of the cluster (the stats of one engine cannot
 * see tasks on other nodes; the manager's task list can): `tasks.running` per service, and
 * `tasks.desired` for replicated services. Several daemons reading managers of the same cluster
 * write the same values, so their series agree instead of overwriting each other with partial sums.
 */
export function clusterStatePoints(state: ClusterState, namer: Namer, timestamp: number): Point[] {
  const points: Point[] = [];
  for (const service of state.services) {
    const key: ServiceKey = { cluster: state.cluster, service: service.name };
    const figures: Figures = { 'tasks.running': service.tasks.length };
    if (service.mode === 'replicated' && service.replicas !== undefined) figures['tasks.desired'] = service.replicas;
    points.push(...servicePoints(key, figures, namer, timestamp));
  }
  return points;
}

/** interlock's own figures, as the daemon keeps them (counters since start, except the latency). */
export interface DaemonFigures {
  renders: number;
  applies: number;
  reloads: number;
  failures: number;
  /** Duration of the last apply (validate + write + reload), when there was one. */
  applyLatencyMs?: number;
  metricsSent: number;
  metricsDropped: number;
  /** Docker events seen, by cluster then event type (e.g. `service.update`). */
  events?: Readonly<Record<string, Readonly<Record<string, number>>>>;
}

/** `<prefix>.interlock.<instance>.{renders,applies,…}` and `….events.<cluster>.<type>`. */
export function daemonPoints(figures: DaemonFigures, namer: Namer, instance: string, timestamp: number): Point[] {
  const values: Figures = {};
  put(values, 'renders', figures.renders);
  put(values, 'applies', figures.applies);
  put(values, 'reloads', figures.reloads);
  put(values, 'failures', figures.failures);
  if (figures.applyLatencyMs !== undefined) put(values, 'apply.latency_ms', figures.applyLatencyMs);
  put(values, 'metrics.sent', figures.metricsSent);
  put(values, 'metrics.dropped', figures.metricsDropped);
  for (const [cluster, types] of Object.entries(figures.events ?? {})) {
    for (const [type, count] of Object.entries(types)) {
      // Cluster and type are one level each: `service.update` must not become two levels.
      put(values, `events.${sanitizeSegment(cluster)}.${sanitizeSegment(type)}`, count);
    }
  }
  return toPoints(values, (metric) => namer.daemon(instance, metric), timestamp);
}
