/**
 * What the label dialects share: reading the labels under a prefix (exact `name` / `name.N` keys,
 * never substring matches), reporting unknown ones with a "did you mean", and turning a field
 * parser's result into a diagnostic that names cluster, service and label.
 */

import type { ServiceState } from '../cluster/model.ts';
import type { Diagnostic } from '../diagnostics.ts';
import { type FieldResult, quoteValue } from '../parse/fields.ts';
import { closest } from '../suggest.ts';
import type { RouteSpec } from './types.ts';

export type SpecField = keyof RouteSpec;

/** A spec from a rule, with the label behind each field so later diagnostics can name it. */
export interface SourcedSpec {
  spec: RouteSpec;
  /** Label that sets (or would set) each field; absent for custom rules. */
  labels?: Partial<Record<SpecField, string>>;
}

const SOURCES = new Map<string, Readonly<Partial<Record<SpecField, string>>>>();
/** Per dialect, the policy object, prefix and sources of the last call. */
const LAST = new Map<
  string,
  { policy: object; prefix: string; sources: Readonly<Partial<Record<SpecField, string>>> }
>();

/**
 * The label behind each spec field of a dialect: the same for every service with the same prefix
 * and policy-label choices (`policy`), so built once per such set and shared (frozen). Building
 * one per service (a spread plus some twenty keys, which V8 keeps as a slow dictionary) was most
 * of the route build at 10,000 services (issue 12).
 */
export function sharedSources(
  dialect: string,
  prefix: string,
  policy: Readonly<Partial<Record<SpecField, string>>>,
  build: () => Partial<Record<SpecField, string>>,
): Readonly<Partial<Record<SpecField, string>>> {
  // The dialects pass the shared policy objects of ./policy-labels.ts: the same object for the
  // same choices, so the last one found is usually the one asked for (no key string to build).
  const last = LAST.get(dialect);
  if (last !== undefined && last.policy === policy && last.prefix === prefix) return last.sources;
  let id = `${dialect}\u0000${prefix}`;
  for (const key in policy) id += `\u0000${key}=${policy[key as SpecField]}`;
  let sources = SOURCES.get(id);
  if (sources === undefined) {
    sources = Object.freeze(build());
    // A few prefixes times a few choices; the cap only guards against a leak.
    if (SOURCES.size > 256) SOURCES.clear();
    SOURCES.set(id, sources);
  }
  // Only a frozen policy object can stand for its content (an unfrozen one could change).
  if (Object.isFrozen(policy)) LAST.set(dialect, { policy, prefix, sources });
  return sources;
}

/** Never written: a reader with no label under its prefix keeps these. */
const NO_SINGLE: Map<string, LabelValue> = new Map();
const NO_MULTI: Map<string, LabelValue[]> = new Map();

type KnownLabels = { single: readonly string[]; multi: readonly string[]; ignore?: readonly string[] };
const KNOWN_SETS = new WeakMap<KnownLabels, { single: Set<string>; multi: Set<string>; ignore: Set<string> }>();

/** A dialect's label names as sets, made once per dialect (the lists are module constants). */
function knownSets(known: KnownLabels): { single: Set<string>; multi: Set<string>; ignore: Set<string> } {
  let sets = KNOWN_SETS.get(known);
  if (sets === undefined) {
    sets = { single: new Set(known.single), multi: new Set(known.multi), ignore: new Set(known.ignore ?? []) };
    KNOWN_SETS.set(known, sets);
  }
  return sets;
}

const NO_KEYS: readonly string[] = [];

/** The keys in code-unit order: the mapper already sorts labels (cluster/snapshot-map.ts), so usually no sort. */
function sortedKeys(labels: Readonly<Record<string, string>>): string[] {
  const keys = Object.keys(labels);
  for (let i = 1; i < keys.length; i++) {
    if ((keys[i - 1] as string) > (keys[i] as string)) return keys.sort();
  }
  return keys;
}

export interface DialectResult {
  /** false when the service carries no label of this dialect: it is simply not this dialect's. */
  matched: boolean;
  /** Empty when a label was wrong: the service is refused, and `diagnostics` says why. */
  specs: SourcedSpec[];
  diagnostics: Diagnostic[];
  /** Set when the labels deliberately place the service elsewhere: left out, no problem to report. */
  skip?: string;
}

