/**
 * Renders a mustache template with HTML escaping off. Parsing is mustache.js's own (tags,
 * standalone lines, set-delimiters), so the output matches `Mustache.render(template, view, {},
 * { escape: (s) => s })` byte for byte. The writer is not: mustache.js allocates a context object
 * and a lookup cache per section item and builds the output by concatenation, which made a
 * 10,000-backend config cost more than building it. Here the parsed template is compiled once
 * into a JavaScript function (its text and names enter the generated code only as JSON string
 * literals), sections push onto one context stack, and the pieces are appended to one string
 * (V8 keeps appends as a rope and copies once; an array of millions of pieces joined at the end
 * cost twice the CPU at 10,000 backends, issue 12).
 *
 * Not supported, as the renderers' views never need them: lambdas (a function in the view fails
 * the render) and partials (a partial renders nothing, as in mustache.js without partials).
 */
import Mustache, { type TemplateSpans } from 'mustache';
import { flattened, RenderError } from './types.ts';

type Token = TemplateSpans[number];
type Writer = (items: readonly unknown[]) => string;
type Compiled = (stack: unknown[], find: typeof lookup, section: typeof sectionKind, fast: readonly Writer[]) => string;

/**
 * A specialised writer for one top-level section of a known template (./fast-sections.ts): used
 * where the template's section named `name` has exactly the text `body` between its tags and its
 * value is a list; anywhere else the section renders as usual.
 */
export interface FastSection {
  name: string;
  body: string;
  /** The section's output for a list value, equal to what the generic walker writes. */
  write: Writer;
}

interface Compiling {
  template: string;
  fast: readonly FastSection[];
  /** Writers the compiled code calls, by index. */
  used: Writer[];
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object';
}

/** mustache.js's lookup: the innermost context holding the (dotted) name wins, even when it holds false. */
function lookup(stack: readonly unknown[], name: string): unknown {
  let found: unknown;
  if (name === '.') {
    found = stack[stack.length - 1];
  } else if (!name.includes('.')) {
    for (let i = stack.length - 1; i >= 0; i--) {
      const view = stack[i];
      if (isObject(view) && name in view) {
        found = view[name];
        break;
      }
    }
  } else {
    const parts = name.split('.');
    for (let i = stack.length - 1; i >= 0; i--) {
      let value: unknown = stack[i];
      let hit = false;
      for (let j = 0; j < parts.length && value !== null && value !== undefined; j++) {
        const part = parts[j] as string;
        if (j === parts.length - 1) hit = isObject(value) ? part in value : Object.hasOwn(Object(value), part);
        value = (value as Record<string, unknown>)[part];
      }
      if (hit) {
        found = value;
        break;
      }
    }
  }
  if (typeof found === 'function')
    throw new RenderError(`template: {{${name}}} is a function; lambdas are not supported`);
  return found;
}

/** How a section renders its value: 0 not at all, 1 once per item, 2 once with the value pushed, 3 once as is. */
function sectionKind(value: unknown): 0 | 1 | 2 | 3 {
  if (!value) return 0;
  if (Array.isArray(value)) return 1;
  if (typeof value === 'object' || typeof value === 'string' || typeof value === 'number') return 2;
  return 3;
}

function compileTokens(tokens: readonly Token[], lines: string[], depth: number, c: Compiling): void {
  const v = `v${depth}`;
  for (const token of tokens) {
    const kind = token[0];
    const text = JSON.stringify(token[1]);
    const fast =
      kind === '#' && depth === 0
        ? c.fast.find((f) => f.name === token[1] && c.template.slice(token[3], token[5]) === f.body)
        : undefined;
    if (fast) {
      const inner: string[] = [];
      compileTokens((token[4] ?? []) as Token[], inner, depth + 1, c);
      const body = inner.join('\n');
      c.used.push(fast.write);
      lines.push(
        `{ const ${v} = find(stack, ${text}); if (Array.isArray(${v})) { out += fast[${c.used.length - 1}](${v}); }`,
        `else { const k${depth} = section(${v}); if (k${depth} !== 0) {`,
        `if (k${depth} === 2) stack.push(${v});\n${body}\nif (k${depth} === 2) stack.pop(); } } }`,
      );
    } else if (kind === 'text') {
      lines.push(`out += ${text};`);
    } else if (kind === 'name' || kind === '&') {
      lines.push(
        `{ const ${v} = find(stack, ${text}); if (${v} !== null && ${v} !== undefined) out += String(${v}); }`,
      );
    } else if (kind === '#') {
      const inner: string[] = [];
      compileTokens((token[4] ?? []) as Token[], inner, depth + 1, c);
      const body = inner.join('\n');
      // The body is written once, whatever the value's kind: written once per kind, a section
      // nested d deep appeared 3^d times, and the Nginx template compiled to ~240 kB of code
      // (~35 ms of every render's start-up; issue 12).
      lines.push(
        `{ const ${v} = find(stack, ${text}); const k${depth} = section(${v});`,
        `for (let i${depth} = 0, n${depth} = k${depth} === 1 ? ${v}.length : k${depth} === 0 ? 0 : 1; i${depth} < n${depth}; i${depth}++) {`,
        `if (k${depth} !== 3) stack.push(k${depth} === 1 ? ${v}[i${depth}] : ${v});\n${body}\nif (k${depth} !== 3) stack.pop(); } }`,
      );
    } else if (kind === '^') {
      const inner: string[] = [];
      compileTokens((token[4] ?? []) as Token[], inner, depth + 1, c);
      lines.push(
        `{ const ${v} = find(stack, ${text}); if (!${v} || (Array.isArray(${v}) && ${v}.length === 0)) {`,
        inner.join('\n'),
        '} }',
      );
    }
    // '!' comments, '=' delimiter changes and '>' partials render nothing.
  }
}

interface Program {
  fn: Compiled;
  writers: readonly Writer[];
}

const NO_FAST: readonly FastSection[] = [];
/** Compiled templates per set of specialised sections (none, HAProxy's, Nginx's). */
const compiled = new WeakMap<readonly FastSection[], Map<string, Program>>();

function compile(template: string, fast: readonly FastSection[]): Program {
  let programs = compiled.get(fast);
  if (!programs) {
    programs = new Map();
    compiled.set(fast, programs);
  }
  let program = programs.get(template);
  if (program) return program;
  let tokens: TemplateSpans;
  try {
    tokens = Mustache.parse(template);
  } catch (cause) {
    throw new RenderError(`template: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
  const lines: string[] = ["let out = '';"];
  const c: Compiling = { template, fast, used: [] };
  compileTokens(tokens, lines, 0, c);
  lines.push('return out;');
  // The generated code holds the template's text and names only as JSON string literals.
  const fn = new Function('stack', 'find', 'section', 'fast', lines.join('\n')) as Compiled;
  program = { fn, writers: c.used };
  // Users render one or two templates per process; the cap only guards against a leak.
  if (programs.size > 32) programs.clear();
  programs.set(template, program);
  return program;
}

/**
 * Renders `template` with `view`, escaping nothing: every view string is already safe for the
 * file. `fast`: specialised writers for sections of a known template (see FastSection).
 */
export function renderTemplate(template: string, view: object, fast: readonly FastSection[] = NO_FAST): string {
  const { fn, writers } = compile(template, fast);
  // One flat string: the daemon searches a 2.4 MB config several times per cycle (src/apply).
  return flattened(fn([view], lookup, sectionKind, writers));
}
