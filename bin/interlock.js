#!/usr/bin/env node
// The package is built into dist/ by `npm install` (the `prepare` script); the command line runs
// its bundle, dist/cli-bundle/ (see rolldown.config.mjs).
try {
  await import('../dist/cli-bundle/main.js');
} catch (error) {
  if (error?.code === 'ERR_MODULE_NOT_FOUND' && String(error.message).includes('dist/cli-bundle/main.js')) {
    process.stderr.write('interlock: dist/ is missing; run `npm install` (or `npm run build`) first.\n');
    process.exitCode = 2;
  } else {
    throw error;
  }
}
