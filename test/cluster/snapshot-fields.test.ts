import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import type { SnapshotDocument } from '../../src/cluster/snapshot.ts';
import { type Allow, SNAPSHOT_FIELDS, trimSnapshot } from '../../src/cluster/snapshot-fields.ts';
import { ENTRY_SCHEMAS, mapSnapshot, parseSnapshotText } from '../../src/cluster/snapshot-map.ts';
import { buildRoutes } from '../../src/routes/build.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const demoText = readFileSync(path.join(ROOT, 'examples/swarm-demo.snapshot.json'), 'utf8');

interface Def {
  type: string;
  shape?: Record<string, z.ZodType>;
  innerType?: z.ZodType;
  element?: z.ZodType;
  valueType?: z.ZodType;
}
const defOf = (schema: z.ZodType) => (schema as unknown as { _zod: { def: Def } })._zod.def;

/** Every path a schema reads, `[]` for the items of a list and `{}` for the values of a map. */
function schemaPaths(schema: z.ZodType, at: string[] = []): string[][] {
  const def = defOf(schema);
  switch (def.type) {
    case 'optional':
    case 'nullable':
      return schemaPaths(def.innerType as z.ZodType, at);
    case 'object':
      return Object.entries(def.shape ?? {}).flatMap(([k, v]) => [[...at, k], ...schemaPaths(v, [...at, k])]);
    case 'array':
      return schemaPaths(def.element as z.ZodType, [...at, '[]']);
    case 'record':
      return schemaPaths(def.valueType as z.ZodType, [...at, '{}']);
    default:
      return [];
  }
}

/** Whether `allow` lets the value at `p` through whole or in part. */
function allowed(allow: Allow, p: readonly string[]): boolean {
  if (allow === 'keep' || p.length === 0) return true;
  if (allow === 'scalar') return false;
  const [head, ...rest] = p;
  if ('each' in allow) return (head === '[]' || head === '{}') && allowed(allow.each, rest);
  const next = allow.fields[head as string];
  return next !== undefined && allowed(next, rest);
}

/** The demo capture with the secrets a real one may carry, in every place the Engine puts them. */
function withSecrets(): SnapshotDocument {
  const doc = parseSnapshotText(demoText, 'swarm-demo.json');
  const secret = { Env: ['DB_PASSWORD=hunter2'], Args: ['--token=hunter2'], Command: ['run', 'hunter2'] };
  for (const s of doc.services as Record<string, Record<string, Record<string, unknown>>>[]) {
    Object.assign(s.Spec?.TaskTemplate?.ContainerSpec ?? {}, secret, {
      Secrets: [{ SecretName: 'db', SecretID: 'hunter2' }],
      Configs: [{ ConfigName: 'cfg' }],
    });
    Object.assign(s, { PreviousSpec: structuredClone(s.Spec) });
  }
  for (const t of doc.tasks as Record<string, unknown>[]) {
    t.Spec = { ContainerSpec: { Image: 'x', ...secret } };
    (t.Status as Record<string, unknown>).Message = 'started with hunter2';
  }
  for (const c of doc.containers as Record<string, unknown>[]) {
    Object.assign(c, { Command: 'httpd --password hunter2', Mounts: [{ Source: '/run/secrets/hunter2' }] });
  }
  return doc;
}

describe('the snapshot allow-list', () => {
  it('keeps every field the mapper reads (the schemas of snapshot-map.ts)', () => {
    const missing: string[] = [];
    for (const [list, schema] of Object.entries(ENTRY_SCHEMAS)) {
      const allow = SNAPSHOT_FIELDS[list as keyof typeof SNAPSHOT_FIELDS];
      for (const p of schemaPaths(schema as z.ZodType, ['[]'])) {
        if (!allowed(allow, p)) missing.push(`${list}${p.join('.')}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('maps a trimmed snapshot exactly as the full one: same state, diagnostics and routes', () => {
    const full = withSecrets();
    const trimmed = trimSnapshot(full);
    for (const nodeAddress of [undefined, '127.0.0.1']) {
      const options = { cluster: 'local', ...(nodeAddress ? { nodeAddress } : {}) };
      const a = mapSnapshot(full, options);
      const b = mapSnapshot(trimmed, options);
      expect(b).toEqual(a);
      const rules = [
        { kind: 'interlock', allowRawDirectives: false },
        { kind: 'docker-lb', allowRawDirectives: false },
      ] as const;
      expect(buildRoutes([b.state], [...rules])).toEqual(buildRoutes([a.state], [...rules]));
    }
    expect(mapSnapshot(full, { cluster: 'local' }).state.services.length).toBeGreaterThan(0);
  });

  it('drops Env, Args, Command, secrets and everything else it does not read', () => {
    const full = withSecrets();
    expect(JSON.stringify(full)).toContain('hunter2');
    const text = JSON.stringify(trimSnapshot(full));
    for (const gone of ['hunter2', '"Env"', '"Args"', '"Command"', '"Secrets"', '"Configs"', '"Mounts"', 'Spec":{"Con'])
      expect(text).not.toContain(gone);
    expect(text).not.toContain('PreviousSpec');
    // What is read stays, labels whole.
    expect(text).toContain('"interlock.context_root":"/api"');
    expect(trimSnapshot(full).metadata).toEqual(full.metadata);
  });

  it('drops a list or object where the API puts a scalar, and keeps scalars where it puts objects', () => {
    const doc: SnapshotDocument = {
      services: [{ ID: 's1', Spec: 'odd', Endpoint: [{ Env: ['A=secret'] }] }],
      nodes: [{ ID: 'n1', Status: { Addr: { Env: 'secret' } } }],
    };
    expect(trimSnapshot(doc)).toEqual({
      services: [{ ID: 's1', Spec: 'odd', Endpoint: undefined }],
      nodes: [{ ID: 'n1', Status: { Addr: undefined } }],
    });
  });
});
