/** Spawns the real `interlock` binary with a minimal environment, as a user's shell would. */

import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Io } from '../../src/cli/io.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = path.join(ROOT, 'bin', 'interlock.js');
export const FIXTURES = path.join(ROOT, 'test', 'fixtures');

export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function interlock(
  args: readonly string[],
  options: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd ?? ROOT,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
    });
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export function fixture(...parts: string[]): string {
  return path.join(FIXTURES, ...parts);
}

/** An Io that records what a command prints and the highest exit code it sets, in `cwd`. */
export function captureIo(cwd: string): { io: Io; out: string[]; err: string[]; code: () => number } {
  const out: string[] = [];
  const err: string[] = [];
  let code = 0;
  return {
    io: {
      stdout: (t) => out.push(t),
      stderr: (t) => err.push(t),
      setExitCode: (c) => {
        code = Math.max(code, c);
      },
      cwd,
      env: {},
    },
    out,
    err,
    code: () => code,
  };
}
