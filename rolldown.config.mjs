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
 * Inlined: interlock's code, zod and yargs' CommonJS build (with what they import). Left as packages in
 * node_modules, loaded as before and only when needed: every other dependency (jiti, yaml,
 * dockerode, ssh2, acme-client, prom-client, mustache, tldts).
 * The chunks stay two folders below the package root, as dist/cli/ is: the code finds
 * templates/, package.json and dist/index.js relative to its own file.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { defineConfig } from 'rolldown';
// The hook's own test of a dynamic import (tsc has built dist/ before this runs: `npm run build`).
import { DYNAMIC_IMPORT } from './dist/cli/code-cache.js';

const INLINED = new Set(['zod', 'yargs']);
const require = createRequire(import.meta.url);

/**
 * yargs as its CommonJS build (src/cli/main.ts says why), inlined with what it requires. Its
 * messages in the user's language stay where yargs keeps them: y18n reads them from yargs'
 * own locales/ folder, found from the package, not next to the chunk.
 */
const yargsCommonJs = {
  name: 'yargs-commonjs-locales',
  transform(code, id) {
    if (!id.endsWith(`${path.sep}yargs${path.sep}build${path.sep}index.cjs`)) return null;
    const from = 're(__dirname,"../locales")';
    if (!code.includes(from)) this.error(`yargs' build no longer has ${from}: see rolldown.config.mjs`);
    // map: null keeps the mappings: the change is inside one line of a one-line file.
    return { code: code.replace(from, 're(require.resolve("yargs/package.json"),"../locales")'), map: null };
  },
};
/** Fails the build if a chunk would be compiled without the code cache (src/cli/code-cache.ts). */
const noDynamicImport = {
  name: 'no-dynamic-import',
  generateBundle(_options, bundle) {
    for (const chunk of Object.values(bundle)) {
      if (chunk.type === 'chunk' && DYNAMIC_IMPORT.test(chunk.code)) {
        this.error(`${chunk.fileName} has a dynamic import(): it would load without the code cache`);
      }
    }
  },
};

const pkg = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8'));
const packages = Object.keys(pkg.dependencies).filter((name) => !INLINED.has(name));

export default defineConfig({
  // code-cache: what bin/interlock.js loads first, to load main through it.
  input: { main: 'dist/cli/main.js', 'code-cache': 'dist/cli/code-cache.js' },
  platform: 'node',
  resolve: { alias: { 'yargs/yargs': require.resolve('yargs/yargs') } },
  plugins: [yargsCommonJs, noDynamicImport],
  external: [/^node:/, ...packages.map((name) => new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(/|$)`))],
  // CommonJS, so bin/interlock.js can load it through V8's code cache (src/cli/code-cache.ts: Node 20
  // has no compile cache for ES modules). The on-demand imports become on-demand requires.
  output: {
    dir: 'dist/cli-bundle',
    cleanDir: true,
    format: 'cjs',
    entryFileNames: '[name].cjs',
    chunkFileNames: '[name]-[hash].cjs',
    // Packages imported on demand (yaml) are required on demand too: a chunk with a dynamic import()
    // would be compiled without the cache (code-cache.ts says why).
    dynamicImportInCjs: false,
    // JSDoc goes (a comment such as `typeof import('x')` reads as a dynamic import to the hook).
    comments: { legal: true, annotation: true, jsdoc: false },
    sourcemap: true,
  },
});