export interface DialectOptions {
  cluster: string;
  prefix?: string;
  allowRawDirectives?: boolean;
  /** Accept wildcards directly on a public suffix or a single label (`*.com`). */
  allowBroadWildcards?: boolean;
}

export interface LabelValue {
  key: string;
  value: string;
}

/** A label key as shown in a diagnostic: as is when plain, quoted and escaped otherwise. */
export function labelKeyText(key: string): string {
  return /^[A-Za-z0-9._/-]{1,200}$/.test(key) ? key : quoteValue(key);
}

/**
 * Reads one service's labels for one dialect and collects its diagnostics. Single-valued labels are
 * `PREFIX.name`; multi-valued ones are `PREFIX.name` and `PREFIX.name.N` (N digits), in that order
 * and then by N.
 */
export class LabelReader {
  readonly prefix: string;
  readonly diagnostics: Diagnostic[] = [];
  /** true when the service has at least one label under the prefix. */
  readonly any: boolean;
  // Shared empty maps until a label under the prefix is found: most services carry one dialect's
  // labels, and every rule reads every service.
  private single: Map<string, LabelValue> = NO_SINGLE;
  private multi: Map<string, LabelValue[]> = NO_MULTI;
  private readonly service: ServiceState;
  private readonly cluster: string;

  constructor(
    service: ServiceState,
    cluster: string,
    prefix: string,
    known: { single: readonly string[]; multi: readonly string[]; ignore?: readonly string[] },
  ) {
    this.service = service;
    this.cluster = cluster;
    this.prefix = prefix;
    const lead = `${prefix}.`;
    const sets = knownSets(known);
    const numbered: { name: string; n: number; label: LabelValue }[] = [];
    let any = false;
    // Most services carry no label of a given dialect: found out without a list of the keys.
    let under = false;
    for (const key in service.labels) {
      if (key.startsWith(lead)) {
        under = true;
        break;
      }
    }
    for (const key of under ? sortedKeys(service.labels) : NO_KEYS) {
      if (!key.startsWith(lead)) continue;
      const rest = key.slice(lead.length);
      if (sets.ignore.has(rest)) continue;
      any = true;
      const value = service.labels[key] ?? '';
      if (sets.single.has(rest)) {
        if (this.single === NO_SINGLE) this.single = new Map();
        this.single.set(rest, { key, value });
        continue;
      }
      if (sets.multi.has(rest)) {
        numbered.push({ name: rest, n: -1, label: { key, value } });
        continue;
      }
      const m = /^([a-z_]+)\.([0-9]{1,9})$/.exec(rest);
      if (m && sets.multi.has(m[1] ?? '')) {
        numbered.push({ name: m[1] ?? '', n: Number(m[2]), label: { key, value } });
        continue;
      }
      this.unknown(key, rest, [...known.single, ...known.multi], known, m?.[1]);
    }
    if (numbered.length > 1) numbered.sort((a, b) => a.n - b.n || (a.label.key < b.label.key ? -1 : 1));
    if (numbered.length > 0) this.multi = new Map();
    for (const { name, label } of numbered) {
      const list = this.multi.get(name) ?? [];
      list.push(label);
      this.multi.set(name, list);
    }
    this.any = any;
  }

  private unknown(
    key: string,
    rest: string,
    all: readonly string[],
    known: { single: readonly string[]; multi: readonly string[] },
    numberedName: string | undefined,
  ): void {
    if (numberedName !== undefined && known.single.includes(numberedName)) {
      this.warn(
        'label-unknown',
        key,
        `${this.prefix}.${numberedName} takes one value; a numbered \`.N\` form is ignored`,
        `write it as ${this.prefix}.${numberedName}; only ${known.multi.map((n) => `${this.prefix}.${n}`).join(', ')} take .N`,
      );
      return;
    }
    const suggestion = closest(rest.replace(/\.[0-9]+$/, ''), all);
    this.warn(
      'label-unknown',
      key,
      `unknown ${this.prefix}.* label, ignored`,
      suggestion
        ? `did you mean ${this.prefix}.${suggestion}?`
        : `known labels: ${all.map((n) => `${this.prefix}.${n}`).join(', ')}`,
    );
  }

