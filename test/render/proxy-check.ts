/**
 * Running rendered files through the real proxies: `haproxy -c` and `nginx -t`, in a scratch copy
 * of the output folder. Without the binary a check fails under CI (missing infrastructure must not
 * pass as green) and is skipped elsewhere, with the reason in the test name.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, readFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { it } from 'vitest';
import type { RenderedFile } from '../../src/render/types.ts';

// Package binaries live in sbin dirs, which a non-root PATH often lacks.
const EXTRA_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/local/bin', '/usr/bin'];

export function findTool(name: string): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean), ...EXTRA_DIRS]) {
    const file = path.join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

function isCi(): boolean {
  const ci = process.env.CI;
  return ci !== undefined && ci !== '' && ci !== '0' && ci.toLowerCase() !== 'false';
}

/** An `it` that needs `tools`: runs with them, fails in CI without them, is skipped otherwise. */
export function itWithTools(name: string, tools: readonly string[], fn: () => Promise<void>, timeout?: number): void {
  const missing = tools.filter((t) => findTool(t) === undefined);
  if (missing.length === 0) {
    it(name, fn, timeout);
  } else if (isCi()) {
    it(name, () => {
      throw new Error(`${missing.join(', ')} not installed; run scripts/setup-test-infra.sh (CI must not skip this)`);
    });
  } else {
    it.skip(`${name} [skipped: ${missing.join(', ')} not installed]`, fn);
  }
}

export interface Scratch {
  dir: string;
  remove(): Promise<void>;
}

/** Writes files into a fresh temp dir, as they would sit next to each other in the output folder. */
export async function scratchDir(files: readonly RenderedFile[], prefix = 'interlock-render-'): Promise<Scratch> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  for (const f of files) {
    await mkdir(path.dirname(path.join(dir, f.name)), { recursive: true });
    await writeFile(path.join(dir, f.name), f.content);
  }
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

export interface CheckResult {
  ok: boolean;
  output: string;
}

function run(file: string, args: readonly string[], cwd: string): CheckResult {
  // Run from / so that only `default-path config` (HAProxy) or -p (Nginx) can make relative paths work.
  const r = spawnSync(file, args, { cwd, encoding: 'utf8', timeout: 60_000 });
  return { ok: r.status === 0, output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

export function haproxyCheck(dir: string, cfg = 'haproxy.cfg'): CheckResult {
  const haproxy = findTool('haproxy');
  if (!haproxy) throw new Error('haproxy is not installed');
  return run(haproxy, ['-c', '-f', path.join(dir, cfg)], '/');
}

export function nginxCheck(dir: string, conf = 'nginx.conf'): CheckResult {
  const nginx = findTool('nginx');
  if (!nginx) throw new Error('nginx is not installed');
  return run(nginx, ['-t', '-p', dir, '-c', path.join(dir, conf)], '/');
}

/** A throwaway self-signed certificate and key in one PEM file, as both proxies accept it. */
export function selfSignedPem(): string {
  const { cert, key } = selfSignedPair();
  return `${cert}${key}`;
}

/** A throwaway self-signed certificate and its key, as two PEM texts (`cn` also goes into the SAN). */
export function selfSignedPair(cn = 'test'): { cert: string; key: string } {
  const openssl = findTool('openssl');
  if (!openssl) throw new Error('openssl is not installed');
  const dir = os.tmpdir();
  const stamp = `${process.pid}-${Math.random().toString(36).slice(2)}`;
  const cert = path.join(dir, `interlock-cert-${stamp}.pem`);
  const key = path.join(dir, `interlock-key-${stamp}.pem`);
  const r = spawnSync(
    openssl,
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      `/CN=${cn}`,
      '-addext',
      `subjectAltName=DNS:${cn}`,
      '-days',
      '1',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { encoding: 'utf8', timeout: 60_000 },
  );
  try {
    if (r.status !== 0) throw new Error(`openssl failed: ${r.stderr}`);
    return { cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8') };
  } finally {
    rmSync(cert, { force: true });
    rmSync(key, { force: true });
  }
}
