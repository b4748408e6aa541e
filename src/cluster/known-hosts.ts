/**
 * OpenSSH known_hosts: the host keys accepted (and revoked) for HOST:PORT, plain, hashed and
 * wildcard entries, and the key algorithms to offer for them.
 */
import { createHmac } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type Docker from 'dockerode';

type ConnectAlgorithms = NonNullable<NonNullable<Docker.DockerOptions['sshOptions']>['algorithms']>;

export interface HostKeys {
  accepted: Buffer[];
  revoked: Buffer[];
  /** Key types of the accepted keys (e.g. ssh-ed25519), to offer only those in the handshake. */
  types: string[];
}

/** Host keys for HOST:PORT in an OpenSSH known_hosts file (plain, hashed and wildcard entries). */
export async function knownHostKeys(file: string, host: string, port: number): Promise<HostKeys> {
  const result: HostKeys = { accepted: [], revoked: [], types: [] };
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return result;
  }
  const name = port === 22 ? host : `[${host}]:${port}`;
  for (const rawLine of text.split('\n')) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    let marker: string | undefined;
    if (fields[0]?.startsWith('@')) marker = fields.shift();
    const [patterns, keyType, keyBase64] = fields;
    if (!patterns || !keyType || !keyBase64) continue;
    // Certificate authorities sign host certificates, which this client does not check.
    if (marker === '@cert-authority') continue;
    if (!hostMatches(patterns, name)) continue;
    const key = Buffer.from(keyBase64, 'base64');
    if (marker === '@revoked') result.revoked.push(key);
    else {
      result.accepted.push(key);
      if (!result.types.includes(keyType)) result.types.push(keyType);
    }
  }
  return result;
}

export function hostKeyAlgorithms(types: readonly string[]): ConnectAlgorithms['serverHostKey'] {
  const out: string[] = [];
  for (const type of types) {
    // An RSA key is offered under the SHA-2 signature names too.
    if (type === 'ssh-rsa') out.push('rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa');
    else out.push(type);
  }
  return out as ConnectAlgorithms['serverHostKey'];
}

function hostMatches(patterns: string, name: string): boolean {
  if (patterns.startsWith('|1|')) {
    const [, , salt, hash] = patterns.split('|');
    if (!salt || !hash) return false;
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
  }
  let matched = false;
  for (const pattern of patterns.split(',')) {
    const negated = pattern.startsWith('!');
    const glob = negated ? pattern.slice(1) : pattern;
    const re = new RegExp(
      `^${glob
        .split('')
        .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
        .join('')}$`,
      'i',
    );
    if (re.test(name)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}
