/** The issuer's rules that need no ACME server: renewal time, backoff, Retry-After, secret files, the responder. */
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { errorMessage, parseRetryAfter, renewAtMs, retryDelayMs } from '../../src/acme/issuer.ts';
import { ChallengeResponder } from '../../src/acme/responder.ts';
import { AcmeStore, writeSecret } from '../../src/acme/store.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

describe('renewal time', () => {
  it('is when a third of the lifetime is left: day 60 of 90, second 40 of 60', () => {
    expect(renewAtMs({ notBeforeMs: 0, notAfterMs: 90 * DAY })).toBe(60 * DAY);
    expect(renewAtMs({ notBeforeMs: 1000, notAfterMs: 61_000 })).toBe(41_000);
  });
});

describe('retry delay', () => {
  const retry = { minMs: 60_000, maxMs: 6 * HOUR };
  it('doubles from the minimum and stops at the maximum', () => {
    expect([1, 2, 3, 4].map((n) => retryDelayMs(n, retry, undefined))).toEqual([60_000, 120_000, 240_000, 480_000]);
    expect(retryDelayMs(30, retry, undefined)).toBe(6 * HOUR);
  });
  it("waits at least the server's Retry-After", () => {
    expect(retryDelayMs(1, retry, { retryAfterMs: 600_000 })).toBe(600_000);
    expect(retryDelayMs(5, retry, { retryAfterMs: 1000 })).toBe(960_000);
  });
  it('waits at least an hour after a rate-limit error, longer when the server says so', () => {
    const type = 'urn:ietf:params:acme:error:rateLimited';
    expect(retryDelayMs(1, retry, { type })).toBe(HOUR);
    expect(retryDelayMs(1, retry, { type, retryAfterMs: 3 * HOUR })).toBe(3 * HOUR);
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:10:00 GMT', now)).toBe(600_000);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
});

describe('storage', () => {
  let dir = '';
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('writes secrets 0600 in 0700 folders, atomically (no temp file left), whatever the umask', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'interlock-acme-'));
    const store = new AcmeStore(path.join(dir, 'acme'));
    const old = process.umask(0);
    try {
      await store.init();
      await store.write(path.join(store.dir, 'state.json'), 'one');
      await store.write(store.certFile('app.example.com', 'two'), 'two');
      await store.write(store.certFile('app.example.com', 'two'), 'two');
    } finally {
      process.umask(old);
    }
    const file = store.certFile('app.example.com', 'two');
    expect(await readFile(file, 'utf8')).toBe('two');
    expect((await stat(path.join(store.dir, 'state.json'))).mode & 0o777).toBe(0o600);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(store.dir)).mode & 0o777).toBe(0o700);
    expect((await stat(path.dirname(file))).mode & 0o777).toBe(0o700);
    // Named after the content: a renewed certificate is a new name, which makes the proxies reload.
    expect(await readdir(path.dirname(file))).toEqual([path.basename(file)]);
    expect(path.basename(file)).toMatch(/^app\.example\.com\.[0-9a-f]{12}\.pem$/);
    expect(store.certFile('app.example.com', 'three')).not.toBe(file);
    expect([...(await store.certFiles()).entries()]).toEqual([['app.example.com', [file]]]);
  });

  it('refuses a host name that would leave the folder', () => {
    const store = new AcmeStore('/x');
    expect(() => store.certFile('../../etc/passwd', 'x')).toThrow(/not a host name/);
    expect(() => store.certFile('a/b', 'x')).toThrow(/not a host name/);
  });

  it('keeps state across instances (what makes orders survive a restart)', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'interlock-acme-'));
    const a = new AcmeStore(dir);
    await a.init();
    const state = await a.readState();
    state.hosts['app.example.com'] = { order: { url: 'https://ca/order/1', createdMs: 5 } };
    await a.writeState(state);
    const b = await new AcmeStore(dir).readState();
    expect(b.hosts['app.example.com']?.order?.url).toBe('https://ca/order/1');
    expect((await stat(path.join(dir, 'state.json'))).mode & 0o777).toBe(0o600);
  });

  it('writeSecret leaves the old file when the rename cannot happen', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'interlock-acme-'));
    await expect(writeSecret(path.join(dir, 'missing', 'f'), 'x')).rejects.toThrow();
    expect(await readdir(dir)).toEqual([]);
  });
});

describe('challenge responder', () => {
  it('answers a known token with its key authorization, and nothing else', async () => {
    const r = new ChallengeResponder();
    r.set('tok_EN-1', 'tok_EN-1.thumb');
    expect(r.answer('/.well-known/acme-challenge/tok_EN-1')).toBe('tok_EN-1.thumb');
    expect(r.answer('/.well-known/acme-challenge/other')).toBeUndefined();
    expect(r.answer('/.well-known/acme-challenge/../x')).toBeUndefined();
    expect(r.answer('/tok_EN-1')).toBeUndefined();
    r.delete('tok_EN-1');
    expect(r.answer('/.well-known/acme-challenge/tok_EN-1')).toBeUndefined();
  });

  it('serves over HTTP on loopback', async () => {
    const r = new ChallengeResponder();
    await r.listen('127.0.0.1', 0);
    try {
      r.set('abc', 'abc.key');
      const port = r.port;
      const ok = await fetch(`http://127.0.0.1:${port}/.well-known/acme-challenge/abc`);
      expect(ok.status).toBe(200);
      expect(await ok.text()).toBe('abc.key');
      expect((await fetch(`http://127.0.0.1:${port}/.well-known/acme-challenge/zzz`)).status).toBe(404);
    } finally {
      await r.close();
    }
  });
});

describe('ACME error messages', () => {
  it("say the challenge's error, not the authorization's JSON", () => {
    const authz = {
      status: 'invalid',
      identifier: { type: 'dns', value: 'hello.demo.test' },
      challenges: [
        {
          type: 'http-01',
          status: 'invalid',
          error: {
            type: 'urn:ietf:params:acme:error:connection',
            detail:
              'Get "http://hello.demo.test:5002/.well-known/acme-challenge/x": dial tcp 127.0.0.1:5002: connect: connection refused',
          },
        },
      ],
    };
    expect(errorMessage(new Error(JSON.stringify(authz)), undefined)).toBe(
      'acme:connection Get "http://hello.demo.test:5002/.well-known/acme-challenge/x": dial tcp 127.0.0.1:5002: connect: connection refused',
    );
  });
  it('keep other messages, on one line, with the problem type first', () => {
    expect(errorMessage(new Error('socket hang up\n  at x'), undefined)).toBe('socket hang up at x');
    expect(
      errorMessage(new Error('Error creating new order'), {
        status: 400,
        type: 'urn:ietf:params:acme:error:rejectedIdentifier',
        detail: 'blocked by policy',
      }),
    ).toBe('acme:rejectedIdentifier: blocked by policy (Error creating new order)');
  });
});
