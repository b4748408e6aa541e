/**
 * `StatsSource` on a Docker Engine through dockerode: the running containers of that engine and
 * their one-shot stats. Raw API JSON is mapped to `ContainerRef` here, at the edge.
 */
import type { ContainerRef, StatsSource } from './collect.ts';

/** The part of dockerode this source uses; a `Dockerode` instance satisfies it. */
export interface DockerStatsApi {
  version(): Promise<unknown>;
  listContainers(options: { filters: { status: string[] } }): Promise<unknown>;
  getContainer(id: string): {
    stats(options: { stream: false; 'one-shot'?: boolean; abortSignal?: AbortSignal }): Promise<unknown>;
  };
}

export interface DockerStatsSourceOptions {
  /**
   * Ask for one sample (`one-shot=true`, API ≥ 1.41: ~1 s faster per call). Default: decided from
   * the engine's API version, asked once.
   */
  oneShot?: boolean;
}

const SERVICE_LABEL = 'com.docker.swarm.service.name';
const TASK_ID_LABEL = 'com.docker.swarm.task.id';
const TASK_NAME_LABEL = 'com.docker.swarm.task.name';
const NODE_LABEL = 'com.docker.swarm.node.id';

type Obj = Record<string, unknown>;

function obj(v: unknown): Obj | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/**
 * One entry of GET /containers/json → ContainerRef. The replica slot is the middle of the task name
 * `<service>.<slot>.<task id>`; for a global service that middle is the node id, so no slot.
 * Service names may themselves contain dots, hence cutting the known ends off instead of splitting.
 */
export function containerRef(summary: unknown): ContainerRef | undefined {
  const s = obj(summary);
  const id = str(s?.Id);
  if (!s || !id) return undefined;
  const names = Array.isArray(s.Names) ? s.Names : [];
  const name = (str(names[0]) ?? id.slice(0, 12)).replace(/^\//, '');
  const ref: ContainerRef = { id, name };
  const labels = obj(s.Labels) ?? {};
  const service = str(labels[SERVICE_LABEL]);
  if (service === undefined) return ref;
  ref.service = service;
  const taskId = str(labels[TASK_ID_LABEL]);
  if (taskId !== undefined) ref.taskId = taskId;
  const node = str(labels[NODE_LABEL]);
  if (node !== undefined) ref.node = node;
  const taskName = str(labels[TASK_NAME_LABEL]);
  if (taskName !== undefined && taskId !== undefined) {
    const head = `${service}.`;
    const tail = `.${taskId}`;
    if (taskName.startsWith(head) && taskName.endsWith(tail) && taskName.length > head.length + tail.length) {
      const middle = taskName.slice(head.length, taskName.length - tail.length);
      if (/^[1-9][0-9]{0,8}$/.test(middle)) ref.slot = Number(middle);
    }
  }
  return ref;
}

/** "1.41" ≥ "1.41"; unreadable versions count as old (then the slower two-sample call is used). */
export function apiAtLeast(version: unknown, wanted: string): boolean {
  if (typeof version !== 'string') return false;
  const m = /^v?(\d+)\.(\d+)/.exec(version);
  const w = /^(\d+)\.(\d+)/.exec(wanted);
  if (!m || !w) return false;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  const [wMajor, wMinor] = [Number(w[1]), Number(w[2])];
  return major > wMajor || (major === wMajor && minor >= wMinor);
}

export function createDockerStatsSource(docker: DockerStatsApi, options: DockerStatsSourceOptions = {}): StatsSource {
  let oneShot: Promise<boolean> | undefined =
    options.oneShot === undefined ? undefined : Promise.resolve(options.oneShot);

  function useOneShot(): Promise<boolean> {
    oneShot ??= docker.version().then(
      (v) => apiAtLeast(obj(v)?.ApiVersion, '1.41'),
      (error: unknown) => {
        // Ask again next time rather than remember a transient failure.
        oneShot = undefined;
        throw error;
      },
    );
    return oneShot;
  }

  return {
    async listRunningContainers() {
      const list = await docker.listContainers({ filters: { status: ['running'] } });
      if (!Array.isArray(list)) throw new Error('GET /containers/json did not return a list');
      const refs: ContainerRef[] = [];
      for (const entry of list) {
        const ref = containerRef(entry);
        if (ref) refs.push(ref);
      }
      return refs;
    },
    async stats(id, signal) {
      const one = await useOneShot();
      const container = docker.getContainer(id);
      return container.stats({
        stream: false,
        ...(one ? { 'one-shot': true } : {}),
        ...(signal ? { abortSignal: signal } : {}),
      });
    },
  };
}
