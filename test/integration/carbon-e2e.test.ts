/**
 * The real binary against the test Swarm and a real carbon-cache on loopback: `interlock stats`
 * fills whisper files under the documented names with the right values, survives carbon going
 * away and coming back, and `interlock stats --once` prints plaintext lines.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BIN, interlock, ROOT } from '../helpers/exec.ts';
import { createService, describeIntegration, removeService, tempDir, uniqueServiceName } from '../helpers/infra.ts';
import { acquireBusyLoopLock, cpuCounters, expectBusyCpu, referencePercent } from '../stats/busy-loop.ts';
import { CarbonCache, type WhisperSeries } from '../stats/carbon-cache.ts';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const nowS = () => Math.floor(Date.now() / 1000);
/** The retention step of the test carbon-cache (storage-schemas: 10s:1h). */
const STEP = 10;
const INSTANCE = os.hostname().replace(/[^A-Za-z0-9_-]/g, '_');

interface StatsDaemon {
  output(): string;
  readonly exited: boolean;
  /** SIGTERM; resolves the exit code (SIGKILL after 10 s). */
  stop(): Promise<number | null>;
}

const children = new Set<ChildProcess>();

function startStats(configFile: string, command: 'stats' | 'watch' = 'stats'): StatsDaemon {
  const child = spawn(process.execPath, [BIN, command, '--config', configFile], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let text = '';
  const add = (b: Buffer) => {
    text += b.toString();
  };
  child.stdout.on('data', add);
  child.stderr.on('data', add);
  let code: number | null | undefined;
  const exit = new Promise<number | null>((resolve) => {
    child.once('exit', (c) => {
      code = c;
      children.delete(child);
      resolve(c);
    });
  });
  return {
    output: () => text,
    get exited() {
      return code !== undefined;
    },
    async stop() {
      if (code !== undefined) return code;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const c = await exit;
      clearTimeout(timer);
      return c;
    },
  };
}

async function waitForLog(daemon: StatsDaemon, pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = pattern.exec(daemon.output());
    if (m) return m;
    if (daemon.exited) throw new Error(`interlock stats exited before logging ${pattern}:\n${daemon.output()}`);
    if (Date.now() > deadline) throw new Error(`no ${pattern} after ${timeoutMs} ms:\n${daemon.output()}`);
    await sleep(100);
  }
}

let carbon: CarbonCache;
let dir: string;
let busy: string | undefined;
let idle: string | undefined;
let release: (() => Promise<void>) | undefined;

/** The stored (non-null) values of a series between two times, with their slot times; waits for the writer. */
async function stored(metric: string, from: number, until: number, atLeast = 1): Promise<[number, number][]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const series: WhisperSeries | undefined = await carbon.fetch(metric, from, until);
    const values: [number, number][] = [];
    series?.values.forEach((v, i) => {
      if (typeof v === 'number') values.push([series.start + i * series.step, v]);
    });
    if (values.length >= atLeast) return values;
    if (Date.now() > deadline) {
      throw new Error(
        `${metric}: ${values.length} stored values between ${from} and ${until} (wanted ${atLeast}):\n${await carbon.logTail()}`,
      );
    }
    await sleep(250);
  }
}

async function writeConfig(name: string, output: Record<string, unknown>, cluster: Record<string, unknown> = {}) {
  const file = path.join(dir, name);
  const config = {
    clusters: { local: { nodeAddress: '127.0.0.1', ...cluster } },
    outputs: [{ kind: 'carbon', prefix: 'it', interval: '2s', ...output }],
  };
  await writeFile(file, JSON.stringify(config, null, 2));
  return file;
}

