/** The first output planned from a FakeSwarm's lists (cluster `local`), as `render` would plan it. */
import { mapSnapshots } from '../../src/cluster/sources.ts';
import type { Config } from '../../src/config/schema.ts';
import { type PlannedOutput, planRender } from '../../src/pipeline.ts';
import { templateTexts } from '../helpers/render.ts';
import type { FakeSwarm } from '../watch/fake-swarm.ts';

export async function planFromSwarm(config: Config, swarm: FakeSwarm, configDir: string): Promise<PlannedOutput> {
  const api = swarm.api();
  const doc = {
    version: await api.version(),
    info: await api.info(),
    services: await api.listServices(),
    tasks: await api.listTasks(),
    networks: await api.listNetworks(),
    nodes: await api.listNodes(),
    containers: await api.listContainers(),
  };
  const states = mapSnapshots([{ cluster: 'local', doc: doc as never }], config).states;
  return planRender(config, states, { configDir, templates: templateTexts() }).outputs[0] as PlannedOutput;
}
