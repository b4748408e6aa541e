/**
 * The settings of deploy/malloc.env as environment variables: its `NAME=value` lines (comments and
 * blank lines left out). What bench/watch.ts gives the daemons it measures; scripts/build-images.sh
 * reads the same lines (`grep -E '^[A-Z_]+=[^ ]+$'`) into every image's ENV, and
 * test/config/deploy-stack.test.ts holds the two readers to the file.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const MALLOC_ENV_FILE = fileURLToPath(new URL('../../deploy/malloc.env', import.meta.url));

export function readMallocEnv(file: string = MALLOC_ENV_FILE): Record<string, string> {
  return Object.fromEntries(
    readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => /^[A-Z_]+=[^ ]+$/.test(l))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}
