/**
 * What a snapshot file keeps of the Engine API bodies: only the fields interlock reads (see the
 * schemas in ./snapshot-map.ts; a test checks that every field they read is kept here). The rest
 * goes, above all what may hold secrets: a service's `Spec.TaskTemplate.ContainerSpec` (`Env`,
 * `Args`, `Command`, `Secrets`, `Configs`), a task's `Spec`, a container's `Command` and `Mounts`.
 * Labels stay whole: they are what the rules read.
 *
 * Reading is not affected: a snapshot with every field (an older interlock's, or curl's) still
 * loads, since the mapper ignores what it does not read.
 * Pure: no file system, clock or environment.
 */
import type { SnapshotDocument } from './snapshot.ts';

/**
 * `scalar`: a string, number, boolean or null (anything else is dropped); `keep`: the value as it
 * is (labels, and the presence flags of a service mode); `fields`: an object with only these keys; `each`: every item of a
 * list or every value of a map.
 */
export type Allow = 'scalar' | 'keep' | { readonly fields: Readonly<Record<string, Allow>> } | { readonly each: Allow };

const fields = (f: Record<string, Allow>): Allow => ({ fields: f });
const each = (a: Allow): Allow => ({ each: a });

const port = fields({ Protocol: 'scalar', TargetPort: 'scalar', PublishedPort: 'scalar', PublishMode: 'scalar' });
const networkRefs = each(fields({ Target: 'scalar' }));

export const SNAPSHOT_FIELDS = {
  services: each(
    fields({
      ID: 'scalar',
      CreatedAt: 'scalar',
      Spec: fields({
        Name: 'scalar',
        Labels: 'keep',
        Mode: fields({
          Replicated: fields({ Replicas: 'scalar' }),
          // Present or not is what counts; their contents are counts and limits.
          Global: 'keep',
          ReplicatedJob: 'keep',
          GlobalJob: 'keep',
        }),
        TaskTemplate: fields({ Networks: networkRefs }),
        Networks: networkRefs,
      }),
      Endpoint: fields({
        Ports: each(port),
        VirtualIPs: each(fields({ NetworkID: 'scalar', Addr: 'scalar' })),
      }),
    }),
  ),
  tasks: each(
    fields({
      ID: 'scalar',
      ServiceID: 'scalar',
      Slot: 'scalar',
      NodeID: 'scalar',
      Status: fields({
        State: 'scalar',
        ContainerStatus: fields({ ContainerID: 'scalar' }),
        PortStatus: fields({ Ports: each(port) }),
      }),
      DesiredState: 'scalar',
      NetworksAttachments: each(
        fields({
          Network: fields({ ID: 'scalar', Spec: fields({ Name: 'scalar' }) }),
          Addresses: each('scalar'),
        }),
      ),
    }),
  ),
  networks: each(fields({ Id: 'scalar', Name: 'scalar', Driver: 'scalar', Scope: 'scalar', Ingress: 'scalar' })),
  nodes: each(
    fields({
      ID: 'scalar',
      Description: fields({ Hostname: 'scalar' }),
      Spec: fields({ Role: 'scalar', Availability: 'scalar' }),
      Status: fields({ State: 'scalar', Addr: 'scalar' }),
      ManagerStatus: fields({ Addr: 'scalar' }),
    }),
  ),
  containers: each(
    fields({
      Id: 'scalar',
      Created: 'scalar',
      Names: each('scalar'),
      Labels: 'keep',
      State: 'scalar',
      Ports: each(fields({ IP: 'scalar', PrivatePort: 'scalar', PublicPort: 'scalar', Type: 'scalar' })),
      NetworkSettings: fields({
        Networks: each(fields({ IPAddress: 'scalar', GlobalIPv6Address: 'scalar' })),
      }),
    }),
  ),
} as const satisfies Record<Exclude<keyof SnapshotDocument, 'metadata'>, Allow>;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * `value` with only what `allow` lets through. A value of another shape than expected (the
 * mapper reports it as malformed) keeps a primitive as it is and drops a list or object where
 * none belongs: it could hold anything.
 */
export function pick(value: unknown, allow: Allow): unknown {
  if (allow === 'keep') return value;
  if (typeof value !== 'object' || value === null) return value;
  if (allow === 'scalar') return undefined;
  if ('each' in allow) {
    if (Array.isArray(value)) return value.map((v) => pick(v, allow.each));
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = pick(v, allow.each);
    return out;
  }
  if (!isPlainObject(value)) return undefined;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const a = Object.hasOwn(allow.fields, k) ? allow.fields[k] : undefined;
    if (a !== undefined) out[k] = pick(v, a);
  }
  return out;
}

/** The snapshot document with only the fields interlock reads (metadata as it is). */
export function trimSnapshot(doc: SnapshotDocument): SnapshotDocument {
  const out: SnapshotDocument = {};
  if (doc.metadata !== undefined) out.metadata = doc.metadata;
  for (const key of ['services', 'tasks', 'networks', 'nodes', 'containers'] as const) {
    const list = doc[key];
    if (list !== undefined) out[key] = pick(list, SNAPSHOT_FIELDS[key]) as unknown[];
  }
  return out;
}
