/**
 * Parsed templates kept between runs (start-up, issue 12). mustache.js parses a template again in
 * every process, ~3–6 ms for each of the shipped ones, on every `render`. Its own template cache
 * is pluggable: this one also keeps each parse (mustache's token lists, plain JSON) in the code
 * cache's folder (src/cli/code-cache.ts: `$INTERLOCK_CODE_CACHE`, private to the user), under a
 * name of mustache's version, the template text and its tags. The render core is unchanged: it
 * calls `Mustache.parse` as before, and a missing or unreadable entry means parsing as before.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import Mustache from 'mustache';
import { entryName, privateCacheDir, writeEntry } from '../runtime/cache-dir.ts';
import { CODE_CACHE_ENV } from './code-cache.ts';

let installedIn: string | undefined;

/** Installs the cache (once per process); returns its folder, undefined when there is none. */
export function keepParsedTemplates(env: Readonly<Record<string, string | undefined>>): string | undefined {
  if (installedIn !== undefined) return installedIn;
  const dir = privateCacheDir(env, CODE_CACHE_ENV, 'code');
  if (dir === undefined) return undefined;
  const memory = new Map<string, unknown>();
  const file = (key: string) => path.join(dir, `tpl-${entryName(`${Mustache.version}\0${key}`)}.json`);
  Mustache.templateCache = {
    get(key: string) {
      if (memory.has(key)) return memory.get(key);
      try {
        const tokens: unknown = JSON.parse(readFileSync(file(key), 'utf8'));
        if (!Array.isArray(tokens)) return undefined;
        memory.set(key, tokens);
        return tokens;
      } catch {
        return undefined;
      }
    },
    set(key: string, tokens: unknown) {
      memory.set(key, tokens);
      // Not written: the next run parses it again.
      writeEntry(file(key), JSON.stringify(tokens));
    },
    clear() {
      memory.clear();
    },
  } as typeof Mustache.templateCache;
  installedIn = dir;
  return dir;
}