  key(name: string): string {
    return `${this.prefix}.${name}`;
  }

  has(name: string): boolean {
    return this.single.has(name) || this.multi.has(name);
  }

  raw(name: string): LabelValue | undefined {
    return this.single.get(name);
  }

  /** Every value of a multi-valued label: `name`, then `name.N` by N. */
  rawAll(name: string): LabelValue[] {
    return this.multi.get(name) ?? [];
  }

  /** Parses a single-valued label; undefined when absent or wrong (then an error is recorded). */
  get<T>(name: string, parse: (raw: string) => FieldResult<T>): T | undefined {
    const label = this.single.get(name);
    return label ? this.parse(label, parse) : undefined;
  }

  /** Parses every value of a multi-valued label; wrong ones are left out and recorded. */
  getAll<T>(name: string, parse: (raw: string) => FieldResult<T>): T[] {
    const out: T[] = [];
    for (const label of this.rawAll(name)) {
      const v = this.parse(label, parse);
      if (v !== undefined) out.push(v);
    }
    return out;
  }

  parse<T>(label: LabelValue, parse: (raw: string) => FieldResult<T>): T | undefined {
    const r = parse(label.value);
    if (r.ok) return r.value;
    this.invalid(label, r.error, r.fix);
    return undefined;
  }

  invalid(label: LabelValue, error: string, fix?: string): void {
    this.error('label-invalid', label.key, `${quoteValue(label.value)}: ${error}; the service is left out`, fix);
  }

  error(code: string, key: string, message: string, fix?: string): void {
    this.push('error', code, key, message, fix);
  }

  warn(code: string, key: string, message: string, fix?: string): void {
    this.push('warning', code, key, message, fix);
  }

  /** A label that only means something next to another one. */
  ignored(name: string, needs: string): void {
    this.warn(
      'label-ignored',
      this.key(name),
      `has no effect without ${this.key(needs)}`,
      `add ${this.key(needs)} or remove ${this.key(name)}`,
    );
  }

  get failed(): boolean {
    return this.diagnostics.some((d) => d.severity === 'error');
  }

  private push(severity: Diagnostic['severity'], code: string, key: string, message: string, fix?: string): void {
    this.diagnostics.push({
      severity,
      code,
      message,
      ...(fix ? { fix } : {}),
      cluster: this.cluster,
      service: this.service.name,
      label: labelKeyText(key),
    });
  }
}

/**
 * Splits a list; items are trimmed of spaces only (`a.com, b.com`), never of other whitespace. One
 * trailing separator is ignored (`a.com,b.com,`: Docker's own label reference ends its redirects
 * example with `;`); any other empty item is kept, for the caller to report: `a,,b`, `,a` and
 * `a,,` are typos, not lists.
 */
export function splitList(raw: string, separator: string): string[] {
  const items = raw.split(separator).map((item) => item.replace(/^ +| +$/g, ''));
  if (items.length > 1 && items[items.length - 1] === '') items.pop();
  return items;
}

/** Parses every item of a list label with `parse`; an empty item (but one trailing) is an error. */
export function parseList<T>(
  separator: string,
  parse: (raw: string) => FieldResult<T>,
): (raw: string) => FieldResult<T[]> {
  return (raw) => {
    const out: T[] = [];
    for (const [i, item] of splitList(raw, separator).entries()) {
      if (item === '') return { ok: false, error: `item ${i + 1} of the \`${separator}\` list is empty` };
      const r = parse(item);
      if (!r.ok) {
        // `a.com b.com`: a list written with spaces instead of the separator.
        const fix = item.includes(' ') && separator !== ' ' ? `separate the items with \`${separator}\`` : r.fix;
        return {
          ok: false,
          error: `item ${i + 1} (${quoteValue(item, 40)}): ${r.error}`,
          ...(fix ? { fix } : {}),
        };
      }
      out.push(r.value);
    }
    return { ok: true, value: out };
  };
}
