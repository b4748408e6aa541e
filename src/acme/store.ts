/**
 * The ACME storage folder (`acme.storage`): the account key, one certificate file per host (its
 * chain, leaf first, then its key: HAProxy and Nginx both read that one file), and the state that makes
 * orders survive restarts (account URL, the order in flight per host and its key).
 *
 *   <storage>/account.key          the ACME account key
 *   <storage>/state.json           account URL, orders in flight, last errors and retry times
 *   <storage>/certs/<host>.<hash>.pem  certificate chain + key, served by the proxies; named after
 *                                  its content, so a renewed certificate changes the rendered
 *                                  config and the proxies reload (same name: they would keep the
 *                                  old one in memory); the one before is removed a minute later
 *   <storage>/orders/<host>.key    the key of the order in flight (its CSR is made from it)
 *
 * Every file is written 0600 in a 0700 folder, atomically (temp file, fsync, rename), so a crash
 * leaves the old file or the new one, never half of one. Nothing here logs a key.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';

export interface StoredOrder {
  /** The order's URL at the ACME server: fetched again after a restart instead of ordering anew. */
  url: string;
  /** When it was created (ms); orders expire at the server, after a week at Let's Encrypt. */
  createdMs: number;
}

export interface HostState {
  order?: StoredOrder;
  /** The last failure: the ACME server's problem (type and detail) or the local error. */
  lastError?: { timeMs: number; message: string };
  /** Failed attempts in a row (backoff grows with it). */
  failures?: number;
  /** Not before this time (backoff, the server's Retry-After). */
  nextAttemptMs?: number;
}

export interface AcmeState {
  version: 1;
  /** The account, per directory URL (a changed directory gets its own account). */
  accounts: Record<string, { url: string }>;
  hosts: Record<string, HostState>;
}

const EMPTY: AcmeState = { version: 1, accounts: {}, hosts: {} };

/** Host names are checked by the route parser; this keeps a file name a file name whatever happens. */
function fileStem(host: string): string {
  if (!/^[a-z0-9.-]+$/.test(host) || host.startsWith('.')) throw new Error(`not a host name: ${JSON.stringify(host)}`);
  return host;
}

export class AcmeStore {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  certFile(host: string, content: string): string {
    const hash = createHash('sha256').update(content).digest('hex').slice(0, 12);
    return path.join(this.dir, 'certs', `${fileStem(host)}.${hash}.pem`);
  }

  /** Every certificate file of the folder, by host. */
  async certFiles(): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    for (const name of await readdir(path.join(this.dir, 'certs'))) {
      const m = /^([a-z0-9.-]+)\.[0-9a-f]{12}\.pem$/.exec(name);
      if (!m) continue;
      const host = m[1] as string;
      out.set(host, [...(out.get(host) ?? []), path.join(this.dir, 'certs', name)]);
    }
    return out;
  }

  orderKeyFile(host: string): string {
    return path.join(this.dir, 'orders', `${fileStem(host)}.key`);
  }

  get accountKeyFile(): string {
    return path.join(this.dir, 'account.key');
  }

  get stateFile(): string {
    return path.join(this.dir, 'state.json');
  }

  async init(): Promise<void> {
    for (const d of [this.dir, path.join(this.dir, 'certs'), path.join(this.dir, 'orders')]) {
      await mkdir(d, { recursive: true, mode: 0o700 });
      await chmod(d, 0o700);
    }
  }

  async readState(): Promise<AcmeState> {
    const text = await readOptional(this.stateFile);
    if (text === undefined) return structuredClone(EMPTY);
    const parsed = JSON.parse(text) as Partial<AcmeState>;
    return { version: 1, accounts: parsed.accounts ?? {}, hosts: parsed.hosts ?? {} };
  }

  writeState(state: AcmeState): Promise<void> {
    return writeSecret(this.stateFile, `${JSON.stringify(state, null, 2)}\n`);
  }

  read(file: string): Promise<string | undefined> {
    return readOptional(file);
  }

  write(file: string, content: string): Promise<void> {
    return writeSecret(file, content);
  }

  async remove(file: string): Promise<void> {
    await rm(file, { force: true });
  }
}

async function readOptional(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** 0600, atomically: a temp file next to it (created 0600, so the secret is never readable), fsync, rename. */
export async function writeSecret(file: string, content: string): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(tmp, 'wx', 0o600);
  try {
    await handle.writeFile(content);
    await handle.chmod(0o600);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(tmp, file);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
}
