import path from 'node:path';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { Applier, type Prepared, writePlanned } from '../apply/apply.ts';
import { removeLeftovers } from '../apply/cleanup.ts';
import { materialCheck } from '../apply/material.ts';
import { readIfExists } from '../apply/write.ts';
import { type LoadedStates, mapSnapshots, missingSnapshots, readSnapshotFiles } from '../cluster/sources.ts';
import { readPolicyFiles } from '../config/policy-files.ts';
import type { Config } from '../config/schema.ts';
import { readTemplates } from '../config/templates.ts';
import { type Diagnostic, formatDiagnostics, hasErrors, sortDiagnostics } from '../diagnostics.ts';
import { InterlockError } from '../errors.ts';
import { type Plan, type PlannedOutput, planRender } from '../pipeline.ts';
import { policyDifferences, policyNotices } from '../render/policies.ts';
import type { CheckedConfig } from './config.ts';
import { type Io, printDiagnostics } from './io.ts';
import { type RenderOptions, renderOptions } from './render-options.ts';
import { runCommand } from './run.ts';
import { keepParsedTemplates } from './template-cache.ts';

// The options live in their own module, so `validate` without --snapshot loads none of this file.
export { type RenderOptions, renderOptions } from './render-options.ts';

async function fromSnapshotFiles(files: readonly string[], config: Config, cwd: string): Promise<LoadedStates> {
  const docs = await readSnapshotFiles(files, config, cwd);
  const loaded = mapSnapshots(docs, config);
  return { states: loaded.states, diagnostics: [...missingSnapshots(docs, config), ...loaded.diagnostics] };
}

/**
 * The live clusters' states. The Docker connection code (and Node's http, https and tls modules it
 * imports) is loaded only for a live read, not for `--snapshot` (start-up, issue 12).
 */
