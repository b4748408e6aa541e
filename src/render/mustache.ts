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
import { RenderError } from './types.ts';

type Token = TemplateSpans[number];
type Compiled = (stack: unknown[], find: typeof lookup, section: typeof sectionKind) => string;

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

function compileTokens(tokens: readonly Token[], lines: string[], depth: number): void {
  const v = `v${depth}`;
  for (const token of tokens) {
    const kind = token[0];
    const text = JSON.stringify(token[1]);
    if (kind === 'text') {
      lines.push(`out += ${text};`);
    } else if (kind === 'name' || kind === '&') {
      lines.push(
        `{ const ${v} = find(stack, ${text}); if (${v} !== null && ${v} !== undefined) out += String(${v}); }`,
      );
    } else if (kind === '#') {
      const inner: string[] = [];
      compileTokens((token[4] ?? []) as Token[], inner, depth + 1);
      const body = inner.join('\n');
      lines.push(
        `{ const ${v} = find(stack, ${text}); const k${depth} = section(${v});`,
        `if (k${depth} === 1) { for (const item of ${v}) { stack.push(item);\n${body}\nstack.pop(); } }`,
        `else if (k${depth} === 2) { stack.push(${v});\n${body}\nstack.pop(); }`,
        `else if (k${depth} === 3) {\n${body}\n} }`,
      );
    } else if (kind === '^') {
      const inner: string[] = [];
      compileTokens((token[4] ?? []) as Token[], inner, depth + 1);
      lines.push(
        `{ const ${v} = find(stack, ${text}); if (!${v} || (Array.isArray(${v}) && ${v}.length === 0)) {`,
        inner.join('\n'),
        '} }',
      );
    }
    // '!' comments, '=' delimiter changes and '>' partials render nothing.
  }
}

const compiled = new Map<string, Compiled>();

function compile(template: string): Compiled {
  let fn = compiled.get(template);
  if (fn) return fn;
  let tokens: TemplateSpans;
  try {
    tokens = Mustache.parse(template);
  } catch (cause) {
    throw new RenderError(`template: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
  const lines: string[] = ["let out = '';"];
  compileTokens(tokens, lines, 0);
  lines.push('return out;');
  // The generated code holds the template's text and names only as JSON string literals.
  fn = new Function('stack', 'find', 'section', lines.join('\n')) as Compiled;
  // Users render one or two templates per process; the cap only guards against a leak.
  if (compiled.size > 32) compiled.clear();
  compiled.set(template, fn);
  return fn;
}

/** Renders `template` with `view`, escaping nothing: every view string is already safe for the file. */
export function renderTemplate(template: string, view: object): string {
  return compile(template)([view], lookup, sectionKind);
}
