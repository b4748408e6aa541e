#!/usr/bin/env node
// The package is built into dist/ by `npm install` (the `prepare` script); the command line runs
// its bundle, dist/cli-bundle/ (see rolldown.config.mjs), through a compiled-code cache
// (src/cli/code-cache.ts: Node 20 compiles every module from source on every run).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
let codeCache;
try {
  codeCache = require('../dist/cli-bundle/code-cache.cjs');
} catch (error) {
  if (error?.code === 'MODULE_NOT_FOUND' && String(error.message).includes('code-cache.cjs')) {
    process.stderr.write('interlock: dist/ is missing; run `npm install` (or `npm run build`) first.\n');
    process.exit(2);
  }
  throw error;
}
codeCache.installCodeCache(process.env);
require('../dist/cli-bundle/main.cjs');
