/**
 * Finding, reading and checking a config file. The I/O edge of the config: it returns the parsed
 * config with every diagnostic, or throws ConfigLoadError when the file cannot be read at all.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createJiti } from 'jiti';
import { type Document, isMap, isPair, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import type { z } from 'zod';
import { type Diagnostic, formatConfigPath, maskCredentials } from '../diagnostics.ts';
import { ConfigLoadError } from '../errors.ts';
import { closest } from '../suggest.ts';
import type { ConfigEnv } from './define.ts';
import { type Config, configSchema, dataConfigSchema } from './schema.ts';
import { schemaKeysAt } from './schema-keys.ts';

export const CONFIG_NAMES = [
  'interlock.config.ts',
  'interlock.config.mts',
  'interlock.config.js',
  'interlock.config.mjs',
  'interlock.config.yaml',
  'interlock.config.yml',
  'interlock.config.json',
] as const;

export interface LoadedConfig {
  /** Absolute path of the config file. */
  file: string;
  /** The path as shown in messages (relative to the working directory when inside it). */
  displayFile: string;
  format: 'code' | 'yaml' | 'json';
  /** The checked config; undefined when the schema rejected it. */
  config?: Config;
  /** Raw value as loaded (before the schema), for semantic checks that need it. */
  raw?: unknown;
  diagnostics: Diagnostic[];
  /** Finds the file position of a config path (YAML / JSON only): its value, or its key with `key`. */
  locate: (
    configPath: readonly PropertyKey[],
    options?: { key?: boolean },
  ) => { line: number; column: number } | undefined;
}

export async function findConfig(cwd: string, explicit?: string): Promise<string> {
  if (explicit) {
    const file = path.resolve(cwd, explicit);
    await assertReadable(file);
    return file;
  }
  for (const name of CONFIG_NAMES) {
    const file = path.join(cwd, name);
    try {
      const s = await stat(file);
      if (s.isFile()) return file;
    } catch {
      // not this one
    }
  }
  throw new ConfigLoadError(
    `no config file found in ${cwd}: looked for ${CONFIG_NAMES.join(', ')}. Pass --config PATH or create interlock.config.ts`,
  );
}

async function assertReadable(file: string): Promise<void> {
  try {
    const s = await stat(file);
    if (!s.isFile()) throw new ConfigLoadError(`config ${file} is not a file`);
  } catch (error) {
    if (error instanceof ConfigLoadError) throw error;
    throw new ConfigLoadError(`config ${file} cannot be read: ${(error as Error).message}`, { cause: error });
  }
}

export function displayPath(file: string, cwd: string): string {
  const rel = path.relative(cwd, file);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}

export async function loadConfig(
  file: string,
  options: { cwd: string; command: string; env?: Readonly<Record<string, string | undefined>> },
): Promise<LoadedConfig> {
  const ext = path.extname(file).toLowerCase();
  const displayFile = displayPath(file, options.cwd);
  if (ext === '.yaml' || ext === '.yml' || ext === '.json') {
    return loadData(file, displayFile, ext === '.json' ? 'json' : 'yaml');
  }
  if (['.ts', '.mts', '.cts', '.js', '.mjs', '.cjs'].includes(ext)) {
    return loadCode(file, displayFile, { command: options.command, env: options.env ?? {} });
  }
  throw new ConfigLoadError(
    `${displayFile}: unknown config format "${ext}": use .ts, .mts, .js, .mjs, .yaml, .yml or .json`,
  );
}

