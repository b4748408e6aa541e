/**
 * Graphite names for interlock's series. Pure.
 *
 * In a Graphite path a `.` (and a `/`) is a directory level, and Swarm task names hold dots, so a
 * value must never add a level: every value becomes exactly one segment of `[A-Za-z0-9_-]`, and a
 * segment that ends up empty is left out rather than producing `a..b`.
 */
import { InterlockError } from '../errors.ts';

/** Sum / average over a service's tasks. `{node}` is empty (so dropped) unless the collector covers one node. */
export const DEFAULT_SERVICE_PATTERN = '{prefix}.{cluster}.services.{service}.{node}.{metric}';
/** One series per task: `{task}` is the replica slot, or the node for a global service. */
export const DEFAULT_TASK_PATTERN = '{prefix}.{cluster}.tasks.{service}.{task}.{metric}';
/** Names in tag mode: the values move into tags, so the name only says what is measured. */
export const DEFAULT_SERVICE_TAG_PATTERN = '{prefix}.services.{metric}';
export const DEFAULT_TASK_TAG_PATTERN = '{prefix}.tasks.{metric}';

export const PLACEHOLDERS = ['prefix', 'cluster', 'service', 'task', 'node', 'metric'] as const;
export type Placeholder = (typeof PLACEHOLDERS)[number];

/** `prefix` and `metric` are dotted on purpose (interlock's own levels); every other value is one segment. */
const DOTTED: ReadonlySet<Placeholder> = new Set(['prefix', 'metric']);

const NOT_SEGMENT_CHAR = /[^A-Za-z0-9_-]/gu;
const NOT_TAG_VALUE_CHAR = /[^A-Za-z0-9_.:-]/gu;

/** One path segment: every character outside `[A-Za-z0-9_-]` (dots included) becomes `_`. */
export function sanitizeSegment(value: string): string {
  return value.replace(NOT_SEGMENT_CHAR, '_');
}

/**
 * A tag value carbon 1.1 stores and graphite-web can query: no `;` (tag separator), no leading
 * `~`, no whitespace (it would split the plaintext line), ASCII only. Dots are fine in a tag value.
 */
export function sanitizeTagValue(value: string): string {
  return value.replace(NOT_TAG_VALUE_CHAR, '_');
}

/** A dotted value (`prefix`, `metric`) as levels: each level sanitised, empty ones dropped. */
function dottedSegments(value: string): string[] {
  const out: string[] = [];
  for (const part of value.split('.')) {
    const s = sanitizeSegment(part);
    if (s !== '') out.push(s);
  }
  return out;
}

type Part = { literal: string } | { placeholder: Placeholder };
type CompiledSegment = Part[];

const PLACEHOLDER_RE = /\{([^{}]*)\}/g;

function compile(pattern: string): CompiledSegment[] {
  return pattern.split('.').map((segment) => {
    const parts: Part[] = [];
    let last = 0;
    for (const m of segment.matchAll(PLACEHOLDER_RE)) {
      if (m.index > last) parts.push({ literal: segment.slice(last, m.index) });
      parts.push({ placeholder: m[1] as Placeholder });
      last = m.index + m[0].length;
    }
    if (last < segment.length) parts.push({ literal: segment.slice(last) });
    return parts;
  });
}

/**
 * What is wrong with a user's name pattern, as messages; empty when it is usable. Meant for the
 * config check, so all problems are reported at once.
 */
export function patternProblems(pattern: string, options: { tags?: boolean } = {}): string[] {
  const problems: string[] = [];
  const known = new Set<string>(PLACEHOLDERS);
  for (const m of pattern.matchAll(PLACEHOLDER_RE)) {
    const name = m[1] as string;
    if (!known.has(name)) {
      problems.push(`unknown placeholder {${name}}: use ${PLACEHOLDERS.map((p) => `{${p}}`).join(' ')}`);
    }
  }
  const literal = pattern.replace(PLACEHOLDER_RE, '');
  if (/[{}]/.test(literal)) problems.push('unbalanced `{` or `}`');
  const bad = [...new Set(literal.replace(/[A-Za-z0-9_.{}-]/g, ''))].join('');
  if (bad.length > 0)
    problems.push(`${JSON.stringify(bad)}: only letters, digits, _ - and . are allowed outside placeholders`);
  if (!pattern.includes('{metric}')) {
    problems.push('no {metric}: every figure would be written to the same series');
  }
  // In tag mode the tags tell series apart; in a plain path the pattern alone must.
  if (options.tags !== true) {
    if (!pattern.includes('{service}')) problems.push('no {service}: all services would share one series');
    if (!pattern.includes('{task}')) {
      problems.push("no {task}: a service's tasks would share one series with each other and with the service total");
    }
  }
  return problems;
}

