/**
 * Backends for a checked spec, by mode:
 * - `task`: each running task's address on the route's network, at `port`.
 * - `vip`: the service's virtual IP on the network, at `port` (one backend; no stickiness).
 * - `published`: each task's host-mode published port on its node's address; failing that, the
 *   ingress-published port on every ready node (or once on the cluster's `nodeAddress` override).
 * Default mode: `task` when a network is named or the service is on exactly one network;
 * `published` for a Swarm service on no network and for a container that publishes ports. A
 * missing or ambiguous port or network leaves the service out with a diagnostic: no guessing.
 */
import type { ClusterState, ServiceState, TaskState } from '../cluster/model.ts';
import { parseAddress, parseIdentifier, quoteValue } from '../parse/fields.ts';
import type { Problems } from './spec.ts';
import type { Backend, RouteSpec } from './types.ts';

type Mode = 'task' | 'vip' | 'published';

function firstAddress(task: TaskState, network: string): string | undefined {
  for (const a of task.addresses) if (a.network === network) return a.address;
  return undefined;
}

/** `<service>-<slot>` or `<service>-<first 12 characters of the task id>`; unique within the route. */
export function backendNames(service: string, tasks: readonly TaskState[]): Map<TaskState, string> {
  const slots = new Map<number, number>();
  for (const t of tasks) if (t.slot !== undefined) slots.set(t.slot, (slots.get(t.slot) ?? 0) + 1);
  const names = new Map<TaskState, string>();
  for (const t of tasks) {
    const id = t.id.slice(0, 12);
    // During a start-first rolling update two running tasks share a slot.
    if (t.slot === undefined) names.set(t, `${service}-${id}`);
    else names.set(t, (slots.get(t.slot) ?? 0) > 1 ? `${service}-${t.slot}-${id}` : `${service}-${t.slot}`);
  }
  return names;
}

/**
 * The name of each task's backend, in the order of `tasks` (as {@link backendNames}). Without the
 * two maps for the usual handful of tasks: at 10,000 services they were a fifth of the route
 * builder's garbage (issue 12).
 */
function taskBackendNames(service: string, tasks: readonly TaskState[]): string[] {
  if (tasks.length > 32) {
    const names = backendNames(service, tasks);
    return tasks.map((t) => names.get(t) ?? t.id);
  }
  const out: string[] = new Array(tasks.length);
  for (let i = 0; i < tasks.length; i++) {
    const t = tasks[i] as TaskState;
    const slot = t.slot;
    if (slot === undefined) {
      out[i] = `${service}-${t.id.slice(0, 12)}`;
      continue;
    }
    let shared = false;
    for (let j = 0; j < tasks.length && !shared; j++) shared = j !== i && tasks[j]?.slot === slot;
    out[i] = shared ? `${service}-${slot}-${t.id.slice(0, 12)}` : `${service}-${slot}`;
  }
  return out;
}

function networkFor(spec: RouteSpec, service: ServiceState, p: Problems, why: string): string | undefined {
  if (spec.network !== undefined) {
    const attached =
      service.networks.includes(spec.network) ||
      service.tasks.some((t) => firstAddress(t, spec.network ?? '') !== undefined);
    if (attached) return spec.network;
    p.add(
      'network-unknown',
      'network',
      `the service is not attached to network ${spec.network} (attached to: ${service.networks.join(', ') || 'none'})`,
      service.networks.length > 0
        ? `set ${p.setter('network')} to one of: ${service.networks.join(', ')}`
        : `attach the service to ${spec.network} (docker service update --network-add ${spec.network})`,
    );
    return undefined;
  }
  if (service.networks.length === 1) return service.networks[0];
  if (service.networks.length === 0) {
    p.add(
      'network-missing',
      'network',
      `${why}, and the service is on no network`,
      `attach the service to a network and set ${p.setter('network')}`,
    );
  } else {
    p.add(
      'network-ambiguous',
      'network',
      `the service is on ${service.networks.length} networks (${service.networks.join(', ')}) and no network is named`,
      `set ${p.setter('network')} to the one the proxy reaches it on`,
    );
  }
  return undefined;
}

export function defaultMode(spec: RouteSpec, service: ServiceState): Mode | undefined {
  if (spec.backendMode) return spec.backendMode;
  if (spec.network !== undefined) return 'task';
  if (service.mode === 'container') {
    if (service.tasks.some((t) => t.hostPorts.length > 0)) return 'published';
    return 'task';
  }
  return service.networks.length === 0 ? 'published' : 'task';
}

function needPort(spec: RouteSpec, p: Problems): number | undefined {
  if (spec.port !== undefined) return spec.port;
  p.add(
    'port-missing',
    'port',
    'no port: Swarm does not say which port a service listens on',
    `set ${p.setter('port')} to the port the service listens on inside its tasks`,
  );
  return undefined;
}

function checked(p: Problems, backend: Backend): Backend | undefined {
  const address = parseAddress(backend.address);
  const name = parseIdentifier(backend.name);
  if (address.ok && name.ok) {
    if (address.value === backend.address) return backend;
    backend.address = address.value;
    return backend;
  }
  p.add(
    'backend-invalid',
    undefined,
    `backend ${quoteValue(backend.name)} has an unusable address ${quoteValue(backend.address)}`,
    'check the snapshot: addresses come from the Docker API',
  );
  return undefined;
}

