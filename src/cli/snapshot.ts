import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { readLiveSnapshots } from '../cluster/live.ts';
import { trimSnapshot } from '../cluster/snapshot-fields.ts';
import { InterlockError } from '../errors.ts';
import type { Io } from './io.ts';
import { type CommonOptions, commonOptions } from './options.ts';
import { runCommand } from './run.ts';

interface SnapshotOptions extends CommonOptions {
  cluster?: string;
  out?: string;
}

/**
 * Writes a snapshot file readable by its owner only (0600), atomically: a temp file made 0600
 * from the start, renamed over the old one, which goes with its mode.
 */
async function writePrivate(file: string, text: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(text, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, file);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

export function runSnapshot(io: Io, args: SnapshotOptions): Promise<void> {
  // stdout is the snapshot: under --format json a refused config is still printed as text, on stderr.
  return runCommand(io, { name: 'snapshot', configOption: args.config, format: args.format }, async (run) => {
    const checked = await run.config();
    const names = Object.keys(checked.config.clusters);
    const cluster = args.cluster ?? (names.length === 1 ? names[0] : undefined);
    if (cluster === undefined || !names.includes(cluster)) {
      throw new InterlockError(
        args.cluster === undefined
          ? `the config declares ${names.length} clusters: pass --cluster NAME (one of ${names.join(', ')})`
          : `unknown cluster "${args.cluster}": the config declares ${names.join(', ')}`,
      );
    }
    const [taken] = await readLiveSnapshots(checked.config, {
      configDir: checked.configDir,
      env: io.env,
      warn: (m) => io.stderr(`interlock: warning: ${m}`),
      clusters: [cluster],
    });
    // Only what interlock reads: the Engine's bodies also hold every service's Env, Args and Command.
    const text = `${JSON.stringify(taken && trimSnapshot(taken.doc), null, 2)}\n`;
    if (args.out) {
      const file = path.resolve(io.cwd, args.out);
      await writePrivate(file, text);
      const d = taken?.doc;
      io.stderr(
        `interlock: cluster ${cluster}: ${d?.services?.length ?? 0} services, ${d?.tasks?.length ?? 0} tasks, ${d?.containers?.length ?? 0} containers → ${args.out} (${d?.metadata?.durationMs ?? '?'} ms)`,
      );
    } else {
      io.stdout(text);
    }
    return 'ok';
  });
}

export function snapshotCommand(io: Io): CommandModule<object, SnapshotOptions> {
  return {
    command: 'snapshot',
    describe:
      'Write a snapshot of a live cluster: the fields interlock reads of the Engine API bodies of services, tasks, networks, nodes, containers',
    builder: (y: Argv) =>
      commonOptions(y)
        .option('cluster', { type: 'string', describe: 'Cluster to read (needed when the config declares several)' })
        .option('out', {
          type: 'string',
          describe: 'Write to FILE (mode 0600) instead of stdout',
        }) as unknown as Argv<SnapshotOptions>,
    handler: (args: ArgumentsCamelCase<SnapshotOptions>) => runSnapshot(io, args),
  };
}
