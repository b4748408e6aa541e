import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { type DiagnosticFormat, formatDiagnostics, hasErrors, sortDiagnostics, summarize } from '../diagnostics.ts';
import { type Io, printDiagnostics } from './io.ts';
import { type RenderOptions, renderOptions } from './render-options.ts';
import { runCommand } from './run.ts';

export function runValidate(io: Io, args: RenderOptions): Promise<void> {
  const format = args.format;
  return runCommand(io, { name: 'validate', configOption: args.config, format }, async (run) => {
    // Every problem is printed, so the config is taken as found, usable or not.
    const checked = await run.check(args);
    const found = [...checked.diagnostics];
    if (checked.config && !hasErrors(found) && args.snapshot && args.snapshot.length > 0) {
      // Render code is loaded only when there is something to render (start-up, issue 12).
      const { validateRendered } = await import('./render.ts');
      found.push(...(await validateRendered(io, { ...checked, config: checked.config }, args)));
    }
    const diagnostics = sortDiagnostics(found);
    const ok = !hasErrors(diagnostics);
    const { errors, warnings } = summarize(diagnostics);
    if (format === 'json') {
      io.stdout(formatDiagnostics(diagnostics, 'json', { ok, file: checked.loaded.displayFile }));
    } else {
      printDiagnostics(io, diagnostics, format, 'stdout');
      const counts = `${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}`;
      if (format === 'text') {
        if (ok && checked.config) {
          const c = checked.config;
          io.stdout(
            `${checked.loaded.displayFile}: valid (${Object.keys(c.clusters).length} cluster(s), ${(c.rules ?? []).length || 1} rule(s), ${c.outputs.length} output(s); ${counts})`,
          );
        } else {
          io.stdout(`${checked.loaded.displayFile}: invalid (${counts})`);
        }
      }
    }
    return ok ? 'ok' : 'invalid';
  });
}

export function validateCommand(io: Io): CommandModule<object, RenderOptions> {
  return {
    command: 'validate',
    describe: 'Check the config (and, with --snapshot, what it renders) and report every problem',
    builder: (y: Argv) => renderOptions(y) as unknown as Argv<RenderOptions>,
    handler: (args: ArgumentsCamelCase<RenderOptions>) => runValidate(io, args),
  };
}

export type { DiagnosticFormat };
