/**
 * Finding, reading and checking a config file. The I/O edge of the config: it returns the parsed
 * config with every diagnostic, or throws ConfigLoadError when the file cannot be read at all.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createRequire, isBuiltin } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileFunction, Script } from 'node:vm';
// jiti and yaml load with the config format that needs them (start-up, issue 12).
import type { Jiti } from 'jiti';
import type { Document, LineCounter, Node } from 'yaml';
import type { z } from 'zod';
import { type Diagnostic, formatConfigPath, maskCredentials } from '../diagnostics.ts';
import { ConfigLoadError, describeThrown, threw } from '../errors.ts';
import { entryName, privateCacheDir, prune, writeEntry } from '../runtime/cache-dir.ts';
import { closest } from '../suggest.ts';
import { type ConfigEnv, defineConfig } from './define.ts';
import { formatDuration, parseDuration } from './duration.ts';
import { type Config, configSchema, dataConfigSchema } from './schema.ts';
import { schemaKeysAt } from './schema-keys.ts';

/**
 * How a config is parsed: once per load, so zod's fast path, which compiles a parser per object
 * shape (`new Function`) on the first parse, costs more than it saves (~15 ms of every run;
 * start-up, issue 12). The result is the same either way.
 */
const ONCE = { jitless: true } as const;

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
  /** How a code config was loaded: through jiti, or from its kept transpiled code (loadCode). */
  loader?: 'jiti' | 'kept';
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
  const yaml = await import('yaml');
  const lineCounter = new yaml.LineCounter();
  // JSON is YAML 1.2, so one parser gives positions for both.
  const doc = yaml.parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0];
    const pos = first?.pos ? lineCounter.linePos(first.pos[0]) : undefined;
    const where = pos ? `${displayFile}:${pos.line}:${pos.col}` : displayFile;
    throw new ConfigLoadError(`${where}: ${format.toUpperCase()} syntax error: ${first?.message.split('\n')[0]}`, {
      location: where,
    });
  }
  let raw: unknown;
  try {
    raw = doc.toJS();
  } catch (error) {
    // The yaml library refuses to expand an "alias bomb" (billion laughs): more than 100 alias
    // expansions would make a small file a huge value.
    const message = describeThrown(error);
    throw new ConfigLoadError(
      /alias/i.test(message)
        ? `${displayFile}: too many YAML aliases: the file expands into an enormous value (an "alias bomb"), so it is refused; write the values out or use fewer aliases`
        : `${displayFile}: ${format.toUpperCase()} cannot be read: ${message}`,
      { cause: error },
    );
  }
  const locate: LoadedConfig['locate'] = (configPath, opts) =>
    locateInDocument(yaml, doc, lineCounter, configPath, opts?.key ?? false);
  const parsed = dataConfigSchema.safeParse(raw, ONCE);
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

/** How long a code config may take to load (`INTERLOCK_CONFIG_TIMEOUT`). */
export const CONFIG_TIMEOUT_ENV = 'INTERLOCK_CONFIG_TIMEOUT';
export const DEFAULT_CONFIG_TIMEOUT_MS = 10_000;

/** The load timeout from the environment: a duration (`10s`, `500ms`) or a number of milliseconds. */
export function configLoadTimeout(env: Readonly<Record<string, string | undefined>>): number {
  const text = env[CONFIG_TIMEOUT_ENV]?.trim();
  if (text === undefined || text === '') return DEFAULT_CONFIG_TIMEOUT_MS;
  const ms = /^\d+$/.test(text) ? Number(text) : parseDuration(text);
  if (ms === undefined || !(ms > 0) || ms > 2_147_483_647) {
    throw new ConfigLoadError(
      `${CONFIG_TIMEOUT_ENV}=${JSON.stringify(env[CONFIG_TIMEOUT_ENV])} is not a duration: write e.g. 10s, 30s or 500ms`,
    );
  }
  return ms;
}

/**
 * The script `bounded` runs `run` from: in this very context (a new context per call, as
 * `runInNewContext` makes, was ~1–2.5 ms each, two per command; start-up, issue 12). The timeout
 * stops whatever JavaScript runs either way.
 */
const RUN = Symbol.for('interlock.config.run');
const RUN_SCRIPT = new Script('globalThis[Symbol.for("interlock.config.run")]()', {
  filename: 'interlock-config-deadline',
});

