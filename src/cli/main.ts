#!/usr/bin/env node
/** interlock's command line: yargs wiring only; each command lives in its own file. */
import { readFileSync } from 'node:fs';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { jsonSchema } from '../config/schema.ts';
import { EXIT_FAILURE, type Io, processIo } from './io.ts';
import { renderCommand } from './render.ts';
import { snapshotCommand } from './snapshot.ts';
import { validateCommand } from './validate.ts';

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function notYet(io: Io, name: string, issue: string) {
  return () => {
    io.stderr(`interlock ${name}: not available yet in this version (planned: ${issue}).`);
    io.setExitCode(EXIT_FAILURE);
  };
}

export async function main(argv: string[], io: Io = processIo()): Promise<void> {
  const cli = yargs(argv)
    .scriptName('interlock')
    .usage(
      '$0 <command> [options]\n\nTurns Docker Swarm cluster state into HAProxy / Nginx configuration and Carbon metrics.',
    )
    .version(version())
    .command(validateCommand(io))
    .command(renderCommand(io))
    .command(snapshotCommand(io))
    .command(
      'watch',
      'Run as a daemon: follow cluster events and keep the proxies in step',
      {},
      notYet(io, 'watch', 'the watch daemon'),
    )
    .command('schema', 'Print the JSON Schema of YAML / JSON configs', {}, () => {
      io.stdout(JSON.stringify(jsonSchema(), null, 2));
    })
    .demandCommand(1, 'Name a command: validate, render, snapshot, watch or schema.')
    .strict()
    .recommendCommands()
    .help()
    .alias('help', 'h')
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((message, error, y) => {
      if (error) throw error;
      io.stderr(`${y.help()}\n`);
      io.stderr(`interlock: ${message}`);
      io.setExitCode(EXIT_FAILURE);
    });
  await cli.parseAsync();
}

await main(hideBin(process.argv));
