/**
 * A planned output → the bundle agents get: its rendered files (named relative to the output's
 * folder) and the TLS files its routes make the proxy load, read from disk here.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { tlsFilesOf } from '../apply/material.ts';
import { type PlannedOutput, withAbsolutePaths } from '../pipeline.ts';
import { type Bundle, type BundleFile, makeBundle } from './bundle.ts';

/** Largest TLS file carried (a certificate chain with its key is a few KiB). */
const MAX_TLS_FILE = 1024 * 1024;

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
    const content = await readFile(file);
    if (content.length > MAX_TLS_FILE) throw new Error(`TLS file ${file} is larger than 1 MiB`);
    tls.push({ name, content: content.toString('utf8'), secret: true });
  }
  const rendered: BundleFile[] = planned.files.map((f) => {
    const name = inside(root, f.path);
    if (name === undefined) throw new Error(`rendered file ${f.path} is outside ${root}`);
    return { name, content: f.content };
  });
  return makeBundle(planned.name, planned.output.kind, root, [...tls, ...rendered]);
}
