/**
 * The docker CLI's context store, read as the CLI reads it: `currentContext` in config.json, and
 * each context's endpoint host and TLS material under contexts/meta/<sha256 of the name>/ and
 * contexts/tls/<sha256>/docker/. Reads files only; `fail` turns a problem into the caller's error.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { errorText, existing, isErrno, nonEmpty } from './local-files.ts';

type Fail = (message: string, cause?: unknown) => never;

/** A context's docker endpoint, as stored. */
export interface StoredContext {
  host: string;
  skipTlsVerify: boolean;
  /** The TLS files the context holds (each only when it exists). */
  files: { ca?: string | undefined; cert?: string | undefined; key?: string | undefined };
}

/** sha256 hex of a context name: the directory name the docker CLI stores the context under. */
export function contextDirName(name: string): string {
  return createHash('sha256').update(name).digest('hex');
}

/** The context config.json names as current, if any. */
export async function currentContext(dockerConfigDir: string, fail: Fail): Promise<string | undefined> {
  const file = path.join(dockerConfigDir, 'config.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return undefined;
    fail(`cannot read ${file}: ${errorText(error)}`, error);
  }
  try {
    const parsed = JSON.parse(text) as { currentContext?: unknown };
    return typeof parsed.currentContext === 'string' ? nonEmpty(parsed.currentContext) : undefined;
  } catch (error) {
    fail(`${file} is not valid JSON: ${errorText(error)}`, error);
  }
}

/** Reads context `name` (not `default`, which is no stored context); `from` says who named it, for messages. */
export async function readContext(
  dockerConfigDir: string,
  name: string,
  from: string,
  fail: Fail,
): Promise<StoredContext> {
  const id = contextDirName(name);
  const storeDir = path.join(dockerConfigDir, 'contexts');
  const metaFile = path.join(storeDir, 'meta', id, 'meta.json');
  let text: string;
  try {
    text = await readFile(metaFile, 'utf8');
  } catch (error) {
    if (!isErrno(error, 'ENOENT')) fail(`cannot read Docker context "${name}" (${metaFile}): ${errorText(error)}`);
    const known = await listContexts(dockerConfigDir);
    fail(
      `Docker context "${name}"${from} does not exist in ${storeDir}; contexts there: ${known.join(', ')}. Create it with \`docker context create\` or name one of those.`,
    );
  }
  let host: string | undefined;
  let skipTlsVerify = false;
  try {
    const meta = JSON.parse(text) as { Endpoints?: { docker?: { Host?: unknown; SkipTLSVerify?: unknown } } };
    const docker = meta.Endpoints?.docker;
    host = typeof docker?.Host === 'string' ? nonEmpty(docker.Host) : undefined;
    skipTlsVerify = docker?.SkipTLSVerify === true;
  } catch (error) {
    fail(`Docker context "${name}": ${metaFile} is not valid JSON: ${errorText(error)}`, error);
  }
  if (!host) fail(`Docker context "${name}" has no docker endpoint host (${metaFile})`);
  const tlsDir = path.join(storeDir, 'tls', id, 'docker');
  const files = {
    ca: await existing(path.join(tlsDir, 'ca.pem')),
    cert: await existing(path.join(tlsDir, 'cert.pem')),
    key: await existing(path.join(tlsDir, 'key.pem')),
  };
  return { host, skipTlsVerify, files };
}

/** Context names in the CLI's store, sorted, with the built-in `default` first. */
async function listContexts(dockerConfigDir: string): Promise<string[]> {
  const metaDir = path.join(dockerConfigDir, 'contexts', 'meta');
  let ids: string[];
  try {
    ids = await readdir(metaDir);
  } catch {
    return ['default'];
  }
  const names: string[] = [];
  for (const id of ids) {
    try {
      const meta = JSON.parse(await readFile(path.join(metaDir, id, 'meta.json'), 'utf8')) as { Name?: unknown };
      if (typeof meta.Name === 'string' && meta.Name !== '') names.push(meta.Name);
    } catch {
      // A broken entry is not a context the CLI would list either.
    }
  }
  names.sort();
  return ['default', ...names.filter((n) => n !== 'default')];
}