async function readText(file: string, displayFile: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    throw new ConfigLoadError(
      `${displayFile}: cannot read config: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      {
        cause: error,
      },
    );
  }
}

async function loadData(file: string, displayFile: string, format: 'yaml' | 'json'): Promise<LoadedConfig> {
  const text = await readText(file, displayFile);
  const lineCounter = new LineCounter();
  // JSON is YAML 1.2, so one parser gives positions for both.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0];
    const pos = first?.pos ? lineCounter.linePos(first.pos[0]) : undefined;
    const where = pos ? `${displayFile}:${pos.line}:${pos.col}` : displayFile;
    throw new ConfigLoadError(`${where}: ${format.toUpperCase()} syntax error: ${first?.message.split('\n')[0]}`, {
      location: where,
    });
  }
  const raw = doc.toJS() as unknown;
  const locate: LoadedConfig['locate'] = (configPath, opts) =>
    locateInDocument(doc, lineCounter, configPath, opts?.key ?? false);
  const parsed = dataConfigSchema.safeParse(raw);
  const diagnostics = parsed.success ? [] : schemaDiagnostics(parsed.error, displayFile, locate, raw);
  return {
    file,
    displayFile,
    format,
    raw,
    diagnostics,
    locate,
    ...(parsed.success ? { config: parsed.data as Config } : {}),
  };
}

async function loadCode(file: string, displayFile: string, env: ConfigEnv): Promise<LoadedConfig> {
  await assertReadable(file);
  const jiti = createJiti(import.meta.url, {
    moduleCache: false,
    fsCache: false,
    interopDefault: true,
    // A config imports `defineConfig` from 'interlock': resolve it to this very copy, so configs
    // work wherever they live, with or without interlock in their own node_modules.
    alias: { interlock: selfEntry() },
  });
  let exported: unknown;
  try {
    exported = await jiti.import(file, { default: true });
  } catch (error) {
    throw codeLoadError(error, file, displayFile);
  }
  let raw: unknown = exported;
  if (typeof exported === 'function') {
    try {
      raw = await (exported as (e: ConfigEnv) => unknown)(env);
    } catch (error) {
      throw new ConfigLoadError(`${displayFile}: the config function threw: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
  const locate = () => undefined;
  if (raw === undefined || raw === null) {
    return {
      file,
      displayFile,
      format: 'code',
      raw,
      locate,
      diagnostics: [
        {
          severity: 'error',
          code: 'no-default-export',
          message: 'the config has no default export',
          fix: 'end the file with `export default defineConfig({ ... })`',
          file: displayFile,
        },
      ],
    };
  }
  const parsed = configSchema.safeParse(raw);
  const diagnostics = parsed.success ? [] : schemaDiagnostics(parsed.error, displayFile, locate, raw);
  return {
    file,
    displayFile,
    format: 'code',
    raw,
    diagnostics,
    locate,
    ...(parsed.success ? { config: parsed.data } : {}),
  };
}

function selfEntry(): string {
  // src/config/load.ts (via a loader) or dist/config/load.js → the package entry next to it.
  const here = path.dirname(fileURLToPath(import.meta.url));
  const ext = path.extname(fileURLToPath(import.meta.url));
  return path.join(here, '..', `index${ext}`);
}

function codeLoadError(error: unknown, file: string, displayFile: string): ConfigLoadError {
  const message = error instanceof Error ? error.message : String(error);
  // jiti reports syntax errors as "ParseError: <what>  \n <file>:<line>:<col0>" (babel, 0-based column).
  const escaped = file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const match = new RegExp(`${escaped}:(\\d+):(\\d+)`).exec(message);
  const what =
    message
      .split('\n')[0]
      ?.replace(/^(Error: )?/, '')
      .trim() ?? message;
  if (match) {
    const where = `${displayFile}:${match[1]}:${Number(match[2]) + 1}`;
    return new ConfigLoadError(`${where}: ${what.replace(/^ParseError: /, 'syntax error: ')}`, {
      cause: error,
      location: where,
    });
  }
  if ((error as NodeJS.ErrnoException)?.code === 'MODULE_NOT_FOUND' || /Cannot find module/.test(message)) {
    return new ConfigLoadError(`${displayFile}: ${what}`, { cause: error });
  }
  return new ConfigLoadError(`${displayFile}: the config failed to load: ${what}`, { cause: error });
}

// ---------- schema issues → diagnostics ----------

function schemaDiagnostics(
  error: z.ZodError,
  displayFile: string,
  locate: LoadedConfig['locate'],
  raw: unknown,
): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const issue of error.issues) {
    for (const d of issueDiagnostics(issue, raw)) {
      const pos = locate(d.at, { key: d.atKey === true });
      out.push({
        severity: 'error',
        code: 'schema',
        message: d.message,
        ...(d.fix ? { fix: d.fix } : {}),
        path: formatConfigPath(d.at),
        file: displayFile,
        ...(pos ? { line: pos.line, column: pos.column } : {}),
      });
    }
  }
  return out;
}

interface IssueText {
  at: PropertyKey[];
  /** Point at the key rather than its value (unknown keys). */
  atKey?: boolean;
  message: string;
  fix?: string;
}

function valueAt(raw: unknown, at: readonly PropertyKey[]): unknown {
  let cur = raw;
  for (const key of at) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[key as string];
  }
  return cur;
}