describeIntegration(
  'interlock stats with the test Swarm and a real carbon-cache',
  ['docker', 'carbon-cache', 'whisper-fetch'],
  () => {
    beforeAll(async () => {
      dir = await tempDir('interlock-carbon-e2e-');
      busy = uniqueServiceName('it-carbon-busy');
      idle = uniqueServiceName('it-carbon-idle');
      carbon = await CarbonCache.create();
      // One busy loop at a time (see busy-loop.ts): on a two-core machine two would compete.
      release = await acquireBusyLoopLock();
      await Promise.all([
        createService({ name: busy, replicas: 1, args: ['/bin/sh', '-c', 'while :; do :; done'] }),
        createService({ name: idle, replicas: 2, args: ['/bin/sleep', '3600'] }),
        carbon.start(),
      ]);
    }, 240_000);

    afterAll(async () => {
      for (const child of children) child.kill('SIGKILL');
      try {
        if (busy) await removeService(busy);
      } finally {
        await release?.();
        await carbon?.dispose();
      }
    });

    it('fills whisper files under the documented names with the right values', async () => {
      const file = await writeConfig('interlock.config.json', { address: `127.0.0.1:${carbon.linePort}` });
      const t0 = nowS();
      const before = await cpuCounters(busy as string);
      const daemon = startStats(file);
      try {
        await waitForLog(daemon, /msg="carbon connected"/, 20_000);
        await sleep(12_000);
      } finally {
        expect(await daemon.stop()).toBe(0);
      }
      const reference = referencePercent(before, await cpuCounters(busy as string));
      const t1 = nowS();
      const log = daemon.output();
      expect(log).toMatch(/msg="sending statistics to carbon" output=carbon address=127\.0\.0\.1:\d+ interval_ms=2000/);
      expect(log).toMatch(/msg="carbon closed" output=carbon flushed=true sent_total=\d+ dropped_total=0/);
      expect(log).not.toMatch(/level=(warn|error)/);
      await sleep(2_000);

      const from = t0 - STEP;
      const until = t1 + STEP;
      // Each 10 s slot keeps the last 2 s round in it: a sample of the run, not its average.
      const cpu = await stored(`it.local.tasks.${busy}.1.cpu.percent`, from, until);
      expectBusyCpu(
        cpu.map(([, v]) => v),
        reference,
        30,
      );
      const serviceCpu = await stored(`it.local.services.${busy}.cpu.percent`, from, until);
      expect(serviceCpu.map(([, v]) => v)).toEqual(cpu.map(([, v]) => v));
      const memory = await stored(`it.local.tasks.${busy}.1.memory.used`, from, until);
      expect(memory.every(([, v]) => v > 0)).toBe(true);
      for (const slot of [1, 2]) {
        const idleCpu = await stored(`it.local.tasks.${idle}.${slot}.cpu.percent`, from, until);
        expect(idleCpu.at(-1)?.[1]).toBeLessThan(5);
      }
      const running = await stored(`it.local.services.${idle}.tasks.running`, from, until);
      expect(running.map(([, v]) => v)).toEqual(running.map(() => 2));
      expect((await stored(`it.local.services.${idle}.tasks.desired`, from, until)).at(-1)?.[1]).toBe(2);
      expect((await stored(`it.local.services.${idle}.tasks.sampled`, from, until)).at(-1)?.[1]).toBe(2);
      expect((await stored(`it.interlock.${INSTANCE}.metrics.sent`, from, until)).at(-1)?.[1]).toBeGreaterThan(0);
      expect((await stored(`it.interlock.${INSTANCE}.metrics.dropped`, from, until)).at(-1)?.[1]).toBe(0);
    }, 60_000);

    it('interlock watch sends the same statistics next to its proxy work', async () => {
      const file = await writeConfig('interlock.config.json', { address: `127.0.0.1:${carbon.linePort}` });
      const t0 = nowS();
      const daemon = startStats(file, 'watch');
      try {
        await waitForLog(daemon, /msg="carbon connected"/, 20_000);
        await sleep(8_000);
      } finally {
        expect(await daemon.stop()).toBe(0);
      }
      const t1 = nowS();
      expect(daemon.output()).toMatch(/msg="carbon closed" output=carbon flushed=true/);
      await sleep(2_000);
      const from = t0 - STEP;
      const until = t1 + STEP;
      const cpu = await stored(`it.local.tasks.${busy}.1.cpu.percent`, from, until);
      expect(cpu.length).toBeGreaterThan(0);
      expect(cpu.every(([, v]) => v > 0)).toBe(true);
      const memory = await stored(`it.local.tasks.${busy}.1.memory.used`, from, until);
      expect(memory.every(([, v]) => v > 0)).toBe(true);
      const running = await stored(`it.local.services.${idle}.tasks.running`, from, until);
      expect(running.at(-1)?.[1]).toBe(2);
    }, 60_000);

    it('carbon stopped for 15 s and started again: the daemon keeps running, says so, and the points reach carbon', async () => {
      const file = await writeConfig('restart.config.json', { address: `127.0.0.1:${carbon.linePort}`, prefix: 'rs' });
      const daemon = startStats(file);
      let downAt = 0;
      let upAt = 0;
      let reconnectAt = 0;
      try {
        await waitForLog(daemon, /msg="carbon connected"/, 20_000);
        await sleep(3_000);
        // Stop late in a retention slot, so that the next slot lies inside a ~15 s outage: its
        // points can then only reach carbon from the daemon's buffer.
        const phaseMs = Date.now() % (STEP * 1000);
        await sleep((6_500 - phaseMs + STEP * 1000) % (STEP * 1000));
        await carbon.stop();
        downAt = nowS();
        await waitForLog(daemon, /msg="carbon disconnected; points are buffered until it is back"/, 10_000);
        const insideSlotEnd = (Math.floor(downAt / STEP) + 2) * STEP;
        await sleep(Math.max(15 - (nowS() - downAt), insideSlotEnd + 1 - nowS()) * 1000);
        expect(daemon.exited).toBe(false);
        await carbon.start();
        upAt = nowS();
        // Backoff doubles up to 30 s: after 15 s away the next attempt is at most ~13 s off.
        const back = await waitForLog(
          daemon,
          /time=(\S+) level=info msg="carbon reconnected".* queued=(\d+) dropped_total=(\d+)/,
          40_000,
        );
        reconnectAt = Math.floor(Date.parse(back[1] as string) / 1000);
        // What was collected while carbon was away waited in the (bounded) buffer.
        expect(Number(back[2])).toBeGreaterThan(0);
        expect(Number(back[3])).toBe(0);
        // Run into a retention slot that starts after the restart.
        const slotAfter = Math.ceil(upAt / STEP) * STEP;
        await sleep(Math.max(0, (slotAfter + 5 - nowS()) * 1000));
      } finally {
        expect(await daemon.stop()).toBe(0);
      }
      expect(daemon.output()).toMatch(/msg="cannot connect to carbon; will retry"/);
      await sleep(2_000);

      const running = await stored(`rs.local.services.${idle}.tasks.running`, downAt - 60, nowS() + STEP, 3);
      // A slot entirely after the restart; and one entirely between carbon going away and the
      // reconnection, whose points could only come from the buffer.
      expect(running.some(([t, v]) => t >= upAt && v === 2)).toBe(true);
      expect(running.some(([t, v]) => t > downAt && t + STEP <= reconnectAt && v === 2)).toBe(true);
      const memory = await stored(`rs.local.tasks.${busy}.1.memory.used`, upAt, nowS() + STEP);
      expect(memory.every(([, v]) => v > 0)).toBe(true);
    }, 90_000);

    it('interlock stats --once prints plaintext lines of one collection, without a carbon', async () => {
      const file = await writeConfig('once.config.json', { address: '127.0.0.1:2003' });
      const before = await cpuCounters(busy as string);
      const r = await interlock(['stats', '--once', '--config', file], { timeoutMs: 20_000 });
      const reference = referencePercent(before, await cpuCounters(busy as string));
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const lines = r.stdout.trimEnd().split('\n');
      for (const line of lines) expect(line).toMatch(/^[A-Za-z0-9_.-]+ -?[0-9.e+-]+ [0-9]+$/);
      const values = Object.fromEntries(lines.map((l) => l.split(' ')).map(([p, v]) => [p, Number(v)]));
      expectBusyCpu([values[`it.local.tasks.${busy}.1.cpu.percent`] as number], reference, 35);
      expect(values[`it.local.services.${idle}.tasks.running`]).toBe(2);
      expect(values[`it.local.tasks.${idle}.2.memory.used`]).toBeGreaterThan(0);
      // One timestamp for the round; nothing is sent, so no figures about sending.
      expect(new Set(lines.map((l) => l.split(' ')[2])).size).toBe(1);
      expect(lines.some((l) => l.startsWith('it.interlock.'))).toBe(false);
    }, 30_000);

    it('interlock stats --once on a cluster that cannot be reached: one line, exit 2', async () => {
      const file = await writeConfig(
        'down.config.json',
        { address: '127.0.0.1:2003' },
        { endpoint: { kind: 'socket', path: path.join(dir, 'no-engine.sock') } },
      );
      const started = Date.now();
      const r = await interlock(['stats', '--once', '--config', file]);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^interlock: cluster "local" \(unix:\/\/\S+no-engine\.sock\): no such socket[^\n]*\n$/);
      expect(r.code).toBe(2);
    });
  },
);
