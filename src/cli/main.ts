#!/usr/bin/env node
/**
 * interlock's command line: yargs wiring only; each command lives in its own file.
 *
 * Start-up (issue 12): a command loads only what it uses. The command named on the command line
 * is imported with its options and handler; the others are registered by name and description
 * only, for `--help` and the suggestions of a mistyped command, so `--version` and `--help` load
 * none of them (no zod, dockerode, jiti, ...).
 */
import { readFileSync } from 'node:fs';
import type YargsFactory from 'yargs/yargs';
import { COMMANDS } from './commands.ts';
import { type Io, processIo, reportUsage } from './io.ts';

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/**
 * yargs, as its CommonJS build (start-up, issue 12). Its ES module build lays help out with a
 * wrapper that cuts words in two, and yargs 18 (ES modules only) loads a width library that
 * starts ICU's text segmenter as it loads: ~100 ms of every command. The bundle inlines the
 * CommonJS build and the dozen packages it requires (rolldown.config.mjs: Node's lookup of each
 * package was ~15 ms of CPU), in a chunk of its own that this loads.
 */
async function argumentParser(): Promise<typeof YargsFactory> {
  const loaded = (await import('yargs/yargs')) as unknown as { default: typeof YargsFactory };
  return loaded.default;
}

/**
 * The commands the arguments may name: every word that is a command's name. Usually one; an
 * option value that happens to be a command's name (`-c watch validate`) loads that one too, and
 * yargs picks the command as always.
 */
function namedCommands(argv: readonly string[]): Set<string> {
  return new Set(argv.filter((a) => Object.hasOwn(COMMANDS, a)));
}

export async function main(argv: string[], io: Io = processIo()): Promise<void> {
  // `--version` alone is answered before yargs loads: it is what scripts and health checks run.
  if (argv.length === 1 && argv[0] === '--version') {
    io.stdout(version());
    return;
  }
  const named = namedCommands(argv);
  const yargs = await argumentParser();
  const cli = yargs(argv)
    .scriptName('interlock')
    .usage(
      '$0 <command> [options]\n\nTurns Docker Swarm cluster state into HAProxy / Nginx configuration and Carbon metrics.',
    )
    .version(version());
  for (const [name, entry] of Object.entries(COMMANDS)) {
    // A stub stands in for a command that does not run: its name and description are all `--help` shows.
    cli.command(
      named.has(name) ? await entry.load(io) : { command: name, describe: entry.describe, handler: () => {} },
    );
  }
  cli
    .demandCommand(1, 'Name a command: validate, render, snapshot, stats, watch, agent, status or schema.')
    .strict()
    .recommendCommands()
    .help()
    .alias('help', 'h')
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((message, error, y) => {
      if (error) throw error;
      reportUsage(io, String(y.help()), message);
    });
  skipHelpCache(cli);
  await cli.parseAsync();
}

/**
 * yargs lays out the running command's whole `--help` text (every option, wrapped) right after it
 * starts the handler, in case the handler fails later and the failure wants the help. Ours never
 * does: `.fail` rethrows a handler's error, and a usage error is found before the handler runs,
 * when yargs lays the help out anew. The layout is ~50 ms of every run (issue 12, start-up), so it is
 * skipped. The hook is yargs' internal one: if a yargs version lacks it, the text is laid out as before.
 */
function skipHelpCache(cli: object): void {
  type Internal = { getInternalMethods?: () => { getUsageInstance?: () => { cacheHelpMessage?: unknown } } };
  const usage = (cli as Internal).getInternalMethods?.().getUsageInstance?.();
  if (usage && typeof usage.cacheHelpMessage === 'function') usage.cacheHelpMessage = () => {};
}

// As yargs' hideBin for node: the arguments after the script. Not a top-level await: the bundle is
// CommonJS (rolldown.config.mjs, for the code cache). A rejection ends the process with its stack
// and exit code 1, as an unhandled error always did (commands report their own errors; this is a bug).
main(process.argv.slice(2)).catch((error: unknown) => {
  process.exitCode = 1;
  throw error;
});
