#!/usr/bin/env node
/** interlock's command line: yargs wiring only; each command lives in its own file. */
import { readFileSync } from 'node:fs';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { jsonSchema } from '../config/schema.ts';
import { agentCommand } from './agent.ts';
import { EXIT_FAILURE, type Io, processIo } from './io.ts';
import { renderCommand } from './render.ts';
import { snapshotCommand } from './snapshot.ts';
import { statsCommand } from './stats.ts';
import { statusCommand } from './status.ts';
import { validateCommand } from './validate.ts';
import { watchCommand } from './watch.ts';

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
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
    .command(statsCommand(io))
    .command(watchCommand(io))
    .command(agentCommand(io))
    .command(statusCommand(io))
    .command('schema', 'Print the JSON Schema of YAML / JSON configs', {}, () => {
      io.stdout(JSON.stringify(jsonSchema(), null, 2));
    })
    .demandCommand(1, 'Name a command: validate, render, snapshot, stats, watch, agent, status or schema.')
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
