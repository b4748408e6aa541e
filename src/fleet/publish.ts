/**
 * A planned output → the bundle agents get: its rendered files (named relative to the output's
 * folder) and the TLS files its routes make the proxy load, read from disk here.
 *
 * ACME certificates live in `acme.storage`, wherever that is, and the rendered files name them
 * there. One inside the output's folder travels under its own name; one outside travels as
 * `interlock-acme/<file>` and the rendered files are made to name that copy under the folder, so
 * each agent's rebase puts it under its --dir. Keys are secret files (written 0600, never logged).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { acmeFilesOf, tlsFilesOf } from '../apply/material.ts';
import { type PlannedOutput, withAbsolutePaths } from '../pipeline.ts';
import { ACME_BUNDLE_DIR, type Bundle, type BundleFile, makeBundle } from './bundle.ts';

/** Largest TLS file carried (a certificate chain with its key is a few KiB). */
const MAX_TLS_FILE = 1024 * 1024;

async function readTls(file: string): Promise<string> {
  const content = await readFile(file);
  if (content.length > MAX_TLS_FILE) throw new Error(`TLS file ${file} is larger than 1 MiB`);
  return content.toString('utf8');
}

function inside(root: string, file: string): string | undefined {
  const rel = path.relative(root, file);
  return rel === '' || rel.startsWith('..') || path.isAbsolute(rel) ? undefined : rel.split(path.sep).join('/');
}

export async function bundleOf(planned: PlannedOutput, configDir: string): Promise<Bundle> {
  const main = planned.files[planned.files.length - 1];
  if (!main) throw new Error(`output ${planned.name} rendered no files`);
  const root = path.dirname(main.path);
  const tls: BundleFile[] = [];
  for (const file of tlsFilesOf(withAbsolutePaths(planned.output, configDir), planned.routeList, planned.acmeHosts)) {
    const name = inside(root, file);
    if (name === undefined)
      throw new Error(
        `TLS file ${file} is outside the output's folder ${root}: agents write only under their folder; put certDir (and defaultCert) under ${root}`,
      );
    tls.push({ name, content: await readTls(file), secret: true });
  }
  /** ACME files outside the folder: storage path → the copy's path under the root. */
  const moved = new Map<string, string>();
  for (const file of acmeFilesOf(planned.routeList, planned.acmeCertificates)) {
    let name = inside(root, file);
    if (name === undefined) {
      name = `${ACME_BUNDLE_DIR}/${path.basename(file)}`;
      moved.set(file, path.posix.join(root, name));
    }
    if (tls.some((t) => t.name === name)) continue;
    tls.push({ name, content: await readTls(file), secret: true });
  }
  const rendered: BundleFile[] = planned.files.map((f) => {
    const name = inside(root, f.path);
    if (name === undefined) throw new Error(`rendered file ${f.path} is outside ${root}`);
    let content = f.content;
    for (const [from, to] of moved) content = content.replaceAll(from, to);
    // A path the renderer had to quote or escape would not be found: refuse rather than ship a
    // file that names a certificate the agent does not have.
    for (const from of moved.keys())
      if (content.includes(path.dirname(from)))
        throw new Error(`cannot point ${f.path} at the carried copy of the ACME certificate ${from}`);
    return { name, content, ...(f.private ? { private: true } : {}) };
  });
  // The proxy's run folder (Nginx's runDir), for the agents to create: `validate` keeps a served
  // output's under its folder. (Under `--out-dir` the files move and the run folder does not: the
  // files then name it where it is, and there is nothing to carry.)
  const dirs = (planned.runDirs ?? []).flatMap((d) => inside(root, d) ?? []);
  return makeBundle(planned.name, planned.output.kind, root, [...tls, ...rendered], dirs);
}