export function taskBackends(spec: RouteSpec, service: ServiceState, p: Problems): Backend[] | undefined {
  const network = networkFor(spec, service, p, 'task backends need a network');
  const port = needPort(spec, p);
  if (network === undefined || port === undefined) return undefined;
  const tasks = service.tasks;
  const names = taskBackendNames(service.name, tasks);
  const out: Backend[] = [];
  for (let i = 0; i < tasks.length; i++) {
    const task = tasks[i] as TaskState;
    const address = firstAddress(task, network);
    if (address === undefined) continue;
    const b = checked(p, { name: names[i] as string, address, port });
    if (b) out.push(b);
  }
  if (out.length === 0 && !p.failed) {
    p.add(
      'no-backends',
      'network',
      `no running task has an address on network ${network}`,
      `check that the tasks are attached to ${network}`,
    );
  }
  return p.failed ? undefined : out;
}

export function vipBackends(spec: RouteSpec, service: ServiceState, p: Problems): Backend[] | undefined {
  if (service.mode === 'container') {
    p.add(
      'route-invalid',
      'backendMode',
      'a standalone container has no service VIP',
      `remove ${p.setter('backendMode')}`,
    );
    return undefined;
  }
  const network = networkFor(spec, service, p, 'VIP backends need a network');
  const port = needPort(spec, p);
  if (network === undefined || port === undefined) return undefined;
  const vip = service.vips.find((v) => v.network === network);
  if (!vip) {
    p.add(
      'no-backends',
      'backendMode',
      `the service has no VIP on network ${network} (endpoint mode dnsrr?)`,
      `use task backends or give the service a VIP (--endpoint-mode vip)`,
    );
    return undefined;
  }
  const b = checked(p, { name: `${service.name}-vip`, address: vip.address, port });
  return b ? [b] : undefined;
}

export function publishedBackends(
  spec: RouteSpec,
  service: ServiceState,
  state: ClusterState,
  p: Problems,
): Backend[] | undefined {
  const hostTargets = service.tasks.flatMap((t) => t.hostPorts.filter((hp) => hp.protocol === 'tcp'));
  const ingress = service.ingressPorts.filter((ip) => ip.protocol === 'tcp');
  const published = [...hostTargets, ...ingress];
  let port = spec.port;
  if (port === undefined) {
    const targets = [...new Set(published.map((x) => x.target))].sort((a, b) => a - b);
    // One published target is not a guess: it is the only way in.
    if (targets.length === 1) port = targets[0];
    else if (targets.length === 0) {
      p.add(
        'port-not-published',
        'port',
        'the service is on no network and publishes no TCP port: there is no way to reach it',
        `attach it to a network and set ${p.setter('network')} and ${p.setter('port')}, or publish a port`,
      );
      return undefined;
    } else {
      p.add(
        'port-ambiguous',
        'port',
        `no port named and the service publishes ${targets.join(', ')}`,
        `set ${p.setter('port')} to one of: ${targets.join(', ')}`,
      );
      return undefined;
    }
  }
  const tasks = service.tasks;
  const names = taskBackendNames(service.name, tasks);
  const out: Backend[] = [];
  for (let i = 0; i < tasks.length; i++) {
    const task = tasks[i] as TaskState;
    const hp = task.hostPorts.find((x) => x.target === port && x.protocol === 'tcp');
    if (!hp || task.nodeAddress === '') continue;
    const b = checked(p, { name: names[i] as string, address: task.nodeAddress, port: hp.published });
    if (b) out.push(b);
  }
  if (out.length > 0 || p.failed) return p.failed ? undefined : out;

  const mesh = ingress.find((x) => x.target === port);
  if (mesh) {
    if (state.nodeAddress !== undefined) {
      const b = checked(p, { name: `${service.name}-ingress`, address: state.nodeAddress, port: mesh.published });
      return b ? [b] : undefined;
    }
    for (const node of state.nodes) {
      if (!node.ready || node.address === '') continue;
      const b = checked(p, {
        name: `${service.name}-node-${node.id.slice(0, 12)}`,
        address: node.address,
        port: mesh.published,
      });
      if (b) out.push(b);
    }
    if (out.length === 0 && !p.failed) {
      p.add(
        'no-backends',
        'port',
        `port ${port} is published through the routing mesh but no node is ready`,
        'check `docker node ls`',
      );
    }
    return p.failed ? undefined : out;
  }
  // Docker's own notation, PUBLISHED:TARGET.
  const list = [...new Set(published.map((x) => `${x.published}:${x.target}/${x.mode}`))].join(', ');
  p.add(
    'port-not-published',
    'port',
    `port ${port} is not published${list ? ` (published: ${list})` : ''} and no network is named`,
    `publish it (docker service update --publish-add mode=host,target=${port},published=PORT) or set ${p.setter('network')} to reach the tasks directly`,
  );
  return undefined;
}
