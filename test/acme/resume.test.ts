/**
 * An order in flight when interlock stopped, resumed by the next process. The ACME server is
 * acme-client's `Client` with its network methods replaced, so the CA's answers come in an exact
 * order: the real-CA version of these cases (pebble, a daemon killed mid-order) cannot choose when
 * the kill lands. The case pinned here is the one that made that test time out: the stopped
 * process had answered the challenge, the CA was still validating when the new process resumed the
 * order, and the validation failed (the old responder was gone).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as acme from 'acme-client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AcmeIssuer } from '../../src/acme/issuer.ts';
import { AcmeStore } from '../../src/acme/store.ts';
import type { AcmeConfig } from '../../src/config/schema.ts';
import { createLogger } from '../../src/runtime/log.ts';
import { selfSignedPair } from '../render/proxy-check.ts';
import { waitFor } from '../watch/it-helpers.ts';

const HOST = 'resumed.example.test';
const DIRECTORY = 'https://acme.example.test/dir';
const HOUR = 3_600_000;
const FAILED = /ACME order failed/;

type Status = 'pending' | 'processing' | 'ready' | 'valid' | 'invalid';
interface FakeOrder {
  url: string;
  status: Status;
  authz: string;
}
interface FakeAuthz {
  url: string;
  status: Status;
  challenge: { type: 'http-01'; url: string; token: string; status: Status; error?: unknown };
  /** What the CA's validation concludes. */
  outcome: 'valid' | 'invalid';
}

/** The CA: orders and authorizations by URL, and what was asked of it. */
function fakeCa() {
  const orders = new Map<string, FakeOrder>();
  const authzs = new Map<string, FakeAuthz>();
  const calls = { createOrder: 0, completeChallenge: [] as string[] };
  /** What the CA's validation of the next new order concludes. */
  const next = { outcome: 'valid' as 'valid' | 'invalid' };
  /** Orders the CA makes invalid when they are finalized (as pebble did once: "orderNotReady"). */
  const refuseFinalize = new Set<string>();
  const add = (n: number, challenge: Status, outcome: 'valid' | 'invalid') => {
    const order: FakeOrder = { url: `https://acme.example.test/order/${n}`, status: 'pending', authz: `authz/${n}` };
    orders.set(order.url, order);
    authzs.set(order.authz, {
      url: order.authz,
      status: 'pending',
      challenge: { type: 'http-01', url: `chal/${n}`, token: `token${n}`, status: challenge },
      outcome,
    });
    return order;
  };
  const view = (o: FakeOrder) => ({
    url: o.url,
    status: o.status,
    authorizations: [o.authz],
    finalize: `${o.url}/fin`,
  });
  const authzView = (a: FakeAuthz) => ({
    url: a.url,
    status: a.status,
    identifier: { type: 'dns', value: HOST },
    challenges: [{ ...a.challenge }],
  });
  /** The CA validates: the authorization (and its order) becomes valid/ready or invalid. */
  const validate = (a: FakeAuthz) => {
    const order = [...orders.values()].find((o) => o.authz === a.url) as FakeOrder;
    if (a.outcome === 'valid') {
      a.status = a.challenge.status = 'valid';
      order.status = 'ready';
    } else {
      a.status = a.challenge.status = 'invalid';
      a.challenge.error = {
        type: 'urn:ietf:params:acme:error:connection',
        detail: '127.0.0.1: Fetching http://resumed.example.test/: connection refused',
      };
      order.status = 'invalid';
    }
  };
  const p = acme.Client.prototype;
  vi.spyOn(p, 'getOrder').mockImplementation(async (o) => view(orders.get(o.url) as FakeOrder) as acme.Order);
  vi.spyOn(p, 'createOrder').mockImplementation(async () => {
    calls.createOrder += 1;
    return view(add(orders.size + 1, 'pending', next.outcome)) as acme.Order;
  });
  vi.spyOn(p, 'getAuthorizations').mockImplementation(
    async (o) => o.authorizations.map((u) => authzView(authzs.get(u) as FakeAuthz)) as acme.Authorization[],
  );
  vi.spyOn(p, 'getChallengeKeyAuthorization').mockImplementation(async (c) => `${c.token}.thumbprint`);
  vi.spyOn(p, 'completeChallenge').mockImplementation(async (c) => {
    calls.completeChallenge.push(c.url);
    const a = [...authzs.values()].find((x) => x.challenge.url === c.url) as FakeAuthz;
    a.challenge.status = 'processing';
    return { ...a.challenge } as never;
  });
  vi.spyOn(p, 'waitForValidStatus').mockImplementation(async (value: unknown) => {
    const item = value as { url: string };
    const a = authzs.get(item.url);
    if (a) {
      if (a.challenge.status === 'processing') validate(a);
      if (a.status !== 'valid') throw new Error(`Operation is invalid: ${JSON.stringify(authzView(a))}`);
      return authzView(a) as never;
    }
    const o = orders.get(item.url) as FakeOrder;
    if (o.status !== 'valid') throw new Error('Operation is invalid');
    return view(o) as never;
  });
  vi.spyOn(p, 'finalizeOrder').mockImplementation(async (o) => {
    const order = orders.get(o.url) as FakeOrder;
    if (refuseFinalize.has(order.url)) order.status = 'invalid';
    if (order.status !== 'ready') throw new Error(`Order's status ("${order.status}") was not ready`);
    order.status = 'valid';
    return view(order) as acme.Order;
  });
  vi.spyOn(p, 'getCertificate').mockImplementation(async () => selfSignedPair(HOST).cert);
  vi.spyOn(p, 'createAccount').mockImplementation(async () => {
    throw new Error('the account is known: no registration expected');
  });
  return { add, calls, orders, next, refuseFinalize };
}

