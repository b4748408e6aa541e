/**
 * Reading the config's clusters live: resolve each endpoint, connect, take a snapshot (a constant
 * number of API calls), map it. All clusters are read in parallel.
 */

import type { Config } from '../config/schema.ts';
import { clusterTimeoutMs } from '../config/settings.ts';
import { connect, resolveEndpoint } from './connect.ts';
import { readSnapshot } from './read.ts';
import type { SnapshotDocument } from './snapshot.ts';
import { type LoadedStates, mapSnapshots } from './sources.ts';

export interface LiveOptions {
  configDir: string;
  env: Readonly<Record<string, string | undefined>>;
  /** Start-up warnings (TLS verification off, plain TCP): printed once by the caller. */
  warn: (message: string) => void;
  /** Only these clusters (default: all). */
  clusters?: readonly string[];
}

/** Snapshot documents of the live clusters, by cluster name, sorted. Throws on the first cluster that fails. */
export async function readLiveSnapshots(
  config: Config,
  options: LiveOptions,
): Promise<{ cluster: string; doc: SnapshotDocument }[]> {
  const names = (options.clusters ?? Object.keys(config.clusters)).slice().sort();
  return Promise.all(
    names.map(async (name) => {
      const cluster = config.clusters[name];
      if (!cluster) throw new Error(`unknown cluster ${name}`);
      const resolved = await resolveEndpoint(cluster, { ...options.env }, { name, configDir: options.configDir });
      for (const w of resolved.warnings) options.warn(w);
      const docker = connect(resolved);
      const timeoutMs = clusterTimeoutMs(cluster);
      const doc = await readSnapshot(docker, { cluster: name, timeoutMs, endpointDisplay: resolved.display });
      return { cluster: name, doc };
    }),
  );
}

export async function readLiveStates(config: Config, options: LiveOptions): Promise<LoadedStates> {
  return mapSnapshots(await readLiveSnapshots(config, options), config);
}
