/**
 * Reading the config's `policyFiles` folder at the edge (the pure pipeline gets the result as
 * data): the files labels may name for basic-auth users and error pages, e.g. /run/secrets, where
 * Docker mounts a service's secrets. Only the folder's own regular files (symbolic links followed,
 * as Docker and Kubernetes mount secrets) with names a label can write; nothing below it. Each
 * file is read once per render, so a rotated secret counts at the next render.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { MAX_POLICY_FILE_BYTES, parsePolicyFileName } from '../parse/policy-fields.ts';
import type { PolicyFiles } from '../routes/types.ts';
import type { Config } from './schema.ts';

/** At most this many files are read from the folder; the rest are as if absent. */
export const MAX_POLICY_FILES = 1000;

/** The policyFiles folder's files (name → text, or why not), or undefined when the config names no folder. */
export async function readPolicyFiles(config: Config, configDir: string): Promise<PolicyFiles | undefined> {
  if (config.policyFiles === undefined) return undefined;
  const dir = path.resolve(configDir, config.policyFiles);
  const files = new Map<string, string | { error: string }>();
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    // A missing folder is as if empty: each service naming a file there gets the diagnostic.
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { dir, files };
    throw error;
  }
  for (const name of names.sort().slice(0, MAX_POLICY_FILES)) {
    if (!parsePolicyFileName(name).ok) continue;
    const file = path.join(dir, name);
    try {
      const s = await stat(file);
      if (!s.isFile()) continue;
      if (s.size > MAX_POLICY_FILE_BYTES) {
        files.set(name, { error: `it has ${s.size} bytes, more than ${MAX_POLICY_FILE_BYTES}` });
        continue;
      }
      const bytes = await readFile(file);
      const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
      files.set(name, text);
    } catch (error) {
      const e = error as NodeJS.ErrnoException;
      files.set(name, { error: e instanceof TypeError ? 'it is not UTF-8 text' : (e.code ?? e.message) });
    }
  }
  return { dir, files };
}
