/**
 * `interlock agent`: keeps the proxy beside it on one output of the controller (`interlock watch`
 * with `agents` in its config). Configured by flags or INTERLOCK_* environment variables (no
 * interlock config file on proxy nodes). Logs go to stderr. Exit codes: 0 after SIGTERM / SIGINT;
 * 1 for missing or contradictory flags; 2 when the token file cannot be read.
 */
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { Agent, type AgentCheck, type AgentOptions } from '../agent/agent.ts';
import type { FileOutput } from '../config/schema.ts';
import { readToken } from '../fleet/controller.ts';
import { createLogger, type LogFormat, type LogLevel } from '../runtime/log.ts';
import { EXIT_FAILURE, type Io } from './io.ts';
import { logOptions } from './options.ts';
import { runCommand } from './run.ts';

export interface AgentArgs {
  controller?: string;
  tokenFile?: string;
  output?: string;
  dir?: string;
  instance?: string;
  node?: string;
  proxyBinary?: string;
  checkCommand?: string;
  check?: boolean;
  reloadCommand?: string;
  reloadPidFile?: string;
  reloadSignal?: string;
  reloadMasterSocket?: string;
  ca?: string;
  logFormat: LogFormat;
  logLevel: LogLevel;
}

/** `--token-file` ↔ INTERLOCK_TOKEN_FILE. */
export function envName(flag: string): string {
  return `INTERLOCK_${flag.replace(/-/g, '_').toUpperCase()}`;
}

const STRING_FLAGS = [
  'controller',
  'token-file',
  'output',
  'dir',
  'instance',
  'node',
  'proxy-binary',
  'check-command',
  'reload-command',
  'reload-pid-file',
  'reload-signal',
  'reload-master-socket',
  'ca',
] as const;

function camel(flag: string): keyof AgentArgs {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()) as keyof AgentArgs;
}

/** Words split on spaces: `haproxy -c -f {file}`. No quoting: give a script for anything more. */
function argv(text: string): string[] {
  return text.split(/\s+/).filter(Boolean);
}

