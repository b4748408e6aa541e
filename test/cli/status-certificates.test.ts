/** `interlock status` with ACME certificates: the table, the JSON and the exit code, from a real HTTP /healthz. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { CertificateStatus } from '../../src/acme/issuer.ts';
import type { Io } from '../../src/cli/io.ts';
import { certificateTable, runStatus } from '../../src/cli/status.ts';

const now = Date.parse('2026-12-02T06:00:00Z');
const valid: CertificateStatus = {
  hosts: ['app.example.com'],
  state: 'valid',
  issuer: 'Pebble Intermediate CA',
  notAfter: '2027-03-01T10:00:00.000Z',
  nextRenewal: '2027-01-30T10:00:00.000Z',
  lastError: null,
  nextAttempt: null,
};
const failing: CertificateStatus = {
  hosts: ['bad.example.com'],
  state: 'failing',
  issuer: null,
  notAfter: null,
  nextRenewal: null,
  lastError: { time: '2026-12-02T05:59:00.000Z', message: 'acme:rejectedIdentifier blocked by policy\nsecond line' },
  nextAttempt: '2026-12-02T07:00:00.000Z',
};

describe('certificate table', () => {
  it('shows hosts, state, issuer, expiry, next renewal or retry, and the first line of the error', () => {
    const text = certificateTable([valid, failing], now);
    expect(text).toMatch(
      /^app\.example\.com\s+valid\s+Pebble Intermediate CA\s+2027-03-01 10:00Z \(in 89d\)\s+2027-01-30 10:00Z \(in 59d\)\s+-$/m,
    );
    expect(text).toMatch(
      /^bad\.example\.com\s+failing\s+-\s+-\s+retry 2026-12-02 07:00Z \(in 1h\)\s+acme:rejectedIdentifier blocked by policy$/m,
    );
    expect(text).not.toContain('second line');
    expect(text).toContain('1 of 2 certificates fine, 1 failing or expired');
  });

  it('says so when no host asks for a certificate', () => {
    expect(certificateTable([], now)).toBe('no ACME certificate yet (no host asks for one)');
  });
});

describe('interlock status against a /healthz', () => {
  let server: http.Server | undefined;
  afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

  async function serve(body: unknown): Promise<string> {
    const s = http.createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(body));
    });
    server = s;
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    return `127.0.0.1:${(s.address() as AddressInfo).port}`;
  }

  async function status(address: string, format: 'table' | 'json') {
    const out: string[] = [];
    const err: string[] = [];
    let code = 0;
    const io: Io = {
      stdout: (t) => out.push(t),
      stderr: (t) => err.push(t),
      setExitCode: (c) => {
        code = c;
      },
      cwd: process.cwd(),
      env: {},
    };
    await runStatus(io, { address, format, timeout: 5 });
    return { out: out.join('\n'), err: err.join('\n'), code };
  }

  it('prints the certificates without a fleet, exit 0 when all are fine', async () => {
    const address = await serve({ ok: true, certificates: [valid] });
    const r = await status(address, 'table');
    expect(r.out).toContain('certificates (ACME):');
    expect(r.out).toContain('app.example.com');
    expect(r.code).toBe(0);
    const j = await status(address, 'json');
    expect(JSON.parse(j.out)).toEqual({ certificates: [valid] });
  });

  it('exits 1 while a certificate is failing', async () => {
    const address = await serve({ ok: true, certificates: [valid, failing] });
    expect((await status(address, 'table')).code).toBe(1);
  });

  it('exits 2 with a clear line when the controller has neither agents nor acme', async () => {
    const address = await serve({ ok: true });
    const r = await status(address, 'table');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/no `agents` and no `acme`/);
  });
});