export interface ServiceKey {
  cluster: string;
  service: string;
  /** Set only when the collector covers a single node of a multi-node cluster (`localOnly`). */
  node?: string;
}

export interface TaskKey {
  cluster: string;
  service: string;
  /** Replica slot, or node id for a global service. */
  task: string;
  node?: string;
}

export interface Namer {
  service(key: ServiceKey, metric: string): string;
  task(key: TaskKey, metric: string): string;
  /**
   * interlock's own figures, per daemon instance (one per node when run as a global service, so
   * the instances never overwrite each other's series): `<prefix>.interlock.<instance>.<metric>`.
   */
  daemon(instance: string, metric: string): string;
}

export interface NamerOptions {
  /** Dotted words of `[A-Za-z0-9_-]` (validated by the config schema). */
  prefix: string;
  /** One pattern for service and task series; placeholders with no value are dropped as empty segments. */
  pattern?: string;
  /** Graphite tag mode (carbon 1.1+): `name;cluster=…;service=…`. */
  tags?: boolean;
}

type Values = Partial<Record<Placeholder, string>>;

function render(compiled: readonly CompiledSegment[], values: Values): string {
  const out: string[] = [];
  for (const segment of compiled) {
    const only = segment.length === 1 ? segment[0] : undefined;
    if (only && 'placeholder' in only && DOTTED.has(only.placeholder)) {
      out.push(...dottedSegments(values[only.placeholder] ?? ''));
      continue;
    }
    let text = '';
    for (const part of segment) {
      text += 'literal' in part ? sanitizeSegment(part.literal) : sanitizeSegment(values[part.placeholder] ?? '');
    }
    if (text !== '') out.push(text);
  }
  return out.join('.');
}

function tagSuffix(tags: Readonly<Record<string, string | undefined>>): string {
  let out = '';
  // Sorted, as carbon normalises tagged names, so the same series always has the same text.
  for (const key of Object.keys(tags).sort()) {
    const raw = tags[key];
    if (raw === undefined) continue;
    const value = sanitizeTagValue(raw);
    // carbon rejects empty tag values.
    if (value !== '') out += `;${key}=${value}`;
  }
  return out;
}

export function createNamer(options: NamerOptions): Namer {
  if (options.pattern !== undefined) {
    const problems = patternProblems(options.pattern, { tags: options.tags === true });
    if (problems.length > 0)
      throw new InterlockError(`metric name pattern ${JSON.stringify(options.pattern)}: ${problems.join('; ')}`);
  }
  const tags = options.tags === true;
  const servicePattern = compile(options.pattern ?? (tags ? DEFAULT_SERVICE_TAG_PATTERN : DEFAULT_SERVICE_PATTERN));
  const taskPattern = compile(options.pattern ?? (tags ? DEFAULT_TASK_TAG_PATTERN : DEFAULT_TASK_PATTERN));
  const prefix = options.prefix;

  return {
    service(key, metric) {
      const values: Values = { prefix, metric, cluster: key.cluster, service: key.service };
      if (key.node !== undefined) values.node = key.node;
      const name = render(servicePattern, values);
      return tags ? name + tagSuffix({ cluster: key.cluster, service: key.service, node: key.node }) : name;
    },
    task(key, metric) {
      const values: Values = { prefix, metric, cluster: key.cluster, service: key.service, task: key.task };
      if (key.node !== undefined) values.node = key.node;
      const name = render(taskPattern, values);
      return tags
        ? name + tagSuffix({ cluster: key.cluster, service: key.service, task: key.task, node: key.node })
        : name;
    },
    daemon(instance, metric) {
      if (tags)
        return [...dottedSegments(prefix), 'interlock', ...dottedSegments(metric)].join('.') + tagSuffix({ instance });
      const segments = [...dottedSegments(prefix), 'interlock'];
      const inst = sanitizeSegment(instance);
      if (inst !== '') segments.push(inst);
      segments.push(...dottedSegments(metric));
      return segments.join('.');
    },
  };
}
