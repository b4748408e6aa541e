/**
 * checkSpec copies the fields it checked into a new spec: a field it forgot would be dropped
 * without a word. A spec with every field set must come back with every field.
 */
import { describe, expect, it } from 'vitest';
import { checkSpec } from '../../src/routes/spec.ts';
import type { RouteSpec } from '../../src/routes/types.ts';
import { everyField } from '../fixtures/routes/every-field.ts';

const where = { cluster: 'local', service: 'shop', rule: 'custom', labels: undefined };

describe('checkSpec', () => {
  it('keeps every field of the specs it accepts (an HTTP one and a TCP one cover them all)', () => {
    const { listenPort, ...http } = everyField;
    const tcp: RouteSpec = {
      mode: 'tcp',
      listenPort,
      port: 5432,
      network: 'appnet',
      backendMode: 'task',
      balance: 'leastconn',
    };
    const kept = new Set<string>();
    for (const spec of [{ ...http, mode: 'http' as const }, tcp]) {
      const r = checkSpec(spec, where);
      expect(r.diagnostics).toEqual([]);
      expect(Object.keys(r.spec ?? {}).sort()).toEqual(Object.keys(spec).sort());
      for (const k of Object.keys(r.spec ?? {})) kept.add(k);
    }
    expect([...kept].sort()).toEqual(Object.keys(everyField).sort());
  });
});
