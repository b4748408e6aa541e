import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { checkRendered } from '../apply/check-proxy.ts';
import { readIfExists, writeIfChanged } from '../apply/write.ts';
import { readLiveStates } from '../cluster/live.ts';
import { type LoadedStates, mapSnapshots, missingSnapshots, readSnapshotFiles } from '../cluster/sources.ts';
import { resolveConfigPath } from '../config/check.ts';
import type { Config } from '../config/schema.ts';
import { type Diagnostic, formatDiagnostics, hasErrors, sortDiagnostics } from '../diagnostics.ts';
import { type Plan, type PlannedOutput, planRender } from '../pipeline.ts';
import { type CheckedConfig, loadAndCheck } from './config.ts';
import { EXIT_INVALID, type Io, printDiagnostics, reportFailure } from './io.ts';
import { type CommonOptions, commonOptions } from './options.ts';

export interface RenderOptions extends CommonOptions {
  snapshot?: string[];
  dryRun?: boolean;
  check?: boolean;
  outDir?: string;
  strict?: boolean;
}

export function renderOptions<T>(y: Argv<T>) {
  return commonOptions(y)
    .option('snapshot', {
      alias: 's',
      type: 'string',
      array: true,
      describe:
        'Render from a snapshot file instead of the live clusters; NAME=FILE picks the cluster (repeat per cluster)',
    })
    .option('out-dir', {
      alias: 'o',
      type: 'string',
      describe: 'Write every output under DIR (by file name) instead of where the config says',
    });
}

/** Reads the template overrides of the file outputs (their existence was checked with the config). */
export async function readTemplates(config: Config, configDir: string): Promise<Map<number, string>> {
  const byOutput = new Map<number, string>();
  for (const [i, o] of config.outputs.entries()) {
    if ((o.kind === 'haproxy' || o.kind === 'nginx') && o.template) {
      byOutput.set(i, await readFile(resolveConfigPath(configDir, o.template), 'utf8'));
    }
  }
  return byOutput;
}

async function fromSnapshotFiles(files: readonly string[], config: Config, cwd: string): Promise<LoadedStates> {
  const docs = await readSnapshotFiles(files, config, cwd);
  const loaded = mapSnapshots(docs, config);
  return { states: loaded.states, diagnostics: [...missingSnapshots(docs, config), ...loaded.diagnostics] };
}

/** Loads states (snapshot files or live) and plans every file output. */
export async function planFromArgs(
  io: Io,
  checked: CheckedConfig & { config: Config },
  args: RenderOptions,
): Promise<Plan & { sourceDiagnostics: Diagnostic[] }> {
  const { config, configDir } = checked;
  const loaded =
    args.snapshot && args.snapshot.length > 0
      ? await fromSnapshotFiles(args.snapshot, config, io.cwd)
      : await readLiveStates(config, { configDir, env: io.env, warn: (m) => io.stderr(`interlock: warning: ${m}`) });
  const plan = planRender(config, loaded.states, {
    configDir,
    ...(args.outDir ? { outDir: path.resolve(io.cwd, args.outDir) } : {}),
    templates: { byOutput: await readTemplates(config, configDir) },
  });
  return { ...plan, sourceDiagnostics: loaded.diagnostics };
}

function rel(io: Io, file: string): string {
  const r = path.relative(io.cwd, file);
  return r && !r.startsWith('..') ? r : file;
}

function summary(o: PlannedOutput): string {
  const parts = [
    `${o.routes} route${o.routes === 1 ? '' : 's'}`,
    `${o.backends} backend${o.backends === 1 ? '' : 's'}`,
  ];
  const notes: string[] = [];
  if (o.skipped.length) notes.push(`left out: ${o.skipped.map((s) => `${s.service} (${s.reason})`).join(', ')}`);
  if (o.refused.length) notes.push(`refused: ${o.refused.join(', ')} (see diagnostics)`);
  return `${parts.join(', ')}${notes.length ? `; ${notes.join('; ')}` : ''}`;
}