function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') {
    const shown = maskCredentials(v);
    return `"${shown.length > 40 ? `${shown.slice(0, 40)}…` : shown}"`;
  }
  return `${typeof v} ${String(v)}`;
}

function knownKeys(issuePath: readonly PropertyKey[], raw: unknown): string[] {
  // Keys the schema accepts at this place: read them off the schema by walking the raw value.
  return schemaKeysAt(issuePath, raw);
}

function issueDiagnostics(issue: z.core.$ZodIssue, raw: unknown): IssueText[] {
  const at = [...issue.path];
  switch (issue.code) {
    case 'unrecognized_keys': {
      const keys = knownKeys(at, raw);
      return issue.keys.map((key) => {
        const suggestion = closest(key, keys);
        return {
          at: [...at, key],
          atKey: true,
          message: `unknown key "${key}"`,
          fix: suggestion
            ? `did you mean "${suggestion}"?`
            : keys.length > 0
              ? `remove it; allowed here: ${keys.join(', ')}`
              : 'remove it',
        };
      });
    }
    case 'invalid_union': {
      // A discriminated union whose `kind` is missing or unknown: zod names the field and options.
      const u = issue as { discriminator?: string; options?: unknown[] };
      if (u.discriminator) {
        const value = valueAt(raw, at);
        const options = (u.options ?? []).filter((o): o is string => typeof o === 'string');
        if (value === undefined) {
          return [
            {
              at,
              message: `missing "${u.discriminator}"`,
              fix: `add ${u.discriminator}: one of ${options.join(', ')}`,
            },
          ];
        }
        const suggestion = typeof value === 'string' ? closest(value, options) : undefined;
        const codeOnly = value === 'custom' && at[0] === 'rules';
        return [
          {
            at,
            message: `unknown ${u.discriminator} ${describeValue(value)}`,
            fix: codeOnly
              ? 'custom rules are functions: write the config as interlock.config.ts'
              : suggestion
                ? `did you mean "${suggestion}"?`
                : `use one of: ${options.join(', ')}`,
          },
        ];
      }
      return [{ at, message: `${issue.message} (got ${describeValue(valueAt(raw, at))})` }];
    }
    case 'invalid_value': {
      const values = issue.values.map((v) => String(v));
      const value = valueAt(raw, at);
      const suggestion = typeof value === 'string' ? closest(value, values) : undefined;
      return [
        {
          at,
          message: `${describeValue(value)} is not allowed here`,
          fix: suggestion ? `did you mean "${suggestion}"?` : `use one of: ${values.join(', ')}`,
        },
      ];
    }
    case 'invalid_type': {
      const value = valueAt(raw, at);
      if (value === undefined) {
        return [
          {
            at,
            message: `missing required "${String(at[at.length - 1] ?? '')}"`,
            fix: `add ${issue.expected === 'array' ? 'a list' : `a ${issue.expected}`}`,
          },
        ];
      }
      return [{ at, message: `expected ${issue.expected}, got ${describeValue(value)}` }];
    }
    case 'too_small':
    case 'too_big': {
      const value = valueAt(raw, at);
      return [{ at, message: `${issue.message.replace(/^Too (small|big): /, '')} (got ${describeValue(value)})` }];
    }
    default: {
      const value = valueAt(raw, at);
      return [{ at, message: `${issue.message} (got ${describeValue(value)})` }];
    }
  }
}

// ---------- positions in YAML / JSON ----------

function locateInDocument(
  doc: Document,
  lineCounter: LineCounter,
  configPath: readonly PropertyKey[],
  preferKey: boolean,
): { line: number; column: number } | undefined {
  let node: unknown = doc.contents;
  let best: Node | undefined = doc.contents ?? undefined;
  for (const [i, key] of configPath.entries()) {
    const last = i === configPath.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === key);
      if (!pair) break;
      node = pair.value;
      // Scalars point at the value (a bad port); objects and unknown keys at the key.
      best = last && !preferKey && isScalar(node) ? (node as Node) : ((pair.key as Node | null) ?? best);
    } else if (isSeq(node) && typeof key === 'number') {
      const item = node.items[key];
      if (!item) break;
      node = item;
      best = item as Node;
    } else {
      break;
    }
  }
  const offset = best?.range?.[0];
  if (offset === undefined) return undefined;
  const pos = lineCounter.linePos(offset);
  return { line: pos.line, column: pos.col };
}
