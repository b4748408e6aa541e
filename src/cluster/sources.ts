/**
 * Where cluster states come from for one run: snapshot files (`--snapshot FILE` or
 * `--snapshot NAME=FILE`), or the live clusters of the config.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/schema.ts';
import type { Diagnostic } from '../diagnostics.ts';
import { SnapshotError } from '../errors.ts';
import { DEFAULT_RULES } from '../routes/build.ts';
import { DOCKER_LB_PREFIX } from '../routes/dialect-docker-lb.ts';
import { INTERLOCK_PREFIX } from '../routes/dialect-interlock.ts';
import type { ClusterState } from './model.ts';
import type { SnapshotDocument } from './snapshot.ts';
import { mapSnapshot, parseSnapshotText } from './snapshot-map.ts';

export interface LoadedStates {
  states: ClusterState[];
  diagnostics: Diagnostic[];
}

export interface SnapshotArg {
  cluster?: string;
  file: string;
}

export function parseSnapshotArg(arg: string): SnapshotArg {
  const m = /^([A-Za-z0-9_-]+)=(.+)$/.exec(arg);
  return m ? { cluster: m[1] as string, file: m[2] as string } : { file: arg };
}

/**
 * The largest snapshot file read: 256 MiB. Far above a trimmed snapshot of a large cluster (what
 * `interlock snapshot` writes, a few KiB per service), and below both the longest string Node.js
 * holds (512 MiB) and what parsing into objects (several times the size) leaves room for.
 */
export const MAX_SNAPSHOT_BYTES = 256 * 1024 * 1024;

const MiB = (bytes: number) => `${Math.ceil(bytes / 1024 / 1024)} MiB`;

/** Reads snapshot files and assigns each to a cluster of the config. */
export async function readSnapshotFiles(
  args: readonly string[],
  config: Config,
  cwd: string,
): Promise<{ cluster: string; doc: SnapshotDocument }[]> {
  const clusters = Object.keys(config.clusters);
  const out: { cluster: string; doc: SnapshotDocument }[] = [];
  for (const raw of args) {
    const arg = parseSnapshotArg(raw);
    const file = path.resolve(cwd, arg.file);
    let text: string;
    try {
      // Checked first: reading it would fail with "Invalid string length", or exhaust memory.
      // (Only regular files: a pipe such as /dev/stdin has no size to check.)
      const info = await stat(file);
      if (info.isFile() && info.size > MAX_SNAPSHOT_BYTES) {
        throw new SnapshotError(
          `snapshot ${arg.file} is ${MiB(info.size)}; the limit is ${MiB(MAX_SNAPSHOT_BYTES)}: take a new one with \`interlock snapshot\`, which keeps only the fields interlock reads`,
        );
      }
      text = await readFile(file, 'utf8');
    } catch (error) {
      if (error instanceof SnapshotError) throw error;
      throw new SnapshotError(
        `snapshot ${arg.file} cannot be read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
        {
          cause: error,
        },
      );
    }
    const doc = parseSnapshotText(text, arg.file);
    const named = arg.cluster ?? doc.metadata?.cluster;
    let cluster: string;
    if (named !== undefined && clusters.includes(named)) {
      cluster = named;
    } else if (arg.cluster === undefined && clusters.length === 1) {
      // One cluster in the config: the snapshot is of it, whatever name it was taken under.
      cluster = clusters[0] as string;
    } else {
      throw new SnapshotError(
        named === undefined
          ? `snapshot ${arg.file} names no cluster and the config has ${clusters.length}: pass --snapshot NAME=${arg.file} with NAME one of ${clusters.join(', ')}`
          : `snapshot ${arg.file} is for cluster "${named}", which the config does not declare (${clusters.join(', ')}): pass --snapshot NAME=${arg.file}`,
      );
    }
    if (out.some((o) => o.cluster === cluster)) {
      throw new SnapshotError(`two snapshots given for cluster "${cluster}"`);
    }
    out.push({ cluster, doc });
  }
  return out;
}

/** A warning per configured cluster no snapshot was given for (its services are not rendered). */
export function missingSnapshots(docs: readonly { cluster: string }[], config: Config): Diagnostic[] {
  const given = new Set(docs.map((d) => d.cluster));
  return Object.keys(config.clusters)
    .filter((name) => !given.has(name))
    .map((name) => ({
      severity: 'warning' as const,
      code: 'no-snapshot',
      message: 'no snapshot was given for this cluster: its services are not in the rendered files',
      fix: `pass --snapshot ${name}=FILE too`,
      cluster: name,
    }));
}

/** The prefixes of the labels the config's rules read (custom rules read what they like). */
function labelPrefixes(config: Config): string[] {
  const rules = config.rules && config.rules.length > 0 ? config.rules : DEFAULT_RULES;
  const out = new Set<string>();
  for (const rule of rules) {
    if (rule.kind === 'interlock') out.add(rule.prefix ?? INTERLOCK_PREFIX);
    else if (rule.kind === 'docker-lb') out.add(rule.prefix ?? DOCKER_LB_PREFIX);
  }
  return [...out];
}

export function mapSnapshots(
  docs: readonly { cluster: string; doc: SnapshotDocument }[],
  config: Config,
): LoadedStates {
  const states: ClusterState[] = [];
  const diagnostics: Diagnostic[] = [];
  for (const { cluster, doc } of docs) {
    const nodeAddress = config.clusters[cluster]?.nodeAddress;
    const mapped = mapSnapshot(doc, {
      cluster,
      ...(nodeAddress ? { nodeAddress } : {}),
      labelPrefixes: labelPrefixes(config),
    });
    states.push(mapped.state);
    diagnostics.push(...mapped.diagnostics);
  }
  states.sort((a, b) => a.cluster.localeCompare(b.cluster));
  return { states, diagnostics };
}