export async function runRender(io: Io, args: RenderOptions): Promise<void> {
  const format = args.format;
  try {
    const checked = await loadAndCheck(io, args.config, 'render', args);
    if (!checked.config || hasErrors(checked.diagnostics)) {
      printDiagnostics(io, sortDiagnostics(checked.diagnostics), format, format === 'json' ? 'stdout' : 'stderr');
      if (format === 'json') io.stdout(formatDiagnostics(sortDiagnostics(checked.diagnostics), 'json', { ok: false }));
      else
        io.stderr(`interlock: ${checked.loaded.displayFile} is invalid; nothing rendered (run \`interlock validate\`)`);
      io.setExitCode(EXIT_INVALID);
      return;
    }
    const plan = await planFromArgs(io, { ...checked, config: checked.config }, args);
    const diagnostics = sortDiagnostics([...checked.diagnostics, ...plan.sourceDiagnostics, ...plan.diagnostics]);
    const report: Array<Record<string, unknown>> = [];
    let drift = false;
    for (const o of plan.outputs) {
      const files: Array<Record<string, unknown>> = [];
      for (const f of o.files) {
        if (args.dryRun) {
          if (format !== 'json') io.stdout(`# ---- ${rel(io, f.path)} (${o.name}) ----\n${f.content}`);
          files.push({ path: rel(io, f.path), content: f.content });
        } else if (args.check) {
          const current = await readIfExists(f.path);
          const state = current === undefined ? 'missing' : current === f.content ? 'unchanged' : 'changed';
          if (state !== 'unchanged') drift = true;
          files.push({ path: rel(io, f.path), state });
          if (format === 'text')
            io.stdout(
              `${o.name}: ${rel(io, f.path)} ${state === 'unchanged' ? 'up to date' : state === 'missing' ? 'missing (would be created)' : 'would change'}`,
            );
        } else {
          const result = await writeIfChanged(f.path, f.content);
          files.push({ path: rel(io, f.path), state: result });
        }
      }
      report.push({
        name: o.name,
        kind: o.output.kind,
        routes: o.routes,
        backends: o.backends,
        skipped: o.skipped,
        refused: o.refused,
        files,
      });
      if (!args.dryRun && format === 'text') {
        const main = o.files[o.files.length - 1];
        const state = files[files.length - 1]?.state;
        const verb = args.check
          ? o.files.some((_, i) => files[i]?.state !== 'unchanged')
            ? 'drift'
            : 'in step'
          : state;
        io.stdout(`${o.name}: ${main ? rel(io, main.path) : ''} ${verb} (${summary(o)})`);
      }
    }
    if (format === 'json') {
      io.stdout(
        formatDiagnostics(diagnostics, 'json', {
          ok: !drift && !(args.strict && hasErrors(diagnostics)),
          drift,
          outputs: report,
        }),
      );
    } else {
      printDiagnostics(io, diagnostics, format, 'stderr');
    }
    if (plan.outputs.length === 0) io.stderr('interlock: the config has no haproxy or nginx output; nothing to render');
    if (drift) io.setExitCode(EXIT_INVALID);
    if (args.strict && hasErrors(diagnostics)) io.setExitCode(EXIT_INVALID);
  } catch (error) {
    reportFailure(io, error, format);
  }
}

/** `validate --snapshot`: render and check the result with the real proxies. */
export async function validateRendered(
  io: Io,
  checked: CheckedConfig & { config: Config },
  args: RenderOptions,
): Promise<Diagnostic[]> {
  const plan = await planFromArgs(io, checked, args);
  const out: Diagnostic[] = [...plan.sourceDiagnostics, ...plan.diagnostics];
  for (const o of plan.outputs) {
    // `nginx -t` opens the error log and pid paths of the file: their folder must exist, as it
    // will when the file is installed (render and watch create it).
    const main = o.files[o.files.length - 1]?.path;
    if (o.output.kind === 'nginx' && main) {
      await mkdir(o.output.runDir ? path.resolve(checked.configDir, o.output.runDir) : path.dirname(main), {
        recursive: true,
      });
    }
    const files = [...o.files].reverse().map((f) => ({
      name: path.relative(path.dirname(o.files[o.files.length - 1]?.path ?? ''), f.path),
      content: f.content,
    }));
    const result = await checkRendered(o.output, files, { env: io.env, missingBinary: 'skip' });
    if (!result.ok) {
      out.push({
        severity: 'error',
        code: 'proxy-rejected',
        message: `${result.command} rejected the rendered file: ${result.output}`,
        fix: 'fix the labels or the template named above; nothing would be applied',
        path: `outputs[${o.index}]`,
        file: checked.loaded.displayFile,
      });
    } else if (result.skipped && result.output) {
      out.push({
        severity: 'warning',
        code: 'not-checked',
        message: result.output,
        path: `outputs[${o.index}]`,
        file: checked.loaded.displayFile,
      });
    }
  }
  return out;
}

export function renderCommand(io: Io): CommandModule<object, RenderOptions> {
  return {
    command: 'render',
    describe: 'Render every haproxy / nginx output from the live clusters or a --snapshot',
    builder: (y: Argv) =>
      renderOptions(y)
        .option('dry-run', { alias: 'n', type: 'boolean', describe: 'Print the files to stdout; write nothing' })
        .option('check', {
          type: 'boolean',
          describe: 'Write nothing; exit 1 when any file would change (drift check)',
        })
        .option('strict', { type: 'boolean', describe: 'Exit 1 when any service was refused by a diagnostic' })
        .conflicts('dry-run', 'check') as unknown as Argv<RenderOptions>,
    handler: (args: ArgumentsCamelCase<RenderOptions>) => runRender(io, args),
  };
}
