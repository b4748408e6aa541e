/**
 * A bundle: everything one output's proxies need, as the controller serves it to `interlock agent`s.
 * Pure: data, hashing and path arithmetic only.
 *
 * - `files` are named relative to `root`, the folder of the output's file as the controller
 *   rendered it (the path on the proxy hosts). Write order: TLS files, then the files next to the
 *   main file (maps, crt-list), the main file last.
 * - `dirs` are folders the proxy needs that hold no file of the bundle, relative to `root`: Nginx's
 *   `runDir` (pid file, temp paths, error log; `nginx -t` opens them too). An agent creates them
 *   in its scratch folder for the check and in its own folder before it writes.
 * - `hash` is sha256 over the kind, the root, the dirs and every file's name, secrecy and bytes:
 *   equal hashes mean byte-identical files, so an agent compares hashes, never contents.
 * - An agent writes into its own folder: every occurrence of `root` as a path in the contents
 *   (certificates, Nginx's run folder, HAProxy's stats socket) is rebased onto that folder.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { z } from 'zod';
import { updateText } from '../render/text-hash.ts';

export const BUNDLE_VERSION = 1;

/**
 * Where ACME certificates from outside the output's folder travel in a bundle (relative to its
 * root): `interlock-acme/<host>.<hash>.pem`, the issuer's file name (src/acme/store.ts).
 */
export const ACME_BUNDLE_DIR = 'interlock-acme';
/** The issuer's certificate file names: what an agent may remove from ACME_BUNDLE_DIR. */
export const ACME_FILE_NAME = /^[a-z0-9.-]+\.[0-9a-f]{12}\.pem$/;

export interface BundleFile {
  /** Relative to the bundle's root: `haproxy.cfg`, `haproxy.hosts.<hash>.map`, `certs/a.pem`. */
  name: string;
  content: string;
  /** Key material: written 0600, never logged. */
  secret?: boolean;
  /** Holds password hashes (basic auth: an htpasswd file, or an HAProxy config with a userlist): written 0640, as on the controller. */
  private?: boolean;
}

export interface Bundle {
  version: typeof BUNDLE_VERSION;
  output: string;
  kind: 'haproxy' | 'nginx';
  hash: string;
  /** The output's folder as rendered (absolute). */
  root: string;
  /** The main file's name (also the last of `files`). */
  main: string;
  files: BundleFile[];
  /** Folders to create under the root that hold no file (sorted, relative); absent when none. */
  dirs?: string[];
}

export function bundleHash(
  kind: string,
  root: string,
  files: readonly BundleFile[],
  dirs: readonly string[] = [],
): string {
  const h = createHash('sha256');
  h.update(`interlock-bundle-v${BUNDLE_VERSION}\0${kind}\0${root}\0`);
  // Only when there are some: the hashes of bundles without folders stay what they were.
  if (dirs.length > 0) h.update(`dirs\0${dirs.join('\0')}\0\0`);
  for (const f of files)
    updateText(h.update(`${f.name}\0${f.secret ? 1 : f.private ? 2 : 0}\0`), f.content).update('\0');
  return h.digest('hex');
}

export function makeBundle(
  output: string,
  kind: Bundle['kind'],
  root: string,
  files: readonly BundleFile[],
  dirs: readonly string[] = [],
): Bundle {
  const main = files[files.length - 1];
  if (!main) throw new Error(`output ${output} rendered no files`);
  const sorted = [...new Set(dirs)].sort();
  return {
    version: BUNDLE_VERSION,
    output,
    kind,
    hash: bundleHash(kind, root, files, sorted),
    root,
    main: main.name,
    files: [...files],
    ...(sorted.length > 0 ? { dirs: sorted } : {}),
  };
}

/**
 * Why a file name cannot be written under an agent's folder, or undefined when it can: relative,
 * normalised, no `..`, no control characters.
 */
export function badName(name: string): string | undefined {
  if (name === '' || name.length > 4096) return 'empty or too long';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing them is the point
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'has a control character';
  if (path.posix.isAbsolute(name)) return 'is absolute';
  if (path.posix.normalize(name) !== name || name.split('/').includes('..')) return 'leaves its folder';
  return undefined;
}

const fileSchema = z.strictObject({
  name: z.string(),
  content: z.string(),
  secret: z.boolean().optional(),
  private: z.boolean().optional(),
});

const bundleSchema = z.strictObject({
  version: z.literal(BUNDLE_VERSION),
  output: z.string().min(1),
  kind: z.enum(['haproxy', 'nginx']),
  hash: z.string().regex(/^[0-9a-f]{64}$/),
  root: z.string().min(1),
  main: z.string().min(1),
  files: z.array(fileSchema).min(1),
  dirs: z.array(z.string()).max(64).optional(),
});

/**
 * A bundle as an agent receives it: shape checked, names safe, hash recomputed. Throws with the
 * reason otherwise (the agent refuses it and keeps its files).
 */
export function parseBundle(value: unknown): Bundle {
  const r = bundleSchema.safeParse(value);
  if (!r.success) throw new Error(`not a bundle: ${r.error.issues[0]?.message ?? 'bad shape'}`);
  const b = r.data as Bundle;
  if (!path.posix.isAbsolute(b.root)) throw new Error(`bundle root ${JSON.stringify(b.root)} is not absolute`);
  for (const f of b.files) {
    const why = badName(f.name);
    if (why) throw new Error(`bundle file name ${JSON.stringify(f.name)} ${why}`);
  }
  for (const d of b.dirs ?? []) {
    const why = badName(d);
    if (why) throw new Error(`bundle folder name ${JSON.stringify(d)} ${why}`);
  }
  if (b.files[b.files.length - 1]?.name !== b.main) throw new Error('bundle main file is not its last file');
  if (bundleHash(b.kind, b.root, b.files, b.dirs) !== b.hash) throw new Error('bundle hash does not match its files');
  return b;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * The bundle's files as they go under `dir`: absolute paths, and the contents with the bundle's
 * root rebased onto `dir` wherever it appears as a path (followed by `/`, a space, `;`, a quote or
 * the end of a line). `dir` must be absolute.
 */
export function rebase(
  bundle: Bundle,
  dir: string,
): { path: string; content: string; secret: boolean; private?: true }[] {
  const root = bundle.root.replace(/\/+$/, '') || '/';
  const target = dir.replace(/\/+$/, '') || '/';
  const same = root === target;
  const re = new RegExp(`${escapeRegExp(root)}(?=[/\\s;"']|$)`, 'gm');
  return bundle.files.map((f) => ({
    path: path.join(target, f.name),
    content: same ? f.content : f.content.replace(re, target),
    secret: f.secret === true,
    ...(f.private === true ? { private: true as const } : {}),
  }));
}
