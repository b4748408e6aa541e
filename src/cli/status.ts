/**
 * `interlock status`: the proxy fleet as the controller sees it, read from its /healthz
 * (`interlock watch --listen`). A table for people, or the JSON (`--format json`).
 * Exit codes: 0 when every agent runs its output's current bundle; 1 when one does not (not
 * converged, stale, refused); 2 when the controller cannot be read.
 */
import http from 'node:http';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import type { FleetHealth } from '../fleet/server.ts';
import { EXIT_FAILURE, EXIT_INVALID, type Io } from './io.ts';

export interface StatusArgs {
  address?: string;
  format: 'table' | 'json';
  timeout: number;
}

function get(url: string, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

function ago(iso: string, now: number): string {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  return s < 120 ? `${s}s ago` : s < 7200 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`;
}

/** The table `interlock status` prints. */
export function statusTable(fleet: FleetHealth, now: number): string {
  const lines: string[] = [];
  const outputs = Object.entries(fleet.outputs);
  for (const [name, o] of outputs)
    lines.push(`output ${name}: ${o.hash ? `hash ${o.hash.slice(0, 12)} since ${o.since}` : 'no bundle yet'}`);
  if (outputs.length > 0) lines.push('');
  const header = ['OUTPUT', 'INSTANCE', 'NODE', 'PROXY', 'STATE', 'APPLIED', 'LAST SEEN', 'ERROR'];
  const rows = fleet.list.map((a) => [
    a.output,
    a.instance,
    a.node || '-',
    a.proxy ?? '-',
    a.state,
    a.applied ? a.applied.slice(0, 12) : '-',
    ago(a.lastSeen, now),
    (a.error ?? '').split('\n')[0]?.slice(0, 80) || '-',
  ]);
  if (rows.length === 0) {
    lines.push('no agent has asked yet');
    return lines.join('\n');
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  lines.push(fmt(header), ...rows.map(fmt));
  const converged = fleet.list.filter((a) => a.state === 'converged').length;
  lines.push('', `${converged} of ${fleet.list.length} agents converged`);
  return lines.join('\n');
}

export async function runStatus(io: Io, args: StatusArgs): Promise<void> {
  const address = args.address ?? io.env.INTERLOCK_STATUS_ADDRESS ?? '127.0.0.1:9090';
  const url = /^https?:\/\//.test(address) ? new URL('/healthz', address).toString() : `http://${address}/healthz`;
  let body: { agents?: FleetHealth };
  try {
    const r = await get(url, args.timeout * 1000);
    body = JSON.parse(r.body) as { agents?: FleetHealth };
  } catch (error) {
    io.stderr(
      `interlock: cannot read ${url}: ${(error as Error).message} (is \`interlock watch --listen ${address}\` running?)`,
    );
    io.setExitCode(EXIT_FAILURE);
    return;
  }
  const fleet = body.agents;
  if (!fleet) {
    io.stderr(`interlock: ${url} shows no fleet: the controller's config has no \`agents\``);
    io.setExitCode(EXIT_FAILURE);
    return;
  }
  if (args.format === 'json') io.stdout(JSON.stringify(fleet, null, 2));
  else io.stdout(statusTable(fleet, Date.now()));
  if (fleet.list.some((a) => a.state !== 'converged')) io.setExitCode(EXIT_INVALID);
}

export function statusCommand(io: Io): CommandModule<object, StatusArgs> {
  return {
    command: 'status',
    describe: "Show the proxy fleet: every agent, the hash it runs, its last error (from the controller's /healthz)",
    builder: (y: Argv) =>
      y
        .option('address', {
          alias: 'a',
          type: 'string',
          describe:
            "The controller's --listen address, HOST:PORT or a URL [INTERLOCK_STATUS_ADDRESS]. Default: 127.0.0.1:9090",
        })
        .option('format', {
          alias: 'f',
          choices: ['table', 'json'] as const,
          default: 'table' as const,
          describe: 'A table for people, or JSON',
        })
        .option('timeout', {
          type: 'number',
          default: 5,
          describe: 'Seconds to wait for the controller',
        }) as unknown as Argv<StatusArgs>,
    handler: (args: ArgumentsCamelCase<StatusArgs>) => runStatus(io, args),
  };
}
