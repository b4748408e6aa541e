/**
 * The commands, each loaded only when it runs (see main.ts): the description here is what `--help`
 * lists; the command's own module has the same one (a unit test holds them equal).
 */
import type { CommandModule } from 'yargs';
import type { Io } from './io.ts';

// biome-ignore lint/suspicious/noExplicitAny: each command has its own option types
type AnyCommand = CommandModule<object, any>;

/** Every command: its description (for `--help`) and how to load it. */
export const COMMANDS: Record<string, { describe: string; load: (io: Io) => Promise<AnyCommand> }> = {
  validate: {
    describe: 'Check the config (and, with --snapshot, what it renders) and report every problem',
    load: async (io) => (await import('./validate.ts')).validateCommand(io),
  },
  render: {
    describe: 'Render every haproxy / nginx output from the live clusters or a --snapshot',
    load: async (io) => (await import('./render.ts')).renderCommand(io),
  },
  snapshot: {
    describe:
      'Write a snapshot of a live cluster: the fields interlock reads of the Engine API bodies of services, tasks, networks, nodes, containers',
    load: async (io) => (await import('./snapshot.ts')).snapshotCommand(io),
  },
  stats: {
    describe: 'Send container and service statistics to the carbon outputs (--once: print one round instead)',
    load: async (io) => (await import('./stats.ts')).statsCommand(io),
  },
  watch: {
    describe: 'Run as a daemon: follow cluster events and keep the proxies in step',
    load: async (io) => (await import('./watch.ts')).watchCommand(io),
  },
  agent: {
    describe: "Run beside a proxy: keep it on one output of the controller's (`watch` with `agents`)",
    load: async (io) => (await import('./agent.ts')).agentCommand(io),
  },
  status: {
    describe:
      "Show the proxy fleet (every agent, the hash it runs, its last error) and the ACME certificates (hosts, expiry, next renewal, last error), from the controller's /healthz",
    load: async (io) => (await import('./status.ts')).statusCommand(io),
  },
  schema: {
    describe: 'Print the JSON Schema of YAML / JSON configs',
    load: async (io) => ({
      command: 'schema',
      describe: 'Print the JSON Schema of YAML / JSON configs',
      builder: {},
      handler: async () => {
        const { jsonSchema } = await import('../config/schema.ts');
        io.stdout(JSON.stringify(jsonSchema(), null, 2));
      },
    }),
  },
};