/** The flags (or their environment variables) → agent settings, or the problem to print. */
export function agentSettings(
  args: AgentArgs,
  env: Readonly<Record<string, string | undefined>>,
  cwd: string,
):
  | { ok: true; value: Omit<AgentOptions, 'token' | 'log' | 'env'> & { tokenFile: string } }
  | { ok: false; error: string } {
  const v = (flag: (typeof STRING_FLAGS)[number]): string | undefined => {
    const given = args[camel(flag)];
    const value = typeof given === 'string' && given !== '' ? given : env[envName(flag)];
    return value === undefined || value === '' ? undefined : value;
  };
  const missing = (['controller', 'token-file', 'output', 'dir'] as const).filter((f) => v(f) === undefined);
  if (missing.length > 0)
    return {
      ok: false,
      error: `missing ${missing.map((f) => `--${f} (or ${envName(f)})`).join(', ')}`,
    };
  const controller = v('controller') as string;
  let url: URL;
  try {
    url = new URL(controller);
  } catch {
    return { ok: false, error: `--controller ${controller}: write http://HOST:PORT or https://HOST:PORT` };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return { ok: false, error: `--controller ${controller}: write http://HOST:PORT or https://HOST:PORT` };
  const output = v('output') as string;
  if (!/^[A-Za-z0-9_[\]-]+$/.test(output))
    return { ok: false, error: `--output ${output}: an output name of the controller's config` };
  const reloads = (['reload-command', 'reload-pid-file', 'reload-master-socket'] as const).filter(
    (f) => v(f) !== undefined,
  );
  if (reloads.length > 1)
    return { ok: false, error: `give one reload method, not ${reloads.map((f) => `--${f}`).join(' and ')}` };
  const signal = v('reload-signal');
  if (signal !== undefined && !['SIGHUP', 'SIGUSR1', 'SIGUSR2'].includes(signal))
    return { ok: false, error: `--reload-signal ${signal}: write SIGHUP, SIGUSR1 or SIGUSR2` };
  if (signal !== undefined && v('reload-pid-file') === undefined)
    return { ok: false, error: '--reload-signal goes with --reload-pid-file' };
  const abs = (p: string) => path.resolve(cwd, p);
  let reload: NonNullable<FileOutput['reload']> = { kind: 'none' };
  if (v('reload-command')) reload = { kind: 'command', command: argv(v('reload-command') as string) };
  else if (v('reload-pid-file'))
    reload = {
      kind: 'signal',
      pidFile: abs(v('reload-pid-file') as string),
      ...(signal ? { signal: signal as 'SIGHUP' } : {}),
    };
  else if (v('reload-master-socket'))
    reload = { kind: 'haproxy-master', socket: abs(v('reload-master-socket') as string) };
  if (args.check === false && v('check-command') !== undefined)
    return { ok: false, error: '--no-check and --check-command contradict each other' };
  const check: AgentCheck =
    args.check === false || env.INTERLOCK_CHECK === 'false'
      ? { kind: 'none' }
      : v('check-command')
        ? { kind: 'command', command: argv(v('check-command') as string) }
        : { kind: 'binary', ...(v('proxy-binary') ? { path: abs(v('proxy-binary') as string) } : {}) };
  const host = os.hostname();
  return {
    ok: true,
    value: {
      controller: url.toString(),
      tokenFile: abs(v('token-file') as string),
      output,
      dir: abs(v('dir') as string),
      instance: v('instance') ?? host,
      node: v('node') ?? host,
      check,
      reload,
      ...(v('ca') ? { ca: abs(v('ca') as string) } : {}),
    },
  };
}

export async function runAgent(io: Io, args: AgentArgs): Promise<void> {
  const log = createLogger({ format: args.logFormat, level: args.logLevel, write: (line) => io.stderr(line) });
  // The command runner's signal handling, as every long-running command: SIGTERM / SIGINT stop
  // (a second one exits at once, 130), failures are logged, exit codes 0 / 1 / 2.
  await runCommand(io, { name: 'agent', configOption: undefined, log, daemon: true }, async (run) => {
    const settings = agentSettings(args, io.env, io.cwd);
    if (!settings.ok) {
      log.error(`interlock agent: ${settings.error}`);
      return 'invalid';
    }
    const { tokenFile, ca, ...rest } = settings.value;
    let token: string;
    let caText: string | undefined;
    try {
      token = await readToken(tokenFile);
      caText = ca ? await readFile(ca, 'utf8') : undefined;
    } catch (error) {
      log.error((error as Error).message);
      io.setExitCode(EXIT_FAILURE);
      return undefined;
    }
    if (rest.reload.kind === 'none')
      log.warn(
        'no reload method given: files are written, the proxy is not told (give --reload-master-socket, --reload-pid-file or --reload-command)',
      );
    if (rest.check.kind === 'none') log.warn('--no-check: bundles are applied without asking the local proxy');
    const agent = new Agent({ ...rest, token, ...(caText ? { ca: caText } : {}), log, env: io.env });
    log.info('agent starting', {
      controller: rest.controller,
      output: rest.output,
      dir: rest.dir,
      instance: rest.instance,
      node: rest.node,
      check: rest.check.kind,
      reload: rest.reload.kind,
    });
    await agent.start();
    await run.untilStopped({ start() {}, stop: () => agent.stop() });
    return 'ok';
  });
}

export function agentCommand(io: Io): CommandModule<object, AgentArgs> {
  return {
    command: 'agent',
    describe: "Run beside a proxy: keep it on one output of the controller's (`watch` with `agents`)",
    builder: (y: Argv) =>
      logOptions(y, 'debug shows every poll')
        .option('controller', {
          type: 'string',
          describe: 'Controller agents URL, http(s)://HOST:PORT [INTERLOCK_CONTROLLER]',
        })
        .option('token-file', { type: 'string', describe: 'File holding the shared token [INTERLOCK_TOKEN_FILE]' })
        .option('output', { type: 'string', describe: "Name of the controller's output to run [INTERLOCK_OUTPUT]" })
        .option('dir', { type: 'string', describe: 'Folder the proxy files go to [INTERLOCK_DIR]' })
        .option('instance', {
          type: 'string',
          describe: 'This agent in the status. Default: the host name [INTERLOCK_INSTANCE]',
        })
        .option('node', {
          type: 'string',
          describe: 'Node shown in the status. Default: the host name [INTERLOCK_NODE]',
        })
        .option('proxy-binary', {
          type: 'string',
          describe: 'haproxy / nginx binary for the check. Default: on PATH [INTERLOCK_PROXY_BINARY]',
        })
        .option('check-command', {
          type: 'string',
          describe: 'Own check command, {file} = main file (words split on spaces) [INTERLOCK_CHECK_COMMAND]',
        })
        .option('check', { type: 'boolean', describe: '--no-check: apply bundles unchecked (not recommended)' })
        .option('reload-master-socket', {
          type: 'string',
          describe: 'Reload HAProxy by `reload` on its master socket (-S) [INTERLOCK_RELOAD_MASTER_SOCKET]',
        })
        .option('reload-pid-file', {
          type: 'string',
          describe: 'Reload by a signal to the pid in this file [INTERLOCK_RELOAD_PID_FILE]',
        })
        .option('reload-signal', {
          type: 'string',
          describe: 'Signal for --reload-pid-file. Default: SIGUSR2 HAProxy, SIGHUP Nginx [INTERLOCK_RELOAD_SIGNAL]',
        })
        .option('reload-command', {
          type: 'string',
          describe: 'Reload by running this command (words split on spaces) [INTERLOCK_RELOAD_COMMAND]',
        })
        .option('ca', {
          type: 'string',
          describe: 'CA certificate (PEM) to trust for an https controller [INTERLOCK_CA]',
        }) as unknown as Argv<AgentArgs>,
    handler: (args: ArgumentsCamelCase<AgentArgs>) => runAgent(io, args),
  };
}
