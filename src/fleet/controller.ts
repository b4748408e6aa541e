/**
 * `interlock watch` as the fleet's controller: reads the token, starts the agents listener, and
 * turns each cycle's accepted render of a `serve: true` output into the bundle agents get.
 */
import { readFile } from 'node:fs/promises';
import { resolveConfigPath } from '../config/paths.ts';
import type { Config } from '../config/schema.ts';
import { agentsWaits } from '../config/settings.ts';
import { InterlockError } from '../errors.ts';
import { isFileOutput, outputName, type PlannedOutput } from '../pipeline.ts';
import type { Logger } from '../runtime/log.ts';
import type { Metrics } from '../runtime/metrics.ts';
import { parseListen } from '../watch/http-server.ts';
import { bundleOf } from './publish.ts';
import { FleetHub, type RunningAgentsServer, startAgentsServer } from './server.ts';

export interface Fleet {
  hub: FleetHub;
  server: RunningAgentsServer;
  /** The daemon's `serve` hook. */
  serve(planned: PlannedOutput, configDir: string): Promise<void>;
  /** A reloaded config: the served outputs follow it (listener, token and TLS need a restart). */
  update(config: Config): void;
  close(): Promise<void>;
}

export function servedOutputs(config: Config): string[] {
  return config.outputs.flatMap((o, i) => (isFileOutput(o) && o.serve ? [outputName(config.outputs, i)] : []));
}

/** Reads the token file: its content, trimmed; refused when empty. Never logged. */
export async function readToken(file: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new InterlockError(`cannot read the agents token file ${file}: ${(error as NodeJS.ErrnoException).code}`);
  }
  const token = text.trim();
  if (token === '' || /\s/.test(token))
    throw new InterlockError(`agents token file ${file} must hold one token (no spaces), not empty`);
  return token;
}

/** Undefined when the config has no `agents`: no bundle endpoint at all. */
export async function startFleet(
  config: Config,
  configDir: string,
  log: Logger,
  metrics: Metrics,
): Promise<Fleet | undefined> {
  const agents = config.agents;
  if (!agents) return undefined;
  const listen = parseListen(agents.listen);
  if (!listen) throw new InterlockError(`agents.listen ${agents.listen}: write ADDRESS:PORT, e.g. 0.0.0.0:8477`);
  const token = await readToken(resolveConfigPath(configDir, agents.tokenFile));
  const { waitMs, staleMs } = agentsWaits(agents);
  const hub = new FleetHub({ token, waitMs, staleMs, log, metrics });
  hub.setOutputs(servedOutputs(config));
  const server = await startAgentsServer(
    hub,
    listen,
    agents.tls
      ? { cert: resolveConfigPath(configDir, agents.tls.cert), key: resolveConfigPath(configDir, agents.tls.key) }
      : undefined,
  );
  log.info('serving agents', {
    address: `${server.address.host}:${server.address.port}`,
    tls: agents.tls !== undefined,
    outputs: servedOutputs(config).join(',') || 'none',
  });
  const started = JSON.stringify(agents);
  return {
    hub,
    server,
    serve: async (planned, dir) => {
      hub.publish(await bundleOf(planned, dir));
    },
    update(next) {
      hub.setOutputs(servedOutputs(next));
      if (JSON.stringify(next.agents) !== started)
        log.warn('the agents settings changed; restart interlock watch to apply them (served outputs follow now)');
    },
    close: () => server.close(),
  };
}
