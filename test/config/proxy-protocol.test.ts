/** The listener option `http.proxyProtocol` (issue 14): trusted networks are checked like policy CIDRs. */
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.ts';

const config = (trusted: unknown) => ({
  clusters: { local: {} },
  outputs: [{ kind: 'haproxy', file: 'out/haproxy.cfg', http: { port: 8080, proxyProtocol: { trusted } } }],
});

describe('http.proxyProtocol', () => {
  it('takes networks and addresses, IPv4 and IPv6', () => {
    expect(configSchema.safeParse(config(['10.0.0.0/8', '127.0.0.1', '2001:db8::/32'])).success).toBe(true);
  });
  it('refuses an empty list, a bad network and a hostile value, naming the fix', () => {
    expect(configSchema.safeParse(config([])).success).toBe(false);
    const bad = configSchema.safeParse(config(['10.0.0.1/8']));
    expect(bad.success).toBe(false);
    expect(JSON.stringify(bad.error?.issues)).toContain('10.0.0.0/8');
    for (const v of ['10.0.0.0/8 }', '10.0.0.0/8\n    bind :1', '10.0.0.0/8;', 'any']) {
      expect(configSchema.safeParse(config([v])).success, v).toBe(false);
    }
  });
});
