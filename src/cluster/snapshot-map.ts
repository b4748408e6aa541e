/**
 * Snapshot document (raw Docker Engine API bodies) → interlock's own sorted model. The only place
 * that reads API JSON. Every entry is checked with a schema of just the fields read: unknown fields
 * are ignored (newer engines add some), a malformed entry is reported by name and left out, and
 * nothing here throws on bad data.
 * Pure: no file system, clock or environment.
 */
import { z } from 'zod';
import type { Diagnostic } from '../diagnostics.ts';
import { SnapshotError } from '../errors.ts';
import { parseAddress, printable, quoteValue } from '../parse/fields.ts';
import type {
  ClusterState,
  NetworkAddress,
  NetworkState,
  NodeState,
  PublishedPort,
  ServiceState,
  TaskState,
} from './model.ts';
import type { SnapshotDocument } from './snapshot.ts';
import { containerOk, containerPortsOk, networkOk, nodeOk, serviceOk, taskOk } from './snapshot-fast.ts';

export interface MapOptions {
  /** Name of the cluster in the config. */
  cluster: string;
  /** Address used for every node when reaching published ports (the cluster's `nodeAddress`). */
  nodeAddress?: string;
  /**
   * Prefixes of the labels the rules read (e.g. `interlock`): kept first when a service has more
   * than MAX_LABELS labels. Default: both dialects' own.
   */
  labelPrefixes?: readonly string[];
}

/**
 * Labels read per service or container. Swarm accepts about 45,000 on a service; reading them all
 * on every re-list would slow every cycle for everyone (seconds) and flood the log. A service
 * needs a handful; 1,000 leaves ample room for custom rules that read other labels.
 */
export const MAX_LABELS = 1000;

/** The two dialects' own prefixes (./../routes/dialect-*.ts). */
const DEFAULT_LABEL_PREFIXES = ['interlock', 'com.docker.lb'];

export interface MapResult {
  state: ClusterState;
  diagnostics: Diagnostic[];
}

// ---------- schemas: only what is read; other fields are dropped, not copied (cheaper at 10k services) ----------

/**
 * The zod schemas of the API entries. They only explain an entry that fails the hand-written check
 * (./snapshot-fast.ts), so they are built the first time one does, not on every start (start-up,
 * issue 12).
 */
// Names end up in proxy identifiers and diagnostics: Docker's own character set, nothing more.
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

function buildEntrySchemas() {
  const id = z.string().regex(/^[A-Za-z0-9_.-]{1,128}$/, 'not a Docker id');
  const name = z.string().regex(NAME_RE, 'not a Docker name');
  // A plain loop rather than z.record: a service may carry tens of thousands of labels (see
  // MAX_LABELS), and this runs on every re-list.
  const labels = z
    .custom<Record<string, string> | null>((v) => v === null || isObject(v), {
      message: 'expected an object of labels',
    })
    .superRefine((v, ctx) => {
      for (const key in v ?? {}) {
        if (typeof v?.[key] !== 'string') {
          ctx.addIssue({ code: 'custom', path: [key], message: 'a label value must be a string' });
          return;
        }
      }
    })
    .optional();
  const portNumber = z.number().int().min(1).max(65535);
  const apiPort = z.object({
    Protocol: z.string().optional(),
    TargetPort: portNumber,
    PublishedPort: z.number().int().min(0).max(65535).optional(),
    PublishMode: z.string().optional(),
  });
  const networkRef = z.object({ Target: z.string() });

  const networkSchema = z.object({
    Id: id,
    Name: name,
    Driver: z.string().nullish(),
    Scope: z.string().nullish(),
    Ingress: z.boolean().nullish(),
  });

  const nodeSchema = z.object({
    ID: id,
    Description: z.object({ Hostname: z.string().optional() }).nullish(),
    Spec: z.object({ Role: z.string().optional(), Availability: z.string().optional() }).nullish(),
    Status: z.object({ State: z.string().optional(), Addr: z.string().optional() }).nullish(),
    ManagerStatus: z.object({ Addr: z.string().optional() }).nullish(),
  });

  const serviceSchema = z.object({
    ID: id,
    CreatedAt: z.string().optional(),
    Spec: z.object({
      Name: name,
      Labels: labels,
      Mode: z
        .looseObject({
          Replicated: z.object({ Replicas: z.number().int().min(0).optional() }).nullish(),
          Global: z.unknown().optional(),
          ReplicatedJob: z.unknown().optional(),
          GlobalJob: z.unknown().optional(),
        })
        .nullish(),
      TaskTemplate: z.object({ Networks: z.array(networkRef).nullish() }).nullish(),
      // Before API 1.25 the networks sat on the service spec itself.
      Networks: z.array(networkRef).nullish(),
    }),
    Endpoint: z
      .looseObject({
        Ports: z.array(apiPort).nullish(),
        VirtualIPs: z.array(z.object({ NetworkID: z.string(), Addr: z.string().optional() })).nullish(),
      })
      .nullish(),
  });

  const taskSchema = z.object({
    ID: id,
    ServiceID: z.string(),
    Slot: z.number().int().min(0).optional(),
    NodeID: z.string().optional(),
    Status: z.object({
      State: z.string(),
      ContainerStatus: z.object({ ContainerID: z.string().optional() }).nullish(),
      PortStatus: z.object({ Ports: z.array(apiPort).nullish() }).nullish(),
    }),
    DesiredState: z.string(),
    NetworksAttachments: z
      .array(
        z.object({
          Network: z
            .looseObject({ ID: z.string().optional(), Spec: z.object({ Name: z.string().optional() }).nullish() })
            .nullish(),
          Addresses: z.array(z.string()).nullish(),
        }),
      )
      .nullish(),
  });

  const containerPorts = z
    .array(
      z.object({
        IP: z.string().optional(),
        PrivatePort: portNumber,
        PublicPort: portNumber.optional(),
        Type: z.string().optional(),
      }),
    )
    .nullish();

  const containerSchema = z.object({
    Id: id,
    Created: z.number().optional(),
    Names: z.array(z.string()).nullish(),
    Labels: labels,
    State: z.string().optional(),
    Ports: containerPorts,
    NetworkSettings: z
      .looseObject({
        Networks: z
          .record(
            z.string(),
            z.object({ IPAddress: z.string().nullish(), GlobalIPv6Address: z.string().nullish() }).nullish(),
          )
          .nullish(),
      })
      .nullish(),
  });
  return {
    services: serviceSchema,
    tasks: taskSchema,
    networks: networkSchema,
    nodes: nodeSchema,
    containers: containerSchema,
    apiPort,
    containerPorts,
  };
}