/**
 * Runs config code under a deadline. The synchronous part runs inside `vm` with a timeout: V8
 * then stops whatever JavaScript runs, including the config's own code that jiti evaluates
 * while loading it (an endless loop at the top level), which no timer on this thread could
 * interrupt. A promise it returns (top-level await, an async config function) must settle
 * before the same deadline. What cannot be stopped: an endless loop that starts after an
 * `await` (top-level await, an async config function); it runs outside both.
 */
async function bounded<T>(
  run: () => T,
  deadline: number,
  timedOut: (why: 'loop' | 'promise') => Error,
): Promise<Awaited<T>> {
  let value: T;
  const slot = globalThis as unknown as Record<symbol, (() => unknown) | undefined>;
  slot[RUN] = run;
  try {
    value = RUN_SCRIPT.runInThisContext({ timeout: Math.max(1, deadline - Date.now()) }) as T;
  } catch (error) {
    if (isScriptTimeout(error)) throw timedOut('loop');
    throw error;
  } finally {
    slot[RUN] = undefined;
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timedOut('promise')), Math.max(0, deadline - Date.now()));
  });
  try {
    return await Promise.race([value as Awaited<T>, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Loads the config with jiti's synchronous loader, so its top-level code runs inside the vm
 * timeout of `bounded` (jiti's asynchronous loader awaits every import, and the code after it
 * would run outside). Top-level await needs the asynchronous loader: a config using it is
 * loaded that way (babel refuses it before any of it runs), bounded by the deadline alone.
 */
function importDefault(jiti: Jiti, file: string): unknown {
  let mod: unknown;
  try {
    mod = jiti(file);
  } catch (error) {
    if (error instanceof SyntaxError && /\bawait\b/.test(error.message)) return jiti.import(file, { default: true });
    throw error;
  }
  return (mod as { default?: unknown } | null | undefined)?.default ?? mod;
}

function isScriptTimeout(error: unknown): boolean {
  try {
    return (error as { code?: unknown } | null)?.code === 'ERR_SCRIPT_EXECUTION_TIMEOUT';
  } catch {
    return false;
  }
}

export const CONFIG_CACHE_ENV = 'INTERLOCK_CONFIG_CACHE';

/**
 * Where transpiled `.ts` configs are kept, so the same content is not transpiled twice (issue 12):
 * jiti's own file cache, which names an entry by the file's path and checks it against a hash of
 * the source, so an edited config is transpiled again and a stale entry is never used.
 * `$INTERLOCK_CONFIG_CACHE` (a folder, or `off`), else `$XDG_CACHE_HOME/interlock/config`, else
 * `~/.cache/interlock/config`, else a per-user folder under the temp dir. A folder that cannot be
 * created or written, or that another user owns or may write (a planted transpiled config would
 * run as ours), means no cache: the config is transpiled on every run, as before.
 */
export function configCacheDir(env: Readonly<Record<string, string | undefined>>): string | undefined {
  return privateCacheDir(env, CONFIG_CACHE_ENV, 'config');
}

/** Files the config cache keeps (jiti's transpiled files, markers, kept code; three per content). */
export const MAX_CONFIG_ENTRIES = 300;

/** A marker per config file content already transpiled into `cacheDir`. */
function seenMarker(cacheDir: string, file: string, source: string): string {
  return path.join(cacheDir, `seen-${entryName(`${file}\0${source}`)}`);
}

/**
 * A `.ts` config that imports nothing but `interlock` and Node's own modules is kept transpiled
 * under a name of its path and content, and later runs evaluate that code themselves, without
 * jiti (whose loading, with the Node modules it needs, was ~15 ms of every command; start-up,
 * issue 12). The code is what jiti made of the file, evaluated as jiti does (a CommonJS module,
 * its default export), under the same deadline. Anything else (a relative import, a package, a
 * dynamic import, top-level await) loads through jiti on every run, as before.
 */
function compiledEntry(cacheDir: string, file: string, source: string): string {
  return path.join(cacheDir, `compiled-${entryName(`${file}\0${source}`)}.cjs`);
}

/** What `require('interlock')` gives a config: the package entry's values (src/index.ts). */
const ENTRY = Object.freeze({ __esModule: true, defineConfig });

/** True when transpiled code requires only `interlock` and Node's modules, and nothing of jiti's. */
export function selfContained(code: string): boolean {
  if (code.includes('jiti')) return false;
  const calls = [...code.matchAll(/\brequire\((["'])([^"'\\]+)\1\)/g)];
  if (calls.length !== (code.match(/\brequire\b/g) ?? []).length) return false;
  return calls.every(([, , id]) => id === 'interlock' || isBuiltin(id as string));
}

/** Compiles transpiled config code; undefined when it is not a plain module (top-level await). */
function compileConfig(code: string, file: string): ((...args: unknown[]) => unknown) | undefined {
  try {
    return compileFunction(code, ['exports', 'require', 'module', '__filename', '__dirname'], {
      filename: file,
    }) as (...args: unknown[]) => unknown;
  } catch (error) {
    if (error instanceof SyntaxError) return undefined;
    throw error;
  }
}

function evaluateConfig(compiled: (...args: unknown[]) => unknown, file: string): unknown {
  const nodeRequire = createRequire(file);
  const module = { exports: {} as Record<string, unknown>, id: file, filename: file, path: path.dirname(file) };
  const require = (id: string) => (id === 'interlock' ? ENTRY : nodeRequire(id));
  compiled.call(module.exports, module.exports, require, module, file, path.dirname(file));
  const mod = module.exports as { default?: unknown } | null | undefined;
  return mod?.default ?? mod;
}

async function loadCode(file: string, displayFile: string, env: ConfigEnv): Promise<LoadedConfig> {
  await assertReadable(file);
  const timeoutMs = configLoadTimeout(env.env);
  const timedOut = (why: 'loop' | 'promise') =>
    new ConfigLoadError(
      `${displayFile}: the config did not finish loading within ${formatDuration(timeoutMs)} (${why === 'loop' ? 'still running: an endless loop?' : 'waiting for a promise that never settles?'}); raise ${CONFIG_TIMEOUT_ENV} if it is just slow`,
    );
  const cacheDir = configCacheDir(env.env);
  const source = cacheDir ? await readFile(file, 'utf8') : undefined;
  const typescript = /\.[mc]?ts$/i.test(file);
  const entry = cacheDir && source !== undefined && typescript ? compiledEntry(cacheDir, file, source) : undefined;
  const kept = entry ? readKept(entry) : undefined;
  const compiled = kept !== undefined ? compileConfig(kept, file) : undefined;
  if (compiled) {
    const deadline = Date.now() + timeoutMs;
    const exported = await evaluate(() => evaluateConfig(compiled, file), deadline, timedOut, file, displayFile);
    return checkExported(exported, file, displayFile, env, deadline, timedOut, 'kept');
  }
  const { exported, deadline } = await loadWithJiti(file, displayFile, {
    cacheDir,
    source,
    entry,
    timeoutMs,
    timedOut,
  });
  return checkExported(exported, file, displayFile, env, deadline, timedOut, 'jiti');
}

function readKept(entry: string): string | undefined {
  try {
    return readFileSync(entry, 'utf8');
  } catch {
    return undefined;
  }
}

async function evaluate(
  run: () => unknown,
  deadline: number,
  timedOut: (why: 'loop' | 'promise') => Error,
  file: string,
  displayFile: string,
): Promise<unknown> {
  try {
    return await bounded(run, deadline, timedOut);
  } catch (error) {
    if (error instanceof ConfigLoadError) throw error;
    throw codeLoadError(error, file, displayFile);
  }
}

async function loadWithJiti(
  file: string,
  displayFile: string,
  o: {
    cacheDir: string | undefined;
    source: string | undefined;
    entry: string | undefined;
    timeoutMs: number;
    timedOut: (why: 'loop' | 'promise') => Error;
  },
): Promise<{ exported: unknown; deadline: number }> {
  const { cacheDir, source, entry } = o;
  const marker = cacheDir && source !== undefined ? seenMarker(cacheDir, file, source) : undefined;
  // jiti's CommonJS entry: its ES module entry imports the same 190 kB CommonJS file, which Node
  // then scans for export names (~15 ms of every run with a code config; start-up, issue 12).
  const { createJiti } = createRequire(import.meta.url)('jiti') as typeof import('jiti');
  const jiti = createJiti(import.meta.url, {
    moduleCache: false,
    fsCache: cacheDir ?? false,
    interopDefault: true,
    // A config imports `defineConfig` from 'interlock': resolve it to this very copy, so configs
    // work wherever they live, with or without interlock in their own node_modules.
    alias: { interlock: selfEntry() },
  });
  // Load the TypeScript transformer first: the time it takes (a second on a busy machine) is
  // interlock's, not the config's, so it does not count against the timeout. Not when this very
  // content was transpiled into the cache before: then jiti reads it back and never loads Babel
  // (a file the config imports that changed since is transpiled within the timeout).
  const cached = marker !== undefined && existsSync(marker);
  if (!cached) jiti.transform({ source: 'export {};', ts: true });
  const deadline = Date.now() + o.timeoutMs;
  const exported = await evaluate(() => importDefault(jiti, file), deadline, o.timedOut, file, displayFile);
  if (marker !== undefined && !cached) {
    try {
      writeFileSync(marker, '');
    } catch {
      // No marker: the next run warms the transformer up again, nothing worse.
    }
  }
  // What jiti just transpiled (read back from its own cache), kept for the runs after this one
  // when it needs nothing but `interlock` and Node's modules.
  if (entry !== undefined && source !== undefined) {
    try {
      const code = jiti.transform({ source, filename: file, ts: true });
      // Not written: the next run loads through jiti again.
      if (selfContained(code) && compileConfig(code, file)) writeEntry(entry, code);
    } catch {
      // Not transpiled again (jiti's own cache gone): the next run loads through jiti again.
    }
  }
  // A new content added jiti's file, a marker and the kept code: the folder keeps the newest.
  if (cacheDir !== undefined && !cached) prune(cacheDir, MAX_CONFIG_ENTRIES, () => true);
  return { exported, deadline };
}

async function checkExported(
  exported: unknown,
  file: string,
  displayFile: string,
  env: ConfigEnv,
  deadline: number,
  timedOut: (why: 'loop' | 'promise') => Error,
  loader: 'kept' | 'jiti',
): Promise<LoadedConfig> {
  let raw: unknown = exported;
  if (typeof exported === 'function') {
    try {
      raw = await bounded(() => (exported as (e: ConfigEnv) => unknown)(env), deadline, timedOut);
    } catch (error) {
      if (error instanceof ConfigLoadError) throw error;
      throw new ConfigLoadError(`${displayFile}: the config function ${threw(error)}`, { cause: error });
    }
  }
  const locate = () => undefined;
  if (raw === undefined || raw === null) {
    return {
      file,
      displayFile,
      format: 'code',
      loader,
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
  // The schema reads every value, so code of the config (a getter) runs here too: guarded alike.
  // What it returns is plain data; custom rule functions are the only code kept.
  let parsed: ReturnType<typeof configSchema.safeParse>;
  try {
    parsed = await bounded(() => configSchema.safeParse(raw, ONCE), deadline, timedOut);
  } catch (error) {
    if (error instanceof ConfigLoadError) throw error;
    throw new ConfigLoadError(`${displayFile}: reading the exported config ${threw(error)}`, { cause: error });
  }
  const diagnostics = parsed.success ? [] : schemaDiagnostics(parsed.error, displayFile, locate, raw);
  return {
    file,
    displayFile,
    format: 'code',
    loader,
    raw,
    diagnostics,
    locate,
    ...(parsed.success ? { config: parsed.data } : {}),
  };
}

function selfEntry(): string {
  // src/config/load.ts (via a loader) or dist/config/load.js → the package entry next to it.
  // The command line's bundle (dist/cli-bundle/*.cjs) sits next to dist/cli/, as dist/config/ does.
  const here = path.dirname(fileURLToPath(import.meta.url));
  const ext = path.extname(fileURLToPath(import.meta.url));
  return path.join(here, '..', `index${ext === '.cjs' ? '.js' : ext}`);
}

function codeLoadError(error: unknown, file: string, displayFile: string): ConfigLoadError {
  let message: string;
  try {
    if (!(error instanceof Error))
      return new ConfigLoadError(`${displayFile}: the config ${threw(error)}`, { cause: error });
    message = String(error.message);
  } catch {
    return new ConfigLoadError(`${displayFile}: the config ${threw(error)}`, { cause: error });
  }
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
  { isMap, isPair, isScalar, isSeq }: typeof import('yaml'),
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