async function readLive(io: Io, config: Config, configDir: string): Promise<LoadedStates> {
  const { readLiveStates } = await import('../cluster/live.ts');
  return readLiveStates(config, { configDir, env: io.env, warn: (m) => io.stderr(`interlock: warning: ${m}`) });
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
      : await readLive(io, config, configDir);
  // Parsed templates kept between runs (template-cache.ts): ~3–6 ms per template and run.
  keepParsedTemplates(io.env);
  const policyFiles = await readPolicyFiles(config, configDir);
  const plan = planRender(config, loaded.states, {
    configDir,
    ...(args.outDir ? { outDir: path.resolve(io.cwd, args.outDir) } : {}),
    templates: await readTemplates(config, configDir),
    ...(policyFiles ? { policyFiles } : {}),
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

/** The applier `render` and `validate --snapshot` use: checks with the real proxy, never reloads. */
function renderApplier(io: Io, configDir: string): Applier {
  return new Applier({ env: io.env, reload: false, missingBinary: 'skip', material: materialCheck(configDir) });
}

/** What checking one output gave, as diagnostics (services left out, a rejection, no check). */
function preparedDiagnostics(prepared: Prepared, o: PlannedOutput, file: string | undefined): Diagnostic[] {
  const out: Diagnostic[] = prepared.leftOut.map((l) => l.diagnostic);
  if (!prepared.ok) {
    out.push({
      severity: 'error',
      code: 'proxy-rejected',
      message: `${prepared.check.command} rejected the rendered ${o.name} output${
        prepared.services.length > 0 ? ` (services involved: ${prepared.services.join(', ')})` : ''
      }: ${prepared.check.output || 'no reason given'}`,
      fix: 'fix the labels or the template named above; nothing was written',
      path: `outputs[${o.index}]`,
      ...(file ? { file } : {}),
    });
  } else if (prepared.check.skipped && prepared.check.output) {
    out.push({
      severity: 'warning',
      code: 'not-checked',
      message: prepared.check.output,
      path: `outputs[${o.index}]`,
      ...(file ? { file } : {}),
    });
  }
  return out;
}

export function runRender(io: Io, args: RenderOptions): Promise<void> {
  const spec = { name: 'render', configOption: args.config, format: args.format };
  return runCommand(io, { ...spec, jsonReport: true, refused: 'nothing rendered' }, async (run) => {
    const format = args.format;
    const checked = await run.config(args);
    // Dead runs' leftovers go while the outputs are planned and checked (its reads and the
    // render's work overlap; start-up, issue 12), and before anything is written. It never throws.
    const cleaning =
      !args.dryRun && !args.check
        ? removeLeftovers(checked.config, { ...checked, cwd: io.cwd, outDir: args.outDir })
        : undefined;
    const plan = await planFromArgs(io, checked, args);
    // Every output is checked by its proxy before anything is written (or printed, or compared):
    // what `render` writes is what `watch` would apply. One rejected output writes nothing at all.
    // The outputs are checked at the same time: each is its own proxy run in its own scratch folder.
    const applier = renderApplier(io, checked.configDir);
    const prepared: Prepared[] = await Promise.all(plan.outputs.map((o) => applier.prepare(o)));
    await cleaning;
    const found: Diagnostic[] = prepared.flatMap((p, i) =>
      preparedDiagnostics(p, plan.outputs[i] as PlannedOutput, checked.loaded.displayFile),
    );
    const rejected = prepared.some((p) => !p.ok);
    const diagnostics = sortDiagnostics([
      ...checked.diagnostics,
      ...plan.sourceDiagnostics,
      ...plan.diagnostics,
      ...found,
    ]);
    const report: Array<Record<string, unknown>> = [];
    let drift = false;
    for (const p of rejected ? [] : prepared) {
      const o = p.planned;
      const files: Array<Record<string, unknown>> = [];
      if (args.dryRun) {
        for (const f of o.files) {
          if (format !== 'json') io.stdout(`# ---- ${rel(io, f.path)} (${o.name}) ----\n${f.content}`);
          files.push({ path: rel(io, f.path), content: f.content });
        }
      } else if (args.check) {
        for (const f of o.files) {
          const current = await readIfExists(f.path);
          const state = current === undefined ? 'missing' : current === f.content ? 'unchanged' : 'changed';
          if (state !== 'unchanged') drift = true;
          files.push({ path: rel(io, f.path), state });
          if (format === 'text')
            io.stdout(
              `${o.name}: ${rel(io, f.path)} ${state === 'unchanged' ? 'up to date' : state === 'missing' ? 'missing (would be created)' : 'would change'}`,
            );
        }
      } else {
        const written = await writePlanned(o);
        if (written.failed) throw new InterlockError(written.failed.error);
        for (const w of written.files) files.push({ path: rel(io, w.path), state: w.result });
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
          ok: !rejected && !drift && !(args.strict && hasErrors(diagnostics)),
          drift,
          outputs: report,
        }),
      );
    } else {
      printDiagnostics(io, diagnostics, format, 'stderr');
    }
    if (plan.outputs.length === 0) io.stderr('interlock: the config has no haproxy or nginx output; nothing to render');
    if (rejected && format === 'text')
      io.stderr('interlock: a proxy rejected the render; nothing was written (see the diagnostics above)');
    return rejected || drift || (args.strict && hasErrors(diagnostics)) ? 'invalid' : 'ok';
  });
}

/** `validate --snapshot`: render and check the result with the real proxies, as `render` would. */
export async function validateRendered(
  io: Io,
  checked: CheckedConfig & { config: Config },
  args: RenderOptions,
): Promise<Diagnostic[]> {
  const plan = await planFromArgs(io, checked, args);
  const out: Diagnostic[] = [...plan.sourceDiagnostics, ...plan.diagnostics];
  const applier = renderApplier(io, checked.configDir);
  const prepared = await Promise.all(plan.outputs.map((o) => applier.prepare(o)));
  for (const [i, o] of plan.outputs.entries())
    out.push(...preparedDiagnostics(prepared[i] as Prepared, o, checked.loaded.displayFile));
  // Traffic policies the two proxies cannot carry out the same way (README, Traffic policies).
  const kinds = new Set(plan.outputs.map((o) => o.output.kind));
  const differences = policyDifferences(
    plan.outputs.flatMap((o) => o.routeList),
    kinds,
  );
  for (const d of differences) out.push({ severity: 'warning', ...d });
  // Services in maintenance, and how canary groups split (issue 14): listed, as warnings.
  const seen = new Set<string>();
  for (const d of policyNotices(plan.outputs.flatMap((o) => o.routeList))) {
    const id = `${d.code}/${d.cluster}/${d.service}`;
    if (!seen.has(id)) out.push({ severity: 'warning', ...d });
    seen.add(id);
  }
  // (Nginx's PROXY protocol listener is the nginx output's own rule: src/outputs/nginx.ts.)
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