let built: ReturnType<typeof buildEntrySchemas> | undefined;
function entrySchemas(): ReturnType<typeof buildEntrySchemas> {
  built ??= buildEntrySchemas();
  return built;
}

type Schemas = ReturnType<typeof buildEntrySchemas>;
type ApiPort = z.infer<Schemas['apiPort']>;

// ---------- helpers ----------

/** Code-unit order, independent of the machine's locale. */
function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Sorts in place, like `list.sort(order)` (stable), without the work arrays Array#sort allocates
 * per call: the lists sorted per service and per task (tasks, labels, addresses) hold a handful of
 * items, and at 10,000 services those allocations were a third of the mapping's garbage.
 */
function sortSmall<T>(list: T[], order: (a: T, b: T) => number): T[] {
  if (list.length > 16) return list.sort(order);
  for (let i = 1; i < list.length; i++) {
    const item = list[i] as T;
    let j = i - 1;
    while (j >= 0 && order(list[j] as T, item) > 0) {
      list[j + 1] = list[j] as T;
      j--;
    }
    list[j + 1] = item;
  }
  return list;
}

function protocol(p: string | undefined): PublishedPort['protocol'] | undefined {
  const v = (p ?? 'tcp').toLowerCase();
  return v === 'tcp' || v === 'udp' || v === 'sctp' ? v : undefined;
}

function comparePorts(a: PublishedPort, b: PublishedPort): number {
  return a.published - b.published || a.target - b.target || cmp(a.protocol, b.protocol) || cmp(a.mode, b.mode);
}

