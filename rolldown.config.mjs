/**
 * The command line's bundle (start-up, issue 12): `npm run build` compiles src/ with tsc into dist/
 * (the library entry, its types, and the modules the tests and a config's `import 'interlock'`
 * use), then bundles the command line from that output into dist/cli-bundle/, which
 * bin/interlock.js runs.
 *
 * Why: Node 20 has no compile cache, and its ES module loader pays per file. zod alone is 95
 * files (60 of them locales interlock never uses), yargs ~35, interlock's own ~60: loading them
 * one by one was ~140 ms of CPU on every `validate` and `render`. Here they are a few chunks,
 * split where the code imports on demand (each command, the render code, the schema's JSON
 * Schema), so a command still loads only what it uses.
 *
 * Inlined: interlock's code, zod and yargs (with what they import). Left as packages in
 * node_modules, loaded as before and only when needed: every other dependency (jiti, yaml,
 * dockerode, ssh2, acme-client, prom-client, mustache, tldts).
 * The chunks stay two folders below the package root, as dist/cli/ is: the code finds
 * templates/, package.json and dist/index.js relative to its own file.
 */
import { readFileSync } from 'node:fs';
import { defineConfig } from 'rolldown';

const INLINED = new Set(['zod']);
const pkg = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8'));
const packages = Object.keys(pkg.dependencies).filter((name) => !INLINED.has(name));

export default defineConfig({
  input: { main: 'dist/cli/main.js' },
  platform: 'node',
  external: [/^node:/, ...packages.map((name) => new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(/|$)`))],
  output: { dir: 'dist/cli-bundle', cleanDir: true, format: 'esm', sourcemap: true },
});
