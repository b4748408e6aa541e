/**
 * `npm run bench`: the benchmarks, in order, each printing its own tables.
 *   render  bench/render.ts  snapshot → routes → files at 100 / 1,000 / 10,000 services; start-up; proxy throughput
 *   carbon  bench/carbon.ts  Carbon sender rates (when the file is present)
 *   watch   bench/watch.ts   `interlock watch` latency and memory (when present; runs dist/, built first)
 *   fleet   bench/fleet.ts   controller → agents: change-to-applied latency, idle cost, bytes (runs dist/)
 *   runtime bench/runtime.ts HAProxy runtime API: scale 3→6→3 + rolling update under load (runs dist/; Docker)
 * Each runs as a child process with a time bound; one that fails or overruns is reported and the
 * next one runs. Exit code 1 when any of them failed.
 *
 *   npm run bench -- [--only render|carbon|watch|fleet|runtime[,...]] [--quick]
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { describeExit, run } from './lib/proc.ts';
import { fixed, table } from './lib/table.ts';

type BenchName = 'render' | 'carbon' | 'watch' | 'fleet' | 'runtime';

interface Bench {
  name: BenchName;
  file: string;
  /** Arguments for a smoke run. */
  quickArgs: string[];
  timeoutMs: number;
  quickTimeoutMs: number;
  /** Runs the built CLI (dist/): build before it. */
  needsBuild?: boolean;
}

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const JITI = path.join(ROOT, 'node_modules/jiti/lib/jiti-cli.mjs');
const TSC = path.join(ROOT, 'node_modules/typescript/bin/tsc');

const BENCHES: Bench[] = [
  {
    name: 'render',
    file: 'bench/render.ts',
    quickArgs: ['--quick'],
    timeoutMs: 12 * 60_000,
    quickTimeoutMs: 3 * 60_000,
    // The start-up part runs the built CLI.
    needsBuild: true,
  },
  {
    name: 'carbon',
    file: 'bench/carbon.ts',
    quickArgs: ['--lines', '100000'],
    timeoutMs: 5 * 60_000,
    quickTimeoutMs: 2 * 60_000,
  },
  {
    name: 'watch',
    file: 'bench/watch.ts',
    quickArgs: ['--changes', '30', '--services', '1000', '--events', '1000', '--label-changes', '6'],
    timeoutMs: 10 * 60_000,
    quickTimeoutMs: 4 * 60_000,
    needsBuild: true,
  },
  {
    name: 'fleet',
    file: 'bench/fleet.ts',
    quickArgs: ['--changes', '5', '--agents', '10', '--idle-agents', '20', '--idle-seconds', '10'],
    timeoutMs: 20 * 60_000,
    quickTimeoutMs: 8 * 60_000,
    needsBuild: true,
  },
  {
    name: 'runtime',
    file: 'bench/runtime.ts',
    quickArgs: [],
    timeoutMs: 12 * 60_000,
    quickTimeoutMs: 12 * 60_000,
    needsBuild: true,
  },
];

function parseOptions(): { only: Set<BenchName>; quick: boolean } {
  const { values } = parseArgs({
    options: { only: { type: 'string' }, quick: { type: 'boolean', default: false } },
  });
  const names = BENCHES.map((b) => b.name);
  const only = new Set<BenchName>();
  for (const raw of (values.only ?? names.join(',')).split(',')) {
    const name = raw.trim();
    if (name === '') continue;
    if (!names.includes(name as BenchName)) {
      throw new Error(`--only ${JSON.stringify(name)}: not a benchmark; write one or more of ${names.join(', ')}`);
    }
    only.add(name as BenchName);
  }
  return { only, quick: values.quick === true };
}

interface Outcome {
  name: string;
  result: string;
  seconds: number;
}

const log = (line = '') => process.stdout.write(`${line}\n`);

async function build(): Promise<string> {
  log('building dist/ (tsc -p tsconfig.build.json) for the benchmarks that run the CLI');
  const timeoutMs = 3 * 60_000;
  const r = await run(process.execPath, [TSC, '-p', 'tsconfig.build.json'], {
    cwd: ROOT,
    timeoutMs,
    forwardSignals: true,
  });
  if (r.code === 0) return 'ok';
  // tsc still writes its output when it finds type errors; say so and carry on.
  const errors = (r.stdout + r.stderr).split('\n').filter((l) => /error TS\d+/.test(l));
  log(`build: ${describeExit(r, timeoutMs)}; ${errors.length} type error(s) (dist/ is still emitted):`);
  for (const l of errors.slice(0, 10)) log(`    ${l}`);
  return `${describeExit(r, timeoutMs)}, ${errors.length} type error(s)`;
}

async function main(): Promise<void> {
  let options: ReturnType<typeof parseOptions>;
  try {
    options = parseOptions();
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
    return;
  }
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const outcomes: Outcome[] = [];
  let built = false;
  for (const bench of BENCHES) {
    if (!options.only.has(bench.name)) continue;
    if (interrupted) {
      outcomes.push({ name: bench.name, result: 'not run (interrupted)', seconds: 0 });
      continue;
    }
    const file = path.join(ROOT, bench.file);
    if (!existsSync(file)) {
      outcomes.push({ name: bench.name, result: `not run: ${bench.file} is not there`, seconds: 0 });
      continue;
    }
    log();
    log(`==== ${bench.name}: ${bench.file}${options.quick ? ' (quick)' : ''} ${'='.repeat(40)}`);
    if (bench.needsBuild && !built) {
      const status = await build();
      built = true;
      if (status !== 'ok') log(`(running ${bench.name} with what the build emitted)`);
    }
    const args = options.quick ? bench.quickArgs : [];
    const timeoutMs = options.quick ? bench.quickTimeoutMs : bench.timeoutMs;
    const started = performance.now();
    let result: string;
    try {
      const r = await run(process.execPath, [JITI, file, ...args], {
        cwd: ROOT,
        timeoutMs,
        echo: true,
        forwardSignals: true,
        limit: 64 * 1024,
      });
      result = r.code === 0 ? 'ok' : `FAILED (${describeExit(r, timeoutMs)})`;
    } catch (error) {
      result = `FAILED to start: ${error instanceof Error ? error.message : String(error)}`;
    }
    const seconds = (performance.now() - started) / 1000;
    if (interrupted) result = 'interrupted';
    else if (result !== 'ok') {
      log(`${bench.name}: ${result}; continuing`);
      process.exitCode = 1;
    }
    outcomes.push({ name: bench.name, result, seconds });
  }
  log();
  log(
    table(
      'Benchmarks run',
      ['benchmark', 'result', 'seconds'],
      outcomes.map((o) => [o.name, o.result, fixed(o.seconds, 0)]),
    ),
  );
  if (interrupted) process.exitCode = 130;
}

await main();
