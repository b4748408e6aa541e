/**
 * `interlock status`: the proxy fleet and the ACME certificates as the controller sees them, read
 * from its /healthz (`interlock watch --listen`). Tables for people, or the JSON (`--format json`:
 * `{ agents?, certificates? }`).
 * Exit codes: 0 when every agent runs its output's current bundle and no certificate is failing or
 * expired; 1 when one agent does not (not converged, stale, refused) or a certificate is failing or
 * expired (its host is still served, by its old or the default certificate: someone should look);
 * 2 when the controller cannot be read or shows neither a fleet nor certificates.
 */
import http from 'node:http';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import type { CertificateStatus } from '../acme/issuer.ts';
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

/** A header and rows as aligned columns, two spaces apart; the last column is not padded. */
function columns(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [fmt(header), ...rows.map(fmt)];
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
  lines.push(...columns(header, rows));
  const converged = fleet.list.filter((a) => a.state === 'converged').length;
  lines.push('', `${converged} of ${fleet.list.length} agents converged`);
  return lines.join('\n');
}

/** A date as `2026-12-02 06:40Z` with how far away it is, for the certificate table. */
function when(iso: string | null, now: number): string {
  if (!iso) return '-';
  const ms = Date.parse(iso);
  const d = (ms - now) / 86_400_000;
  const rel =
    Math.abs(d) >= 1
      ? `${Math.round(Math.abs(d))}d`
      : Math.abs(d) * 24 >= 1
        ? `${Math.round(Math.abs(d) * 24)}h`
        : `${Math.round(Math.abs(d) * 1440)}m`;
  return `${iso.slice(0, 16).replace('T', ' ')}Z (${d >= 0 ? 'in ' : ''}${rel}${d < 0 ? ' ago' : ''})`;
}

/** The certificate table `interlock status` prints: one row per certificate, never a key. */
export function certificateTable(certs: readonly CertificateStatus[], now: number): string {
  if (certs.length === 0) return 'no ACME certificate yet (no host asks for one)';
  const header = ['HOSTS', 'STATE', 'ISSUER', 'EXPIRES', 'NEXT RENEWAL', 'LAST ERROR'];
  const rows = certs.map((c) => [
    c.hosts.join(','),
    c.state,
    c.issuer ?? '-',
    when(c.notAfter, now),
    c.state === 'failing' && c.nextAttempt ? `retry ${when(c.nextAttempt, now)}` : when(c.nextRenewal, now),
    c.lastError ? c.lastError.message.split('\n')[0]?.slice(0, 100) || '-' : '-',
  ]);
  const bad = certs.filter((c) => c.state === 'failing' || c.state === 'expired').length;
  return [
    ...columns(header, rows),
    '',
    `${certs.length - bad} of ${certs.length} certificates fine${bad ? `, ${bad} failing or expired` : ''}`,
  ].join('\n');
}

export async function runStatus(io: Io, args: StatusArgs): Promise<void> {
  const address = args.address ?? io.env.INTERLOCK_STATUS_ADDRESS ?? '127.0.0.1:9090';
  const url = /^https?:\/\//.test(address) ? new URL('/healthz', address).toString() : `http://${address}/healthz`;
  let body: { agents?: FleetHealth; certificates?: CertificateStatus[] };
  try {
    const r = await get(url, args.timeout * 1000);
    body = JSON.parse(r.body) as typeof body;
  } catch (error) {
    io.stderr(
      `interlock: cannot read ${url}: ${(error as Error).message} (is \`interlock watch --listen ${address}\` running?)`,
    );
    io.setExitCode(EXIT_FAILURE);
    return;
  }
  const fleet = body.agents;
  const certs = body.certificates;
  if (!fleet && !certs) {
    io.stderr(
      `interlock: ${url} shows no fleet and no certificates: the controller's config has no \`agents\` and no \`acme\``,
    );
    io.setExitCode(EXIT_FAILURE);
    return;
  }
  const now = Date.now();
  if (args.format === 'json') {
    io.stdout(
      JSON.stringify({ ...(fleet ? { agents: fleet } : {}), ...(certs ? { certificates: certs } : {}) }, null, 2),
    );
  } else {
    const parts: string[] = [];
    if (fleet) parts.push(statusTable(fleet, now));
    if (certs) parts.push(`certificates (ACME):\n${certificateTable(certs, now)}`);
    io.stdout(parts.join('\n\n'));
  }
  const unconverged = fleet?.list.some((a) => a.state !== 'converged') ?? false;
  const badCert = certs?.some((c) => c.state === 'failing' || c.state === 'expired') ?? false;
  if (unconverged || badCert) io.setExitCode(EXIT_INVALID);
}

export function statusCommand(io: Io): CommandModule<object, StatusArgs> {
  return {
    command: 'status',
    describe:
      "Show the proxy fleet (every agent, the hash it runs, its last error) and the ACME certificates (hosts, expiry, next renewal, last error), from the controller's /healthz",
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
