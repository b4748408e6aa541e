/**
 * The layers point one way, and the pure core does no I/O. Reads every import in src/ and fails
 * when a module imports one of a higher layer, or when a pure module imports node:fs, node:net,
 * node:child_process, dockerode, or touches `process`.
 *
 * Layers, lowest first (a module may import its own layer and those below):
 *   0 base      errors, diagnostics, suggest, runtime/ (logger, timers, metrics), parse/ (the
 *               parsers for untrusted text), the plain data models, durations
 *   1 schema    the config schema (with the output kinds' parts, outputs/<kind>-schema.ts) and defineConfig
 *   2 core      routes/, render/, the snapshot mapping, the pure statistics, the plan — pure
 *   3 edge-in   config loading and checks, cluster/ (Docker connections, reading snapshots)
 *   4 edge-out  apply/ (check, write, reload), stats/ (collect, send, run), acme/ (the issuer)
 *   5 daemon    watch/, fleet/ (the controller's agents listener; bundle and fleet state are pure,
 *               layer 2), agent/ (`interlock agent`)
 *   6 commands  cli/, the package entry
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/exec.ts';

const SRC = path.join(ROOT, 'src');

/** Most specific first: the first pattern a module's path (relative to src/) matches wins. */
const LAYERS: [RegExp, number, 'pure' | 'edge'][] = [
  [/^(errors|diagnostics|suggest)\.ts$/, 0, 'pure'],
  [/^runtime\//, 0, 'edge'],
  [/^parse\//, 0, 'pure'],
  [/^(cluster\/model|cluster\/snapshot|routes\/types|config\/duration)\.ts$/, 0, 'pure'],
  [/^config\/(schema|schema-keys|define|paths|pem|settings)\.ts$/, 1, 'pure'],
  [/^outputs\/[a-z]+-schema\.ts$/, 1, 'pure'],
  [/^(routes|render|outputs)\//, 2, 'pure'],
  [/^cluster\/snapshot-(map|fast)\.ts$/, 2, 'pure'],
  [/^stats\/(names|compute|point)\.ts$/, 2, 'pure'],
  [/^pipeline\.ts$/, 2, 'pure'],
  [/^fleet\/(bundle|state)\.ts$/, 2, 'pure'],
  [/^(config|cluster)\//, 3, 'edge'],
  [/^(apply|stats|acme)\//, 4, 'edge'],
  [/^(watch|fleet|agent)\//, 5, 'edge'],
  [/^(cli\/|index\.ts$)/, 6, 'edge'],
];

const IO_MODULES = /^(node:)?(fs|fs\/promises|net|child_process|dgram|http|https|tls)$|^dockerode$|^ssh2$/;

/** `kind === 'haproxy'` (and !==) or `case 'nginx':` for an output kind, in code without comments. */
const KIND_SWITCH = /\bkind\s*[!=]==\s*'(haproxy|nginx|carbon|log)'|case\s*'(haproxy|nginx|carbon|log)'\s*:/g;

/** Text without comments (strings kept). */
const uncommented = (text: string) => text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:])\/\/.*$/gm, '$1');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? files(full) : name.endsWith('.ts') ? [full] : [];
  });
}

function layerOf(rel: string): { layer: number; kind: 'pure' | 'edge' } {
  const found = LAYERS.find(([re]) => re.test(rel));
  if (!found) throw new Error(`src/${rel} is in no layer: add it to LAYERS in this test`);
  return { layer: found[1], kind: found[2] };
}

function importsOf(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/^\s*(?:import|export)\s[^;]*?\sfrom\s+'([^']+)'/gms)) out.push(m[1] as string);
  for (const m of text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g)) out.push(m[1] as string);
  return out;
}

/** Code without comments and strings, to look for `process` used as a value. */
function code(text: string): string {
  return text
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/\/\/.*$/gm, '')
    .replace(/`(?:\\.|[^`\\])*`|'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*"/g, '""');
}

const modules = files(SRC).map((file) => {
  const rel = path.relative(SRC, file).split(path.sep).join('/');
  const text = readFileSync(file, 'utf8');
  return { rel, file, text, ...layerOf(rel) };
});

describe('layers', () => {
  it('every module sits in a layer', () => {
    expect(modules.length).toBeGreaterThan(40);
  });

  it('no module imports a higher layer', () => {
    const wrong: string[] = [];
    for (const m of modules) {
      for (const spec of importsOf(m.text)) {
        if (!spec.startsWith('.')) continue;
        const target = path
          .relative(SRC, path.resolve(path.dirname(m.file), spec))
          .split(path.sep)
          .join('/');
        const t = layerOf(target);
        if (t.layer > m.layer) wrong.push(`src/${m.rel} (layer ${m.layer}) imports src/${target} (layer ${t.layer})`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('the pure core does no I/O: no fs, net, child_process, dockerode, and no process', () => {
    const wrong: string[] = [];
    for (const m of modules.filter((x) => x.kind === 'pure')) {
      for (const spec of importsOf(m.text)) if (IO_MODULES.test(spec)) wrong.push(`src/${m.rel} imports ${spec}`);
      if (/\bprocess\s*[.[]/.test(code(m.text)) || /from\s+'(node:)?process'/.test(m.text))
        wrong.push(`src/${m.rel} uses process`);
    }
    expect(wrong).toEqual([]);
  });

  it('only the output registry and the kind modules switch on an output kind', () => {
    const allowed: string[] = [];
    const found = modules
      .filter((m) => !m.rel.startsWith('outputs/'))
      .flatMap((m) => [...uncommented(m.text).matchAll(KIND_SWITCH)].map((x) => `src/${m.rel}: ${x[1] ?? x[2]}`));
    expect(found).toEqual(allowed);
  });

  it('the checks can fail: a made-up upward import and an fs import are caught', () => {
    expect([
      ...uncommented("if (o.kind === 'haproxy') {} // kind === 'log'\ncase 'nginx':").matchAll(KIND_SWITCH),
    ]).toHaveLength(2);
    expect(importsOf("import { x } from '../watch/daemon.ts';\nimport fs from 'node:fs';")).toEqual([
      '../watch/daemon.ts',
      'node:fs',
    ]);
    expect(layerOf('render/haproxy.ts').layer).toBeLessThan(layerOf('watch/daemon.ts').layer);
    expect(IO_MODULES.test('node:fs')).toBe(true);
    expect(/\bprocess\s*[.[]/.test(code('const a = process.env;'))).toBe(true);
    expect(/\bprocess\s*[.[]/.test(code("// process.env in a comment\nconst s = 'process.env';"))).toBe(false);
  });
});
