/**
 * For tests that check the CPU % of a Swarm task running a busy loop.
 *
 * - Two such tests must not run at the same time: on the two-core test machines two busy loops
 *   plus the tests beside them leave each loop less than the 50 % the tests look for. Test files
 *   run in parallel worker processes, so the lock is a directory in the temp dir (mkdir is atomic)
 *   holding the owner's pid; a lock left by a dead worker is taken over. Waiting is bounded.
 * - The loop shows above 50 % only when the machine leaves it that much, and other tests (load
 *   tests, proxies) can take most of the machine. So the values are checked against what the
 *   engine accounted to the container over the same run, read apart from interlock, and against
 *   50 % whenever the loop clearly got more than that.
 */
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { expect } from 'vitest';
import { dockerCli } from '../helpers/infra.ts';

const LOCK_DIR = path.join(os.tmpdir(), 'interlock-test-busy-loop.lock');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Resolves with the release function once this process holds the lock. */
export async function acquireBusyLoopLock(timeoutMs = 150_000): Promise<() => Promise<void>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await mkdir(LOCK_DIR);
      await writeFile(path.join(LOCK_DIR, 'pid'), String(process.pid));
      let released = false;
      return async () => {
        if (released) return;
        released = true;
        await rm(LOCK_DIR, { recursive: true, force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const owner = Number(await readFile(path.join(LOCK_DIR, 'pid'), 'utf8').catch(() => ''));
    // No pid yet: the owner is between mkdir and writeFile, or died there (then the dir gets old).
    const age = Date.now() - ((await stat(LOCK_DIR).catch(() => undefined))?.mtimeMs ?? Date.now());
    const dead = owner > 0 ? owner !== process.pid && !alive(owner) : age > 10_000;
    if (dead) {
      await rm(LOCK_DIR, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`the busy-loop lock ${LOCK_DIR} is still held by pid ${owner}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

export interface CpuCounters {
  total: number;
  system: number;
  cpus: number;
}

/** The busy task's CPU counters as the engine reports them, read apart from interlock. */
export async function cpuCounters(service: string): Promise<CpuCounters> {
  const id = (await dockerCli(['ps', '-q', '--no-trunc', '--filter', `label=com.docker.swarm.service.name=${service}`]))
    .trim()
    .split('\n')[0];
  if (!id) throw new Error(`no running container of ${service}`);
  const body = (await new Docker({ socketPath: '/var/run/docker.sock' })
    .getContainer(id)
    .stats({ stream: false, 'one-shot': true })) as unknown as {
    cpu_stats: { cpu_usage: { total_usage: number }; system_cpu_usage: number; online_cpus: number };
  };
  return {
    total: body.cpu_stats.cpu_usage.total_usage,
    system: body.cpu_stats.system_cpu_usage,
    cpus: body.cpu_stats.online_cpus,
  };
}

/** What the loop really got between two readings, in docker's CPU % (100 = one CPU). */
export function referencePercent(before: CpuCounters, after: CpuCounters): number {
  return ((after.total - before.total) / (after.system - before.system)) * after.cpus * 100;
}

/**
 * What interlock measured (`values`) against the reference: their mean within `tolerance` points,
 * and above 50 % whenever the loop got more than 75 % of a CPU.
 */
export function expectBusyCpu(values: readonly number[], reference: number, tolerance: number): void {
  const context = `measured ${JSON.stringify(values)}, the loop got ${reference.toFixed(1)} % over the run`;
  expect(values.length, context).toBeGreaterThan(0);
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  expect(Math.abs(mean - reference), context).toBeLessThan(tolerance);
  if (reference > 75) expect(Math.max(...values), context).toBeGreaterThan(50);
}