/** Sorted, without the duplicates Docker lists once per address family. */
function uniquePorts(ports: PublishedPort[]): PublishedPort[] {
  const seen = new Set<string>();
  const out: PublishedPort[] = [];
  for (const p of ports.sort(comparePorts)) {
    const key = `${p.published}/${p.target}/${p.protocol}/${p.mode}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(p);
  }
  return out;
}

function apiPorts(ports: readonly ApiPort[] | null | undefined, mode: PublishedPort['mode']): PublishedPort[] {
  const out: PublishedPort[] = [];
  if (!ports || ports.length === 0) return out;
  for (const p of ports) {
    const proto = protocol(p.Protocol);
    const publishMode = p.PublishMode ?? 'ingress';
    if (!proto || !p.PublishedPort || publishMode !== mode) continue;
    out.push({ target: p.TargetPort, published: p.PublishedPort, protocol: proto, mode });
  }
  return uniquePorts(out);
}

type Family = 4 | 6;
type ContainerPort = NonNullable<z.infer<Schemas['containerPorts']>>[number];

/** The address family a node address is reached over; a host name counts as IPv4 (tried first by the proxies). */
function familyOf(address: string): Family {
  return address.includes(':') ? 6 : 4;
}

/** Family of a port binding's host IP (`0.0.0.0`, `::` or one address); undefined when Docker gave none. */
function bindingFamily(ip: string | undefined): Family | undefined {
  return ip === undefined || ip === '' ? undefined : familyOf(ip);
}

/**
 * A task's host-mode ports reachable over `family`. Docker binds an unspecified host IP twice, on
 * 0.0.0.0 and on ::, and may give the two different host ports (Docker 20.10 allocates them from
 * separate pools); `Status.PortStatus` lists both without the address, IPv4 first. The address
 * comes from the task's container in /containers/json when the snapshot has it (a container on
 * the node that was read); a port bound only to the other family is left out. Otherwise Docker's
 * order decides: an IPv4 node takes the first port of each target, an IPv6 node the last. Docker's
 * order is kept either way (it does not change between reads of one task), so the route takes
 * the first port listed for its target.
 */
function taskHostPorts(
  ports: readonly ApiPort[] | null | undefined,
  boundPorts: { get(containerId: string): readonly ContainerPort[] | undefined },
  containerId: string | undefined,
  family: Family,
): PublishedPort[] {
  const listed: PublishedPort[] = [];
  // Most tasks publish nothing: no container lookup, no set.
  if (!ports || ports.length === 0) return listed;
  const bound = containerId ? boundPorts.get(containerId) : undefined;
  for (const p of ports) {
    const proto = protocol(p.Protocol);
    if (!proto || !p.PublishedPort || (p.PublishMode ?? 'ingress') !== 'host') continue;
    const port: PublishedPort = { target: p.TargetPort, published: p.PublishedPort, protocol: proto, mode: 'host' };
    if (bound) {
      const families = bound
        .filter((b) => b.PrivatePort === port.target && b.PublicPort === port.published && protocol(b.Type) === proto)
        .map((b) => bindingFamily(b.IP));
      if (families.length > 0 && !families.some((f) => f === undefined || f === family)) continue;
    }
    listed.push(port);
  }
  const ordered = bound === undefined && family === 6 ? listed.reverse() : listed;
  const seen = new Set<string>();
  return ordered.filter((p) => {
    const key = `${p.published}/${p.target}/${p.protocol}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** IPv4 before IPv6 on the same network, so "the" address of a task is its IPv4 one. */
function compareAddresses(a: NetworkAddress, b: NetworkAddress): number {
  const v6 = (x: NetworkAddress) => (x.address.includes(':') ? 1 : 0);
  return cmp(a.network, b.network) || v6(a) - v6(b) || cmp(a.address, b.address);
}

function sortedLabels(
  raw: Record<string, string> | null | undefined,
  keys: string[] = raw ? Object.keys(raw) : [],
): Record<string, string> {
  const out: Record<string, string> = {};
  if (!raw) return out;
  for (let i = 1; i < keys.length; i++) {
    if ((keys[i - 1] as string) > (keys[i] as string)) {
      for (const key of sortSmall(keys, cmp)) out[key] = raw[key] ?? '';
      return out;
    }
  }
  // Already in order (the Engine API sorts map keys): a copy of the same keys and values.
  for (const key of keys) out[key] = raw[key] ?? '';
  return out;
}

/**
 * The labels read of one service or container, sorted: all of them up to MAX_LABELS. Beyond, the
 * labels under the rules' prefixes first, then the others in key order, with one warning; when the
 * labels under the prefixes alone are more, none is read (reading some would route on a part of
 * what the deployer wrote) and the service is refused.
 */
function cappedLabels(
  m: Mapper,
  raw: Record<string, string> | null | undefined,
  prefixes: readonly string[],
  name: string,
): Record<string, string> {
  const keys = raw ? Object.keys(raw) : [];
  if (keys.length <= MAX_LABELS) return sortedLabels(raw, keys);
  const leads = prefixes.map((p) => `${p}.`);
  const ruled = new Set(keys.filter((k) => leads.some((l) => k.startsWith(l))));
  const under = prefixes.length > 0 ? prefixes.map((p) => `${p}.*`).join(', ') : 'no prefix';
  const fix = 'a service needs a few labels: remove the others (docker service update --label-rm)';
  if (ruled.size > MAX_LABELS) {
    m.problem(
      'error',
      `has ${count(ruled.size)} labels under ${under}, more than the ${count(MAX_LABELS)} read: none is read and the service is left out`,
      fix,
      name,
      'labels-capped',
    );
    return {};
  }
  const others = keys.filter((k) => !ruled.has(k)).sort();
  const kept = [...ruled, ...others.slice(0, MAX_LABELS - ruled.size)];
  m.problem(
    'warning',
    `has ${count(keys.length)} labels; only the first ${count(MAX_LABELS)} are read (those under ${under} first)`,
    fix,
    name,
    'labels-capped',
  );
  const picked: Record<string, string> = {};
  for (const k of kept) picked[k] = raw?.[k] ?? '';
  return sortedLabels(picked);
}

function count(n: number): string {
  return n.toLocaleString('en');
}

function describeIssues(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'malformed';
  const at = issue.path
    .map((k) => (typeof k === 'number' ? `[${k}]` : `.${String(k)}`))
    .join('')
    .replace(/^\./, '');
  const more = error.issues.length > 1 ? ` (and ${error.issues.length - 1} more)` : '';
  // Keys in the path come from the input itself.
  return printable(`${at ? `${at}: ` : ''}${issue.message}${more}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A readable name for a malformed entry: its name or id when they look sane, else its index. */
function entryName(list: string, index: number, entry: unknown): string {
  const candidates: unknown[] = [];
  if (isObject(entry)) {
    const spec = entry.Spec;
    if (isObject(spec)) candidates.push(spec.Name);
    candidates.push(entry.Name, entry.ID, entry.Id);
    if (Array.isArray(entry.Names)) candidates.push(entry.Names[0]);
  }
  const found = candidates.find((c): c is string => typeof c === 'string' && /^\/?[A-Za-z0-9_.-]{1,64}$/.test(c));
  return found ? `${list}[${index}] (${found.replace(/^\//, '')})` : `${list}[${index}]`;
}

// ---------- mapping ----------

class Mapper {
  readonly diagnostics: Diagnostic[] = [];
  private readonly cluster: string;
  constructor(cluster: string) {
    this.cluster = cluster;
  }

  problem(
    severity: Diagnostic['severity'],
    message: string,
    fix: string,
    service?: string,
    code = 'snapshot-invalid',
  ): void {
    this.diagnostics.push({
      severity,
      code,
      message,
      fix,
      cluster: this.cluster,
      ...(service ? { service } : {}),
    });
  }

  /**
   * Validates every entry of a list; a malformed one is reported and skipped. An entry that passes
   * its hand-written check (`ok`, ./snapshot-fast.ts) is read as it is; any other goes through the
   * schema, which says what is wrong.
   */
  entries<T>(
    list: string,
    raw: unknown[] | undefined,
    schema: () => z.ZodType<T>,
    ok: (e: Record<string, unknown>) => boolean,
    keep?: (e: Record<string, unknown>) => boolean,
  ): T[] {
    const out: T[] = [];
    if (raw === undefined) return out;
    if (!Array.isArray(raw)) {
      this.problem('error', `\`${list}\` is not a list; ignored`, `write the body of GET /${list} (a JSON array)`);
      return out;
    }
    for (let i = 0; i < raw.length; i++) {
      const entry: unknown = raw[i];
      const object = isObject(entry);
      if (keep && object && !keep(entry)) continue;
      if (object && ok(entry)) {
        out.push(entry as T);
        continue;
      }
      const r = schema().safeParse(entry);
      if (r.success) out.push(r.data);
      else this.malformed(entryName(list, i, entry), describeIssues(r.error));
    }
    return out;
  }

  /** A creation time that is not one: ignored, so the entry is the newcomer in a contest for a host. */
  badTime(kind: 'service' | 'container', name: string, what: string): void {
    this.problem(
      'warning',
      `${what} is not a time; ignored: the ${kind} counts as the newest for a contested host`,
      'check the snapshot: the Docker Engine gives RFC 3339 times (CreatedAt) and seconds since 1970 (Created)',
      name,
    );
  }

  malformed(what: string, why: string): void {
    this.problem(
      'error',
      `${what} is malformed (${why}); left out`,
      'check the snapshot: each entry is one object as the Docker Engine API returns it',
    );
  }
}

function hostOf(addr: string | undefined): string | undefined {
  if (!addr) return undefined;
  const m = /^\[([^\]]+)\](?::\d+)?$/.exec(addr) ?? /^([^:]+)(?::\d+)?$/.exec(addr);
  return m?.[1];
}

function nodeAddress(node: z.infer<Schemas['nodes']>): string | undefined {
  const own = node.Status?.Addr;
  // A manager can report 0.0.0.0 (e.g. when it advertises on all interfaces); its manager
  // address is then the reachable one.
  if (own && own !== '0.0.0.0') return own;
  return hostOf(node.ManagerStatus?.Addr) ?? own;
}

function isRunning(entry: Record<string, unknown>): boolean {
  const status = entry.Status;
  return entry.DesiredState === 'running' && isObject(status) && status.State === 'running';
}

function stripPrefixLength(cidr: string): string {
  const slash = cidr.indexOf('/');
  return slash === -1 ? cidr : cidr.slice(0, slash);
}

export function mapSnapshot(doc: SnapshotDocument, options: MapOptions): MapResult {
  const m = new Mapper(options.cluster);
  const override = options.nodeAddress;
  if (override !== undefined && !parseAddress(override).ok) {
    m.problem(
      'error',
      `nodeAddress ${quoteValue(override)} is not an address; ignored`,
      'set clusters.<name>.nodeAddress to an IP address or host name',
    );
  }
  const nodeOverride = override !== undefined && parseAddress(override).ok ? override : undefined;

  // Networks: all of them in the state; the ingress network is never a way in for a proxy.
  const networks: NetworkState[] = [];
  const networkName = new Map<string, string>();
  const ingressNetworks = new Set<string>();
  for (const n of m.entries('networks', doc.networks, () => entrySchemas().networks, networkOk)) {
    networkName.set(n.Id, n.Name);
    if (n.Ingress || (n.Name === 'ingress' && n.Driver === 'overlay')) ingressNetworks.add(n.Name);
    networks.push({ id: n.Id, name: n.Name, driver: n.Driver ?? '', scope: n.Scope ?? '' });
  }
  networks.sort((a, b) => cmp(a.name, b.name) || cmp(a.id, b.id));
  const nameOf = (ref: string) => networkName.get(ref) ?? ref;
  const usable = (n: string) => !ingressNetworks.has(n) && NAME_RE.test(n);

  const swarm = Array.isArray(doc.services) && Array.isArray(doc.nodes) && doc.nodes.length > 0;
  if (!swarm && Array.isArray(doc.services) && doc.services.length > 0) {
    m.problem(
      'warning',
      'the snapshot lists services but no nodes: read as a standalone engine, services ignored',
      'include the body of GET /nodes from a Swarm manager',
    );
  }

  // Nodes.
  const nodes: NodeState[] = [];
  const nodeById = new Map<string, NodeState>();
  if (swarm) {
    for (const n of m.entries('nodes', doc.nodes, () => entrySchemas().nodes, nodeOk)) {
      const address = nodeAddress(n);
      const parsed = address === undefined ? undefined : parseAddress(address);
      if (!parsed?.ok) {
        m.malformed(
          `nodes (${n.ID})`,
          `Status.Addr ${address === undefined ? 'missing' : quoteValue(address)} is not an address`,
        );
        continue;
      }
      const node: NodeState = {
        id: n.ID,
        hostname: n.Description?.Hostname ?? '',
        address: parsed.value,
        role: n.Spec?.Role === 'manager' ? 'manager' : 'worker',
        ready: n.Status?.State === 'ready',
        available: (n.Spec?.Availability ?? 'active') === 'active',
      };
      nodes.push(node);
      nodeById.set(node.id, node);
    }
    nodes.sort((a, b) => cmp(a.id, b.id));
  }

  const prefixes = options.labelPrefixes ?? DEFAULT_LABEL_PREFIXES;
  const services = swarm ? mapServices(m, doc, nodeById, nameOf, usable, nodeOverride, prefixes) : [];
  const taken = new Set(services.map((s) => s.name));
  for (const c of mapContainers(m, doc, swarm, nameOf, nodeOverride, prefixes)) {
    if (taken.has(c.name)) {
      m.problem(
        'warning',
        `container ${c.name} has the name of a Swarm service; the container is left out`,
        'rename the container',
        c.name,
      );
      continue;
    }
    taken.add(c.name);
    services.push(c);
  }
  services.sort((a, b) => cmp(a.name, b.name));

  const state: ClusterState = { cluster: options.cluster, swarm, services, nodes, networks };
  if (nodeOverride !== undefined) state.nodeAddress = nodeOverride;
  return { state, diagnostics: m.diagnostics };
}

function mapServices(
  m: Mapper,
  doc: SnapshotDocument,
  nodeById: ReadonlyMap<string, NodeState>,
  nameOf: (ref: string) => string,
  usable: (network: string) => boolean,
  nodeOverride: string | undefined,
  prefixes: readonly string[],
): ServiceState[] {
  const byId = new Map<string, ServiceState>();
  // The services in the order read (byId's order), without iterating the map.
  const list: ServiceState[] = [];
  const names = new Set<string>();
  const entries = m.entries('services', doc.services, () => entrySchemas().services, serviceOk);
  for (let si = 0; si < entries.length; si++) {
    const s = entries[si] as (typeof entries)[number];
    if (names.has(s.Spec.Name) || byId.has(s.ID)) {
      m.problem(
        'error',
        `two services named ${s.Spec.Name}; the second (${s.ID}) is left out`,
        'check the snapshot',
        s.Spec.Name,
      );
      continue;
    }
    names.add(s.Spec.Name);
    let vips: NetworkAddress[] | undefined;
    const virtualIps = s.Endpoint?.VirtualIPs;
    for (let vi = 0; virtualIps && vi < virtualIps.length; vi++) {
      const v = virtualIps[vi] as NonNullable<typeof virtualIps>[number];
      const network = nameOf(v.NetworkID);
      const address = v.Addr ? parseAddress(stripPrefixLength(v.Addr)) : undefined;
      if (usable(network) && address?.ok) vips = append(vips, { network, address: address.value });
    }
    if (vips) sortSmall(vips, compareAddresses);
    // The networks named in the spec and those with a VIP, once each, usable ones only, sorted.
    let networks: string[] | undefined;
    const template = s.Spec.TaskTemplate?.Networks;
    for (let ni = 0; template && ni < template.length; ni++)
      networks = addNetwork(networks, nameOf((template[ni] as { Target: string }).Target), usable);
    const own = s.Spec.Networks;
    for (let ni = 0; own && ni < own.length; ni++)
      networks = addNetwork(networks, nameOf((own[ni] as { Target: string }).Target), usable);
    for (let vi = 0; vips && vi < vips.length; vi++)
      networks = addNetwork(networks, (vips[vi] as NetworkAddress).network, usable);
    if (networks) sortSmall(networks, cmp);
    const mode = s.Spec.Mode;
    const global = mode?.Global !== undefined || mode?.GlobalJob !== undefined;
    const service: ServiceState = {
      id: s.ID,
      name: s.Spec.Name,
      mode: global ? 'global' : 'replicated',
      labels: cappedLabels(m, s.Spec.Labels, prefixes, s.Spec.Name),
      networks: networks ?? [],
      vips: vips ?? [],
      ingressPorts: apiPorts(s.Endpoint?.Ports, 'ingress'),
      tasks: [],
    };
    const replicas = mode?.Replicated?.Replicas;
    if (!global && replicas !== undefined) service.replicas = replicas;
    const created = s.CreatedAt ? isoTime(Date.parse(s.CreatedAt)) : undefined;
    if (created) service.createdAt = created;
    else if (s.CreatedAt) m.badTime('service', s.Spec.Name, `CreatedAt ${quoteValue(s.CreatedAt)}`);
    byId.set(s.ID, service);
    list.push(service);
  }

  if (byId.size > 0 && doc.tasks === undefined) {
    m.problem(
      'warning',
      'the snapshot has services but no `tasks`: no service has a running task',
      'include the body of GET /tasks',
    );
  }
  // Read from the containers list only when a task publishes a port (most route over networks).
  let bound: Map<string, ContainerPort[]> | undefined;
  const boundPorts = {
    get: (containerId: string) => {
      bound ??= taskContainerPorts(doc.containers);
      return bound.get(containerId);
    },
  };
  // Network names repeat in every task: one string each, not one per task (issue 12: the
  // daemon holds 30,000 tasks at 10,000 services).
  const networkNames = new Map<string, string>();
  const once = (name: string): string => {
    const held = networkNames.get(name);
    if (held !== undefined) return held;
    networkNames.set(name, name);
    return name;
  };
  // Only running tasks are backends; history (shut down, failed) is not even validated.
  // Indexed loops here and below: this function runs once per render, mostly before the optimizing
  // compiler has it, and each for-of step then allocated an iterator result (issue 12).
  const tasks = m.entries('tasks', doc.tasks, () => entrySchemas().tasks, taskOk, isRunning);
  for (let ti = 0; ti < tasks.length; ti++) {
    const t = tasks[ti] as (typeof tasks)[number];
    const service = byId.get(t.ServiceID);
    if (!service) continue;
    // Usually one address: an array of one, not one with room for 17 (an empty array's first push).
    let addresses: NetworkAddress[] | undefined;
    let bad: string | undefined;
    const attachments = t.NetworksAttachments;
    for (let ai = 0; attachments && ai < attachments.length; ai++) {
      const a = attachments[ai] as NonNullable<typeof attachments>[number];
      const network = a.Network?.Spec?.Name ?? nameOf(a.Network?.ID ?? '');
      const cidrs = a.Addresses;
      if (!cidrs || !usable(network)) continue;
      for (let ci = 0; ci < cidrs.length; ci++) {
        const cidr = cidrs[ci] as string;
        const address = parseAddress(stripPrefixLength(cidr));
        if (!address.ok) bad = cidr;
        else addresses = append(addresses, { network: once(network), address: address.value });
      }
    }
    if (bad !== undefined) {
      m.malformed(`task ${t.ID} of service ${service.name}`, `address ${quoteValue(bad)} is not an IP address`);
      continue;
    }
    const node = t.NodeID ? nodeById.get(t.NodeID) : undefined;
    // Empty when the node is unknown: published ports on it cannot be reached.
    const reachedAt = nodeOverride ?? node?.address ?? '';
    const containerId = t.Status.ContainerStatus?.ContainerID;
    // The node's own id string when it is known (one per node, not one per task).
    const nodeId = node?.id ?? t.NodeID ?? '';
    if (addresses === undefined) addresses = [];
    else sortSmall(addresses, compareAddresses);
    const hostPorts = taskHostPorts(t.Status.PortStatus?.Ports, boundPorts, containerId, familyOf(reachedAt));
    const slot = t.Slot !== undefined && service.mode === 'replicated' ? t.Slot : undefined;
    // One literal per combination of the optional fields, in the same key order: a field added
    // afterwards gives each of 30,000 tasks a second, out-of-object property store (issue 12).
    service.tasks.push(
      slot !== undefined
        ? containerId
          ? { id: t.ID, nodeId, nodeAddress: reachedAt, addresses, hostPorts, slot, containerId }
          : { id: t.ID, nodeId, nodeAddress: reachedAt, addresses, hostPorts, slot }
        : containerId
          ? { id: t.ID, nodeId, nodeAddress: reachedAt, addresses, hostPorts, containerId }
          : { id: t.ID, nodeId, nodeAddress: reachedAt, addresses, hostPorts },
    );
  }
  for (let i = 0; i < list.length; i++) {
    const s = list[i] as ServiceState;
    if (s.tasks.length > 1) sortSmall(s.tasks, compareTasks);
  }
  return list;
}

/** Adds a network name once, when a proxy can use it. */
function addNetwork(
  networks: string[] | undefined,
  name: string,
  usable: (network: string) => boolean,
): string[] | undefined {
  if (networks?.includes(name) || !usable(name)) return networks;
  return append(networks, name);
}

/**
 * `list` with `item` added; a new array of one when there is no list yet. Most of a service's lists
 * hold one item, and an empty array's first push makes room for 17 (issue 12).
 */
function append<T>(list: T[] | undefined, item: T): T[] {
  if (list === undefined) return [item];
  list.push(item);
  return list;
}

/** By slot (tasks without one last), then id. */
function compareTasks(a: TaskState, b: TaskState): number {
  return (a.slot ?? Number.MAX_SAFE_INTEGER) - (b.slot ?? Number.MAX_SAFE_INTEGER) || cmp(a.id, b.id);
}

const TASK_ID_LABEL = 'com.docker.swarm.task.id';
/**
 * Set on a container taskContainerHint reduced: only ever a hint for its task's ports, never a
 * service of its own, even if the document it is in is not read as a Swarm's (a manager that
 * listed no nodes): it no longer has the names and networks a standalone container is mapped from.
 * A symbol: not part of the entry's JSON.
 */
const REDUCED_TASK_CONTAINER: unique symbol = Symbol('interlock.reduced-task-container');
const SERVICE_ID_LABEL = 'com.docker.swarm.service.id';

/**
 * An entry of a Swarm manager's GET /containers/json, reduced to what mapping reads of it when it
 * is a task's container (taskContainerPorts): its id, its task and service labels, its ports.
 * Any other entry (a standalone container, something unreadable) is returned as it is. For the
 * watch daemon's full reads (issue 12): 30,000 task containers held whole were ~38 MB of heap
 * while the first read is mapped, ~4 MB reduced. Only for a document read from a Swarm manager:
 * off Swarm every container is a service of its own and is read in full.
 */
export function taskContainerHint(entry: unknown): unknown {
  if (!isObject(entry) || !isObject(entry.Labels) || !(TASK_ID_LABEL in entry.Labels)) return entry;
  const labels = entry.Labels;
  return {
    [REDUCED_TASK_CONTAINER]: true,
    Id: entry.Id,
    Labels: {
      [TASK_ID_LABEL]: labels[TASK_ID_LABEL],
      ...(SERVICE_ID_LABEL in labels ? { [SERVICE_ID_LABEL]: labels[SERVICE_ID_LABEL] } : {}),
    },
    ...('Ports' in entry ? { Ports: entry.Ports } : {}),
  };
}

/**
 * Host ports of task containers by container id, with the address each is bound to: the only
 * place the API says which family a task's host port belongs to. Task containers are hints here,
 * not entries of their own, so a malformed one is skipped without a word.
 */
function taskContainerPorts(containers: unknown[] | undefined): Map<string, ContainerPort[]> {
  const out = new Map<string, ContainerPort[]>();
  if (!Array.isArray(containers)) return out;
  for (const c of containers) {
    if (!isObject(c) || typeof c.Id !== 'string' || !isObject(c.Labels) || !(TASK_ID_LABEL in c.Labels)) continue;
    if (containerPortsOk(c.Ports)) {
      if (Array.isArray(c.Ports)) out.set(c.Id, c.Ports as ContainerPort[]);
      continue;
    }
    const ports = entrySchemas().containerPorts.safeParse(c.Ports);
    if (ports.success && ports.data) out.set(c.Id, ports.data);
  }
  return out;
}

const UNSPECIFIED = new Set(['', '0.0.0.0', '::']);

function mapContainers(
  m: Mapper,
  doc: SnapshotDocument,
  swarm: boolean,
  nameOf: (ref: string) => string,
  nodeOverride: string | undefined,
  prefixes: readonly string[],
): ServiceState[] {
  const out: ServiceState[] = [];
  // In Swarm mode the tasks' containers are already services.
  const standalone = (e: Record<string, unknown>) =>
    !(REDUCED_TASK_CONTAINER in e) && (!swarm || !isObject(e.Labels) || !(TASK_ID_LABEL in e.Labels));
  for (const c of m.entries('containers', doc.containers, () => entrySchemas().containers, containerOk, standalone)) {
    const raw = (c.Names ?? []).map((n) => n.replace(/^\//, '')).find((n) => !n.includes('/'));
    const containerName = raw !== undefined && NAME_RE.test(raw) ? raw : undefined;
    if (containerName === undefined) {
      m.malformed(
        `container ${c.Id.slice(0, 12)}`,
        `name ${raw === undefined ? 'missing' : quoteValue(raw)} is not a Docker name`,
      );
      continue;
    }
    const addresses: NetworkAddress[] = [];
    const networks: string[] = [];
    for (const [key, settings] of Object.entries(c.NetworkSettings?.Networks ?? {})) {
      const network = nameOf(key);
      if (!NAME_RE.test(network)) continue;
      networks.push(network);
      for (const ip of [settings?.IPAddress, settings?.GlobalIPv6Address]) {
        const address = ip ? parseAddress(ip) : undefined;
        if (address?.ok) addresses.push({ network, address: address.value });
      }
    }
    const published = (c.Ports ?? []).filter((p) => protocol(p.Type) !== undefined && p.PublicPort !== undefined);
    const boundIp = published.find((p) => p.IP !== undefined && !UNSPECIFIED.has(p.IP) && parseAddress(p.IP).ok)?.IP;
    // A port bound to one address is reached there; 0.0.0.0 / :: are reached on loopback.
    const reachedAt = boundIp ?? nodeOverride ?? '127.0.0.1';
    const wildcard = familyOf(reachedAt) === 6 ? '::' : '0.0.0.0';
    const hostPorts: PublishedPort[] = [];
    for (const p of published) {
      // Only the bindings reachable there: Docker may give 0.0.0.0 and :: different host ports.
      if (p.IP !== undefined && p.IP !== '' && p.IP !== wildcard && p.IP !== reachedAt) continue;
      const proto = protocol(p.Type) as PublishedPort['protocol'];
      hostPorts.push({ target: p.PrivatePort, published: p.PublicPort as number, protocol: proto, mode: 'host' });
    }
    // Seconds since 1970 (the API's `Created`).
    const createdAt = c.Created === undefined ? undefined : isoTime(c.Created * 1000);
    if (c.Created !== undefined && !createdAt) m.badTime('container', containerName, `Created ${c.Created}`);
    const running = c.State === undefined || c.State === 'running';
    const tasks: TaskState[] = running
      ? [
          {
            id: c.Id,
            nodeId: '',
            nodeAddress: reachedAt,
            containerId: c.Id,
            addresses: addresses.sort(compareAddresses),
            // /containers/json lists ports in no fixed order: sorted, so a re-list renders the same.
            hostPorts: uniquePorts(hostPorts),
          },
        ]
      : [];
    out.push({
      id: c.Id,
      name: containerName,
      mode: 'container',
      labels: cappedLabels(m, c.Labels, prefixes, containerName),
      ...(createdAt ? { createdAt } : {}),
      networks: [...new Set(networks)].sort(cmp),
      vips: [],
      ingressPorts: [],
      tasks,
    });
  }
  return out;
}

// ---------- reading a snapshot file's text ----------

const SNAPSHOT_KEYS = ['services', 'tasks', 'networks', 'nodes', 'containers'] as const;

const metadataSchema = () =>
  z.object({
    cluster: z.string().optional(),
    takenAt: z.string().optional(),
    durationMs: z.number().optional(),
    apiVersion: z.string().optional(),
    engineVersion: z.string().optional(),
  });

function lineColumn(text: string, position: number): string {
  const before = text.slice(0, position);
  const line = before.split('\n').length;
  const column = position - before.lastIndexOf('\n');
  return `${line}:${column}`;
}

/**
 * Parses a snapshot file's text. Throws SnapshotError, saying where and what, when it is not JSON
 * or not a snapshot document; the entries themselves are checked later, by mapSnapshot.
 */
export function parseSnapshotText(raw: string, source: string): SnapshotDocument {
  // A byte order mark (some Windows editors write one) is not part of the JSON.
  const text = raw.charCodeAt(0) === 0xfeff ? raw.slice(1) : raw;
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const pos = /position (\d+)/.exec(message);
    const at = pos ? `${source}:${lineColumn(text, Number(pos[1]))}` : source;
    throw new SnapshotError(`${at}: not valid JSON: ${message}`, { cause: error, location: at });
  }
  const expected = `a snapshot is a JSON object with the Docker API bodies under ${SNAPSHOT_KEYS.join(', ')} (and optional metadata)`;
  if (Array.isArray(data)) {
    throw new SnapshotError(
      `${source}: is a JSON array, not a snapshot; it looks like a single API response. ${expected}`,
      { location: source },
    );
  }
  if (!isObject(data)) throw new SnapshotError(`${source}: not a snapshot: ${expected}`, { location: source });
  const present = SNAPSHOT_KEYS.filter((k) => k in data);
  if (present.length === 0) throw new SnapshotError(`${source}: not a snapshot: ${expected}`, { location: source });
  for (const key of present) {
    if (!Array.isArray(data[key])) {
      throw new SnapshotError(
        `${source}: \`${key}\` must be a JSON array (the body of GET /${key === 'containers' ? 'containers/json' : key})`,
        {
          location: source,
        },
      );
    }
  }
  const doc: SnapshotDocument = {};
  for (const key of present) doc[key] = data[key] as unknown[];
  if ('metadata' in data) {
    const meta = metadataSchema().safeParse(data.metadata);
    if (!meta.success)
      throw new SnapshotError(`${source}: metadata is wrong: ${describeIssues(meta.error)}`, { location: source });
    const { cluster, takenAt, durationMs, apiVersion, engineVersion } = meta.data;
    doc.metadata = {
      ...(cluster !== undefined ? { cluster } : {}),
      ...(takenAt !== undefined ? { takenAt } : {}),
      ...(durationMs !== undefined ? { durationMs } : {}),
      ...(apiVersion !== undefined ? { apiVersion } : {}),
      ...(engineVersion !== undefined ? { engineVersion } : {}),
    };
  }
  return doc;
}

/** 9999-12-31T23:59:59.999Z: later years print with a sign and six digits, which sort before every other. */
const LAST_MS = 253_402_300_799_999;

/**
 * A creation time (ms since 1970) normalised to ISO 8601 (UTC, ms); undefined when it is not one
 * in 1970–9999: NaN, out of the Date range (`new Date(1e303)` throws), or before the first container.
 */
function isoTime(ms: number): string | undefined {
  return Number.isFinite(ms) && ms >= 0 && ms <= LAST_MS ? new Date(ms).toISOString() : undefined;
}

/** The schema of each list's entries: exactly the fields the mapper reads (./snapshot-fields.ts keeps them). */
export const ENTRY_SCHEMAS = {
  get services() {
    return entrySchemas().services;
  },
  get tasks() {
    return entrySchemas().tasks;
  },
  get networks() {
    return entrySchemas().networks;
  },
  get nodes() {
    return entrySchemas().nodes;
  },
  get containers() {
    return entrySchemas().containers;
  },
};
