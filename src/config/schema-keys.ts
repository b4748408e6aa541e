/**
 * Reads the config schema itself to tell which keys or kinds are allowed at a config path, so an
 * unknown key gets a "did you mean" and a bad kind lists the real ones.
 */
import type { z } from 'zod';
import { configSchema } from './schema.ts';

type AnySchema = z.core.$ZodType;

function def(schema: AnySchema): Record<string, unknown> & { type: string } {
  return (schema as unknown as { _zod: { def: Record<string, unknown> & { type: string } } })._zod.def;
}

function unwrap(schema: AnySchema): AnySchema {
  let cur = schema;
  for (;;) {
    const d = def(cur);
    if (d.type === 'optional' || d.type === 'default' || d.type === 'nullable' || d.type === 'prefault') {
      cur = d.innerType as AnySchema;
    } else if (d.type === 'pipe') {
      cur = d.in as AnySchema;
    } else {
      return cur;
    }
  }
}

function unionMember(schema: AnySchema, value: unknown): AnySchema | undefined {
  const d = def(schema);
  const options = (d.options as AnySchema[]) ?? [];
  const kind = value && typeof value === 'object' ? (value as Record<string, unknown>).kind : undefined;
  return options.find((o) => {
    const shape = def(unwrap(o)).shape as Record<string, AnySchema> | undefined;
    const lit = shape?.kind ? def(unwrap(shape.kind)) : undefined;
    return Array.isArray(lit?.values) && (lit.values as unknown[]).includes(kind);
  });
}

function schemaAt(path: readonly PropertyKey[], raw: unknown): { schema?: AnySchema; value: unknown } {
  let schema: AnySchema | undefined = configSchema;
  let value = raw;
  for (const key of path) {
    if (!schema) break;
    schema = unwrap(schema);
    let d = def(schema);
    if (d.type === 'union') {
      schema = unionMember(schema, value);
      if (!schema) break;
      schema = unwrap(schema);
      d = def(schema);
    }
    if (d.type === 'object') schema = (d.shape as Record<string, AnySchema>)[String(key)];
    else if (d.type === 'array') schema = d.element as AnySchema;
    else if (d.type === 'record') schema = d.valueType as AnySchema;
    else schema = undefined;
    value = value && typeof value === 'object' ? (value as Record<PropertyKey, unknown>)[key as string] : undefined;
  }
  return { ...(schema ? { schema } : {}), value };
}

/** Keys an object at this path may have. */
export function schemaKeysAt(path: readonly PropertyKey[], raw: unknown): string[] {
  const { schema, value } = schemaAt(path, raw);
  if (!schema) return [];
  let s = unwrap(schema);
  if (def(s).type === 'union') {
    const member = unionMember(s, value);
    if (!member) return [];
    s = unwrap(member);
  }
  const shape = def(s).shape as Record<string, unknown> | undefined;
  return shape ? Object.keys(shape).filter((k) => k !== '$schema') : [];
}