describe('an order in flight across a restart', () => {
  let dir = '';
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'interlock-acme-resume-'));
  });
  const running: AcmeIssuer[] = [];
  afterEach(async () => {
    for (const r of running.splice(0)) await r.stop();
    vi.restoreAllMocks();
    await rm(dir, { recursive: true, force: true });
  });

  /** Storage as the stopped process left it: account, the order's URL and its key. */
  async function stoppedWith(orderUrl: string): Promise<void> {
    const store = new AcmeStore(path.join(dir, 'acme'));
    await store.init();
    const key = (await acme.crypto.createPrivateEcdsaKey('P-256')).toString();
    await store.write(store.accountKeyFile, key);
    await store.write(store.orderKeyFile(HOST), key);
    await store.writeState({
      version: 1,
      accounts: { [DIRECTORY]: { url: 'https://acme.example.test/acct/1' } },
      hosts: { [HOST]: { order: { url: orderUrl, createdMs: 0 } } },
    });
  }

  async function issuer() {
    const lines: string[] = [];
    let changes = 0;
    const config = {
      directory: DIRECTORY,
      storage: 'acme',
      httpPort: 80,
      challenge: { address: '127.0.0.1', port: 0 },
      retry: { min: '1h', max: '1h' },
    } as AcmeConfig;
    const it = new AcmeIssuer({
      config,
      configDir: dir,
      log: createLogger({ format: 'logfmt', level: 'info', write: (l) => lines.push(l.trimEnd()) }),
      onChange: () => {
        changes += 1;
      },
    });
    await it.start();
    running.push(it);
    return { it, lines, changes: () => changes };
  }

  /** A new process with the stopped one's storage, wanting HOST: until a certificate or a failure. */
  async function resume(orderUrl: string) {
    await stoppedWith(orderUrl);
    const started = await issuer();
    const before = Date.now();
    started.it.want([HOST]);
    await waitFor(
      'a certificate or a failure',
      () => started.changes() > 0 || started.lines.some((l) => FAILED.test(l)),
    );
    return { acmeIssuer: started.it, lines: started.lines, before };
  }

  it('the CA was still validating the answered challenge and it failed: one new order at once, not after the retry delay', async () => {
    const ca = fakeCa();
    const first = ca.add(1, 'processing', 'invalid');
    const { acmeIssuer, lines } = await resume(first.url);
    expect(lines.join('\n')).not.toMatch(/ACME order failed/);
    expect(lines.some((l) => /msg="ACME order resumed".*status=pending/.test(l))).toBe(true);
    const invalid = lines.find((l) => /ACME order in flight became invalid/.test(l)) ?? '';
    expect(invalid).toMatch(/acme:connection.*connection refused/);
    expect(ca.calls.createOrder).toBe(1);
    // The old challenge was not answered again; the new one was.
    expect(ca.calls.completeChallenge).toEqual(['chal/2']);
    expect(acmeIssuer.status()[0]).toMatchObject({ state: 'valid', lastError: null });
    expect(acmeIssuer.certificates().get(HOST)).toBeDefined();
  });

  it('the CA had not validated it yet and it succeeds: the resumed order gives the certificate, no new order', async () => {
    const ca = fakeCa();
    const first = ca.add(1, 'processing', 'valid');
    const { acmeIssuer } = await resume(first.url);
    expect(ca.calls.createOrder).toBe(0);
    expect(ca.calls.completeChallenge).toEqual([]);
    expect(acmeIssuer.status()[0]).toMatchObject({ state: 'valid' });
  });

  it('the CA makes the resumed order invalid only when it is finalized: one new order at once', async () => {
    const ca = fakeCa();
    const first = ca.add(1, 'processing', 'valid');
    ca.refuseFinalize.add(first.url);
    const { acmeIssuer, lines } = await resume(first.url);
    expect(lines.join('\n')).not.toMatch(/ACME order failed/);
    expect(lines.some((l) => /ACME order in flight became invalid/.test(l))).toBe(true);
    expect(ca.calls.createOrder).toBe(1);
    expect(acmeIssuer.status()[0]).toMatchObject({ state: 'valid', lastError: null });
  });

  it('a resumed order the CA refuses gets one new order; when that fails too, the ordinary backoff', async () => {
    const ca = fakeCa();
    const first = ca.add(1, 'pending', 'invalid');
    ca.next.outcome = 'invalid';
    const { acmeIssuer, before } = await resume(first.url);
    expect(ca.calls.createOrder).toBe(1);
    expect(ca.calls.completeChallenge).toEqual(['chal/1', 'chal/2']);
    const status = acmeIssuer.status()[0];
    expect(status?.state).toBe('failing');
    expect(status?.lastError?.message).toMatch(/connection refused/);
    expect(Date.parse(status?.nextAttempt ?? '') - before).toBeGreaterThanOrEqual(HOUR - 1000);
    // No third order meanwhile.
    await new Promise((r) => setTimeout(r, 200));
    expect(ca.calls.createOrder).toBe(1);
  });
});
