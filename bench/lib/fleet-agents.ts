/**
 * Many `interlock agent`s in one process, for the fleet bench's idle-cost figure: each has its own
 * folder, identity and long-poll connection; check and reload are no-ops.
 *
 *   fleet-agents.ts CONTROLLER TOKEN_FILE DIR WORKER COUNT
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Agent } from '../../src/agent/agent.ts';
import { createLogger } from '../../src/runtime/log.ts';

const [controller, tokenFile, dir, worker, count] = process.argv.slice(2);
const token = readFileSync(tokenFile as string, 'utf8').trim();
const log = createLogger({ format: 'logfmt', level: 'error', write: (l) => process.stderr.write(l) });
const agents = Array.from({ length: Number(count) }, (_, i) => {
  const name = `idle-${worker}-${i}`;
  return new Agent({
    controller: controller as string,
    token,
    output: 'edge',
    dir: path.join(dir as string, name),
    instance: name,
    node: 'bench',
    check: { kind: 'none' },
    reload: { kind: 'command', command: ['true'] },
    log,
    env: process.env,
  });
});
for (const a of agents) await a.start();
const stop = () => {
  void Promise.all(agents.map((a) => a.stop())).then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
