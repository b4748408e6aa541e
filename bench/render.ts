/**
 * Render benchmark (issue 3, item 9). Prints figures; it is not a timed test.
 *
 *   1. Render: synthetic snapshots of 100, 1,000 and 10,000 services (3 running tasks each plus 2
 *      shut-down ones, a mix of label features; see bench/lib/synthetic.ts). Per size, in a fresh
 *      process: snapshot → routes → both files (wall and CPU time per stage; median of 5 runs after
 *      a warm-up at 10,000, of 9 after 3 below), with peak RSS. Yardstick in the same run:
 *      `haproxy -c` on the rendered file (median of 3, wall and CPU); `nginx -t` for information.
 *      Targets (issue 12): at 10,000 services the render takes ≤ 0.5 × `haproxy -c`, in wall time
 *      and in CPU time (both rows count; CPU time holds up better when other processes load the
 *      machine), and the time per service at 10,000 is at most 1.25 × that at 1,000 (linear). A
 *      miss is CPU-profiled.
 *   2. Start-up (built CLI): `interlock --version` ÷ `node -e 0` ≤ 2; `validate` and the demo render
 *      ÷ `node -e 0` ≤ 3 (medians of alternating runs; wall, with CPU time for information).
 *   3. Throughput: requests/s through the real HAProxy and Nginx with 10,000 routes versus one,
 *      every backend pointing at one local nginx answering 200, health checks off, `wrk -t2 -c32
 *      -d10s` with the Host of a route in the middle of the map. 1-route and 10k-route runs
 *      alternate twice; the better of each counts. Target: 10k / 1 ≥ 0.9 for both proxies.
 * Traffic stays on loopback. Every process started here is stopped at the end, also on error.
 *
 *   node node_modules/jiti/lib/jiti-cli.mjs bench/render.ts [--quick] [--profile] [--no-profile]
 *     --quick       100 and 1,000 services (5 runs), 1,000 routes for 3 s once: a smoke run
 *     --profile     CPU-profile the largest render and list hotspots (default: only when it misses)
 *     --no-profile  never profile
 *     --parts       which of render,start-up,throughput to run (default: all)
 *     --sizes       render sizes, e.g. 1000,10000 (default: 100,1000,10000; --quick: 100,1000)
 */
import { spawnSync } from 'node:child_process';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort, httpGet, startHaproxy, startNginx, stopAll, tempDir, whichTool } from '../test/helpers/infra.ts';
import { describeExit, processTreeCpuMs, run, tail } from './lib/proc.ts';
import { summarizeProfile } from './lib/profile.ts';
import { RESULT_PREFIX, type RenderJob, type RenderResult, type StageTimes } from './lib/render-job.ts';
import { middlePlainService, serviceHost, syntheticSnapshot } from './lib/synthetic.ts';
import { fixed, int, mb, median, ms, table } from './lib/table.ts';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    'no-profile': { type: 'boolean', default: false },
    parts: { type: 'string', default: 'render,start-up,throughput' },
    sizes: { type: 'string' },
  },
});
const PARTS = new Set((args.parts ?? '').split(','));

const QUICK = args.quick === true;
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const JITI = path.join(ROOT, 'node_modules/jiti/lib/jiti-cli.mjs');
const WORKER = path.join(ROOT, 'bench/lib/render-worker.ts');

const SIZES = args.sizes
  ? args.sizes.split(',').map((s) => Number(s.replaceAll('_', '')))
  : QUICK
    ? [100, 1_000]
    : [100, 1_000, 10_000];
if (SIZES.some((s) => !Number.isInteger(s) || s < 1)) throw new Error(`--sizes: whole numbers, e.g. 1000,10000`);
/** Small sizes run in milliseconds: more warm-ups and runs, so the JIT has settled and the median holds. */
const plan = (size: number) =>
  size >= 10_000 ? { warmup: 1, runs: 5 } : QUICK ? { warmup: 2, runs: 5 } : { warmup: 3, runs: 9 };
const CHECK_RUNS = 3;
const THROUGHPUT_ROUTES = QUICK ? 1_000 : 10_000;
const WRK_SECONDS = QUICK ? 3 : 10;
const WRK_ROUNDS = QUICK ? 1 : 2;
const WRK_ARGS = ['-t2', '-c32', `-d${WRK_SECONDS}s`];

const TARGET_RATIO = 0.5;
const TARGET_LINEARITY = 1.25;
const TARGET_RPS_RATIO = 0.9;

const log = (line = '') => process.stdout.write(`${line}\n`);
const progress = (line: string) => process.stdout.write(`  · ${line}\n`);

type Tool = 'haproxy' | 'nginx' | 'wrk';
const tools: Record<Tool, string | undefined> = {
  haproxy: whichTool('haproxy'),
  nginx: whichTool('nginx'),
  wrk: whichTool('wrk'),
};
/** Runs the proxies' checks so that `times` reports their CPU time. */
const BASH = whichTool('bash');

/** The 1-minute load average, with a warning when other work competes for the CPUs. */
function load(): string {
  const avg = os.loadavg()[0] ?? 0;
  const cpus = os.cpus().length;
  return `load average ${fixed(avg, 2)} on ${cpus} CPU(s)${avg > cpus * 0.75 ? ' (BUSY: other processes compete for the CPUs; wall times are inflated, CPU times much less)' : ''}`;
}

function toolVersion(file: string | undefined, flag: string, pattern: RegExp): string {
  if (file === undefined) return 'not installed';
  const r = spawnSync(file, [flag], { encoding: 'utf8', timeout: 5000 });
  const m = pattern.exec(`${r.stdout}\n${r.stderr}`);
  return m?.[1] ?? 'unknown version';
}

interface Target {
  name: string;
  value: string;
  goal: string;
  pass: boolean | undefined;
}
const targets: Target[] = [];

// ---------- render ----------

interface CheckResult {
  /** Median wall time, ms. */
  ms: number;
  /** Median CPU time (user + system), ms; NaN without bash. */
  cpuMs: number;
  ok: boolean;
  output: string;
}

interface SizeResult {
  size: number;
  result: RenderResult;
  wall: StageTimes & { total: number };
  cpu: StageTimes & { total: number };
  haproxyCheck: CheckResult | undefined;
  nginxCheck: CheckResult | undefined;
}

async function writeSnapshot(dir: string, options: Parameters<typeof syntheticSnapshot>[0]): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, 'snapshot.json');
  await writeFile(file, JSON.stringify(syntheticSnapshot(options)));
  return file;
}

async function runWorker(job: RenderJob, profileDir?: string): Promise<RenderResult> {
  const flags = profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir, '--cpu-prof-interval', '250'] : [];
  const timeoutMs = 240_000;
  const r = await run(process.execPath, [...flags, JITI, WORKER, JSON.stringify(job)], { cwd: ROOT, timeoutMs });
  const line = r.stdout.split('\n').find((l) => l.startsWith(RESULT_PREFIX));
  if (r.code !== 0 || line === undefined) {
    throw new Error(
      `render worker for ${job.snapshot} failed (${describeExit(r, timeoutMs)}):\n${tail(r.stderr || r.stdout)}`,
    );
  }
  return JSON.parse(line.slice(RESULT_PREFIX.length)) as RenderResult;
}

/** `times` prints the shell's own and then its children's user and system time. */
function childCpuMs(stderr: string): number {
  const lines = [...stderr.matchAll(/^(\d+)m([\d.]+)s (\d+)m([\d.]+)s$/gm)];
  const m = lines[lines.length - 1];
  if (!m) return Number.NaN;
  return (Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4])) * 1000;
}

async function timedChecks(file: string, args: readonly string[], cwd: string, runs: number): Promise<CheckResult> {
  const walls: number[] = [];
  const cpus: number[] = [];
  let output = '';
  for (let i = 0; i < runs; i++) {
    const timeoutMs = 120_000;
    const r = BASH
      ? await run(BASH, ['-c', '"$@"; code=$?; times >&2; exit $code', 'check', file, ...args], { cwd, timeoutMs })
      : await run(file, args, { cwd, timeoutMs });
    if (r.code !== 0) {
      return {
        ms: Number.NaN,
        cpuMs: Number.NaN,
        ok: false,
        output: `${describeExit(r, timeoutMs)}\n${tail(r.stdout + r.stderr)}`,
      };
    }
    walls.push(r.ms);
    cpus.push(BASH ? childCpuMs(r.stderr) : Number.NaN);
    output = r.stdout + r.stderr;
  }
  return { ms: median(walls), cpuMs: median(cpus), ok: true, output };
}

function medianStages(runs: readonly StageTimes[]): StageTimes & { total: number } {
  const pick = (f: (t: StageTimes) => number) => median(runs.map(f));
  return {
    parse: pick((t) => t.parse),
    map: pick((t) => t.map),
    routes: pick((t) => t.routes),
    haproxy: pick((t) => t.haproxy),
    nginx: pick((t) => t.nginx),
    // The median of the per-run sums, not the sum of the medians.
    total: pick(interlockMs),
  };
}

/** What the target counts: snapshot document → routes → both files (the JSON parse is shown apart). */
function interlockMs(t: StageTimes): number {
  return t.map + t.routes + t.haproxy + t.nginx;
}

/**
 * jiti transpiles src/ on first use and caches the result; a first worker that transpiles loads
 * Babel too. One throw-away run first, so no measured worker pays for that (in time or RSS).
 */
async function warmTranspileCache(work: string): Promise<void> {
  const dir = path.join(work, 'warm');
  const snapshot = await writeSnapshot(dir, { services: 1 });
  await runWorker({ snapshot, outDir: dir, warmup: 0, runs: 1, haproxyPort: 8080, nginxPort: 8081 });
}

async function renderBench(work: string): Promise<SizeResult[]> {
  log(
    `Render: snapshot → routes → HAProxy + Nginx files, a fresh process per size (${SIZES.map((s) => `${int(s)}: median of ${plan(s).runs} after ${plan(s).warmup} warm-up`).join('; ')})`,
  );
  log(`  ${load()}`);
  const results: SizeResult[] = [];
  for (const size of SIZES) {
    const dir = path.join(work, `render-${size}`);
    progress(`${int(size)} services: generating the snapshot`);
    const snapshot = await writeSnapshot(dir, { services: size });
    const { warmup, runs } = plan(size);
    progress(`${int(size)} services: rendering ${warmup + runs} times in a fresh process`);
    const result = await runWorker({
      snapshot,
      outDir: dir,
      warmup,
      runs,
      haproxyPort: 8080,
      nginxPort: 8081,
    });
    if (result.diagnostics > 0) {
      progress(`unexpected diagnostics (${result.diagnostics}): ${result.firstDiagnostics.join(' | ')}`);
    }
    let haproxyCheck: SizeResult['haproxyCheck'];
    let nginxCheck: SizeResult['nginxCheck'];
    if (tools.haproxy) {
      progress(`${int(size)} services: haproxy -c × ${CHECK_RUNS}`);
      haproxyCheck = await timedChecks(tools.haproxy, ['-c', '-f', path.join(dir, 'haproxy.cfg')], dir, CHECK_RUNS);
      if (!haproxyCheck.ok) progress(`haproxy -c REJECTED the file:\n${haproxyCheck.output}`);
    }
    if (tools.nginx) {
      progress(`${int(size)} services: nginx -t × 1`);
      nginxCheck = await timedChecks(
        tools.nginx,
        ['-t', '-q', '-p', `${dir}/`, '-c', path.join(dir, 'nginx.conf')],
        dir,
        1,
      );
      if (!nginxCheck.ok) progress(`nginx -t REJECTED the file:\n${nginxCheck.output}`);
    }
    results.push({
      size,
      result,
      wall: medianStages(result.runs.map((r) => r.wall)),
      cpu: medianStages(result.runs.map((r) => r.cpu)),
      haproxyCheck,
      nginxCheck,
    });
  }

  log(`  ${load()}`);
  log();
  log(
    table(
      'Render, per stage: median wall ms. interlock = map + routes + haproxy + nginx (the JSON parse of the snapshot file is apart)',
      [
        'services',
        'routes',
        'servers',
        'snapshot MB',
        'JSON parse',
        'map',
        'routes',
        'haproxy',
        'nginx',
        'interlock',
        'min–max',
        'interlock CPU ms',
      ],
      results.map((r) => {
        const totals = r.result.runs.map((t) => interlockMs(t.wall));
        return [
          int(r.size),
          int(r.result.routes),
          int(r.result.servers),
          mb(r.result.snapshotBytes),
          ms(r.wall.parse),
          ms(r.wall.map),
          ms(r.wall.routes),
          ms(r.wall.haproxy),
          ms(r.wall.nginx),
          ms(r.wall.total),
          `${ms(Math.min(...totals))}–${ms(Math.max(...totals))}`,
          ms(r.cpu.total),
        ];
      }),
    ),
  );
  log(
    '  CPU ms counts every thread of the process (GC helpers too); it is disturbed less than wall time by other load.',
  );
  log();
  log(
    table(
      'Render versus the proxies’ own checks of the rendered files (haproxy -c: median of 3; nginx -t: 1 run)',
      [
        'services',
        'interlock ms',
        'µs/service',
        'peak RSS MB',
        'haproxy.cfg+map MB',
        'haproxy -c ms',
        'interlock ÷ haproxy -c',
        'CPU: interlock ÷ haproxy -c',
        'nginx.conf MB',
        'nginx -t ms',
      ],
      results.map((r) => {
        const check = r.haproxyCheck?.ok ? r.haproxyCheck : undefined;
        return [
          int(r.size),
          ms(r.wall.total),
          fixed((r.wall.total * 1000) / r.size, 1),
          `${mb(r.result.peakFirstBytes)} (${mb(r.result.rssBeforeBytes)})`,
          mb((r.result.files['haproxy.cfg'] ?? 0) + (r.result.files['haproxy.hosts.map'] ?? 0), 2),
          r.haproxyCheck ? (check ? ms(check.ms) : 'REJECTED') : 'n/a',
          check ? fixed(r.wall.total / check.ms, 2) : 'n/a',
          check && Number.isFinite(check.cpuMs)
            ? `${ms(r.cpu.total)} ÷ ${ms(check.cpuMs)} = ${fixed(r.cpu.total / check.cpuMs, 2)}`
            : 'n/a',
          mb(r.result.files['nginx.conf'] ?? 0, 2),
          r.nginxCheck ? (r.nginxCheck.ok ? ms(r.nginxCheck.ms) : 'REJECTED') : 'n/a',
        ];
      }),
    ),
  );
  log(
    '  peak RSS = maxRSS after the first render (one `interlock render`); in brackets the RSS before it (code loaded, snapshot text read).',
  );
  log(
    `  Peak RSS after all renders of a size: ${results.map((r) => `${int(r.size)}: ${mb(r.result.peakAllBytes)} MB`).join(', ')}.`,
  );

  const largest = results[results.length - 1];
  const previous = results[results.length - 2];
  const at = largest ? `at ${int(largest.size)}` : '';
  const quickNote = QUICK ? ' (quick run; the target is set at 10,000)' : '';
  if (largest?.haproxyCheck?.ok) {
    const ratio = largest.wall.total / largest.haproxyCheck.ms;
    const cpuRatio = largest.cpu.total / largest.haproxyCheck.cpuMs;
    targets.push({
      name: `render ${at} ÷ haproxy -c, wall${quickNote}`,
      value: `${ms(largest.wall.total)} ms ÷ ${ms(largest.haproxyCheck.ms)} ms = ${fixed(ratio, 2)}`,
      goal: `≤ ${TARGET_RATIO}`,
      pass: ratio <= TARGET_RATIO,
    });
    if (Number.isFinite(cpuRatio)) {
      targets.push({
        name: `render ${at} ÷ haproxy -c, CPU time`,
        value: `${ms(largest.cpu.total)} ms ÷ ${ms(largest.haproxyCheck.cpuMs)} ms = ${fixed(cpuRatio, 2)}`,
        goal: `≤ ${TARGET_RATIO}`,
        pass: cpuRatio <= TARGET_RATIO,
      });
    }
  } else {
    targets.push({
      name: `render ${at} vs haproxy -c`,
      value: 'haproxy -c not measured',
      goal: `≤ ${TARGET_RATIO}`,
      pass: undefined,
    });
  }
  if (largest && previous) {
    const perService = (r: SizeResult, clock: 'wall' | 'cpu') => r[clock].total / r.size;
    const linearity = perService(largest, 'wall') / perService(previous, 'wall');
    const cpuLinearity = perService(largest, 'cpu') / perService(previous, 'cpu');
    log(
      `  Linearity: time per service at ${int(largest.size)} ÷ at ${int(previous.size)} = ${fixed(linearity, 2)} wall, ${fixed(cpuLinearity, 2)} CPU (1 = linear).`,
    );
    targets.push({
      name: `linear growth (per service ${int(largest.size)} ÷ ${int(previous.size)}), wall${quickNote}`,
      value: fixed(linearity, 2),
      goal: `≤ ${TARGET_LINEARITY}`,
      pass: linearity <= TARGET_LINEARITY,
    });
    targets.push({
      name: `linear growth (per service ${int(largest.size)} ÷ ${int(previous.size)}), CPU time`,
      value: fixed(cpuLinearity, 2),
      goal: `≤ ${TARGET_LINEARITY}`,
      pass: cpuLinearity <= TARGET_LINEARITY,
    });
  }

  const checked = results.filter((r) => r.haproxyCheck || r.nginxCheck);
  targets.push({
    name: 'rendered files accepted by haproxy -c and nginx -t',
    value: checked
      .map((r) => `${int(r.size)}: ${r.haproxyCheck?.ok === false || r.nginxCheck?.ok === false ? 'rejected' : 'ok'}`)
      .join(', '),
    goal: 'all ok',
    pass:
      checked.length === 0
        ? undefined
        : checked.every((r) => r.haproxyCheck?.ok !== false && r.nginxCheck?.ok !== false),
  });
  return results;
}

async function profileLargest(work: string, size: number): Promise<void> {
  const dir = path.join(work, `render-${size}`);
  const profileDir = path.join(work, 'profile');
  await mkdir(profileDir, { recursive: true });
  progress(`profiling the ${int(size)}-service render (node --cpu-prof, 1 warm-up + 2 runs)`);
  await runWorker(
    { snapshot: path.join(dir, 'snapshot.json'), outDir: dir, warmup: 1, runs: 2, haproxyPort: 8080, nginxPort: 8081 },
    profileDir,
  );
  const file = (await readdir(profileDir)).find((f) => f.endsWith('.cpuprofile'));
  if (!file) {
    progress('no .cpuprofile was written');
    return;
  }
  const summary = summarizeProfile(path.join(profileDir, file), ROOT, 15);
  const rows = (list: typeof summary.self) =>
    list.map((h) => [fixed(h.ms, 0), `${fixed(h.share * 100, 1)}%`, h.name, h.where]);
  log();
  log(
    table(
      `CPU profile of the ${int(size)}-service worker (${int(summary.totalMs)} ms sampled, 3 renders incl. JSON parse): self time`,
      ['ms', 'share', 'function', { title: 'where', align: 'left' }],
      rows(summary.self),
    ),
  );
  log();
  log(
    table(
      'Same profile: inclusive time of interlock’s own functions (src/)',
      ['ms', 'share', 'function', { title: 'where', align: 'left' }],
      rows(summary.inclusive),
    ),
  );
  log();
  log(
    table(
      'Same profile: self time per source line of interlock’s own code (src/)',
      ['ms', 'share', { title: 'where', align: 'left' }, 'code'],
      summary.lines.map((l) => [fixed(l.ms, 0), `${fixed(l.share * 100, 1)}%`, l.where, l.code]),
    ),
  );
}

// ---------- start-up ----------

const BIN = path.join(ROOT, 'bin/interlock.js');
const STARTUP_ROUNDS = QUICK ? 3 : 7;
const TARGET_VERSION_RATIO = 2;
const TARGET_COMMAND_RATIO = 3;

/**
 * Start-up (issue 12): `node -e 0`, `interlock --version`, `interlock validate` (the repository's
 * interlock.config.ts) and the README's demo render (`render --snapshot
 * examples/swarm-demo.snapshot.json`, its proxy checks included), with the built CLI (dist/).
 * Rounds alternate the commands; medians of wall and CPU time (the process and its children).
 * One unmeasured round first: the transpiled config, the compiled code and the parsed templates
 * are then in the user's caches (~/.cache/interlock), as on every run after a machine's first
 * (src/cli/code-cache.ts; a first run is ~10–30 ms slower).
 */
async function startupBench(work: string): Promise<void> {
  log();
  log(`Start-up: the built CLI, median of ${STARTUP_ROUNDS} alternating rounds after 1 unmeasured round`);
  log(`  ${load()}`);
  const dir = path.join(work, 'startup');
  await mkdir(dir, { recursive: true });
  const commands: Array<{ name: string; args: string[] }> = [
    { name: 'node -e 0', args: ['-e', '0'] },
    { name: 'interlock --version', args: [BIN, '--version'] },
    { name: 'interlock validate', args: [BIN, 'validate'] },
    {
      name: 'demo render (render --snapshot examples/swarm-demo.snapshot.json)',
      args: [BIN, 'render', '--snapshot', 'examples/swarm-demo.snapshot.json', '--out-dir', path.join(dir, 'out')],
    },
  ];
  const env = { ...process.env, XDG_CACHE_HOME: path.join(dir, 'cache') };
  const walls = commands.map(() => [] as number[]);
  const cpus = commands.map(() => [] as number[]);
  for (let round = 0; round <= STARTUP_ROUNDS; round++) {
    for (const [i, c] of commands.entries()) {
      const timeoutMs = 60_000;
      const r = BASH
        ? await run(BASH, ['-c', '"$@"; code=$?; times >&2; exit $code', 'start', process.execPath, ...c.args], {
            cwd: ROOT,
            timeoutMs,
            env,
          })
        : await run(process.execPath, c.args, { cwd: ROOT, timeoutMs, env });
      if (r.code !== 0)
        throw new Error(`${c.name} failed (${describeExit(r, timeoutMs)}):\n${tail(r.stdout + r.stderr)}`);
      if (round === 0) continue;
      walls[i]?.push(r.ms);
      cpus[i]?.push(BASH ? childCpuMs(r.stderr) : Number.NaN);
    }
  }
  const wall = walls.map((w) => median(w));
  const cpu = cpus.map((c) => median(c));
  const base = { wall: wall[0] ?? Number.NaN, cpu: cpu[0] ?? Number.NaN };
  log();
  log(
    table(
      'Start-up: median wall and CPU ms (CPU: user + system of the process and its children)',
      ['command', 'wall ms', 'CPU ms', 'wall ÷ node -e 0', 'CPU ÷ node -e 0'],
      commands.map((c, i) => [
        c.name,
        ms(wall[i] ?? Number.NaN),
        ms(cpu[i] ?? Number.NaN),
        fixed((wall[i] ?? Number.NaN) / base.wall, 2),
        fixed((cpu[i] ?? Number.NaN) / base.cpu, 2),
      ]),
    ),
  );
  log(`  ${load()}`);
  for (const [i, c] of commands.entries()) {
    if (i === 0) continue;
    const goal = i === 1 ? TARGET_VERSION_RATIO : TARGET_COMMAND_RATIO;
    const ratio = (wall[i] ?? Number.NaN) / base.wall;
    const cpuRatio = (cpu[i] ?? Number.NaN) / base.cpu;
    targets.push({
      name: `start-up: ${c.name} ÷ node -e 0, wall (load ${fixed(os.loadavg()[0] ?? 0, 2)})`,
      value: `${ms(wall[i] ?? Number.NaN)} ÷ ${ms(base.wall)} = ${fixed(ratio, 2)}`,
      goal: `≤ ${goal}`,
      pass: ratio <= goal,
    });
    if (Number.isFinite(cpuRatio)) {
      targets.push({
        name: `start-up: ${c.name} ÷ node -e 0, CPU time (information)`,
        value: `${ms(cpu[i] ?? Number.NaN)} ÷ ${ms(base.cpu)} = ${fixed(cpuRatio, 2)}`,
        goal: `≤ ${goal}`,
        pass: cpuRatio <= goal,
      });
    }
  }
}

// ---------- throughput ----------

interface WrkResult {
  rps: number;
  latency: string;
  requests: number;
  bad: number;
  errors: string;
  /** Requests per CPU-second of the proxy (master and workers): what a request costs it, whatever else runs. */
  perCpuSecond: number;
}

function parseWrk(text: string): Omit<WrkResult, 'perCpuSecond'> {
  const num = (re: RegExp) => {
    const m = re.exec(text);
    return m ? Number(m[1]) : Number.NaN;
  };
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  return {
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    latency: /Latency\s+([\d.]+\w+)/.exec(text)?.[1] ?? '?',
    requests: num(/(\d+) requests in/),
    bad: Number.isNaN(num(/Non-2xx or 3xx responses:\s+(\d+)/)) ? 0 : num(/Non-2xx or 3xx responses:\s+(\d+)/),
    errors: socket ? socket.slice(1).join('/') : '0/0/0/0',
  };
}

async function distinctPorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

const BACKEND_CONF = (dir: string, port: number) => `# Benchmark backend: answers 200 "ok" as fast as nginx can.
worker_processes 1;
pid ${dir}/backend.pid;
error_log ${dir}/backend-error.log warn;
events { worker_connections 4096; }
http {
    client_body_temp_path ${dir}/client_body_temp;
    proxy_temp_path ${dir}/proxy_temp;
    fastcgi_temp_path ${dir}/fastcgi_temp;
    uwsgi_temp_path ${dir}/uwsgi_temp;
    scgi_temp_path ${dir}/scgi_temp;
    access_log off;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:${port};
        location / { return 200 "ok\\n"; }
    }
}
`;

interface Deployment {
  routes: number;
  host: string;
  port: Record<'haproxy' | 'nginx', number>;
  pid: Record<'haproxy' | 'nginx', number>;
  startMs: Record<'haproxy' | 'nginx', number>;
}

async function deploy(work: string, routes: number, backendPort: number): Promise<Deployment> {
  const dir = path.join(work, `throughput-${routes}`);
  const snapshot = await writeSnapshot(dir, { services: routes, backends: 'published', publishedPort: backendPort });
  const [haproxyPort = 0, nginxPort = 0] = await distinctPorts(2);
  const result = await runWorker({
    snapshot,
    outDir: dir,
    warmup: 0,
    runs: 1,
    nodeAddress: '127.0.0.1',
    haproxyPort,
    nginxPort,
  });
  if (result.routes !== routes || result.diagnostics > 0) {
    throw new Error(
      `the ${routes}-route throughput snapshot gave ${result.routes} routes and ${result.diagnostics} diagnostics: ${result.firstDiagnostics.join(' | ')}`,
    );
  }
  const host = serviceHost(middlePlainService(routes));
  let started = performance.now();
  const haproxy = await startHaproxy(path.join(dir, 'haproxy.cfg'), { port: haproxyPort, cwd: dir, timeoutMs: 60_000 });
  const haproxyMs = performance.now() - started;
  started = performance.now();
  const nginx = await startNginx('nginx.conf', dir, { port: nginxPort, timeoutMs: 90_000 });
  const nginxMs = performance.now() - started;
  for (const [proxy, port] of [
    ['haproxy', haproxyPort],
    ['nginx', nginxPort],
  ] as const) {
    const r = await httpGet(`http://127.0.0.1:${port}/`, { host });
    if (r.status !== 200 || r.body !== 'ok\n') {
      throw new Error(
        `${proxy} with ${routes} routes answered ${r.status} ${JSON.stringify(r.body.slice(0, 200))} for ${host}`,
      );
    }
  }
  return {
    routes,
    host,
    port: { haproxy: haproxyPort, nginx: nginxPort },
    pid: { haproxy: haproxy.pid, nginx: nginx.pid },
    startMs: { haproxy: haproxyMs, nginx: nginxMs },
  };
}

async function wrk(port: number, host: string, proxyPid: number): Promise<WrkResult> {
  const timeoutMs = (WRK_SECONDS + 10) * 1000;
  const cpuBefore = processTreeCpuMs(proxyPid);
  const r = await run(tools.wrk as string, [...WRK_ARGS, '-H', `Host: ${host}`, `http://127.0.0.1:${port}/`], {
    timeoutMs,
  });
  const cpuMs = processTreeCpuMs(proxyPid) - cpuBefore;
  if (r.code !== 0) throw new Error(`wrk failed (${describeExit(r, timeoutMs)}):\n${tail(r.stdout + r.stderr)}`);
  const result = parseWrk(r.stdout);
  return { ...result, perCpuSecond: cpuMs > 0 ? result.requests / (cpuMs / 1000) : Number.NaN };
}

async function throughputBench(work: string): Promise<void> {
  log();
  log(`Throughput: requests/s through the rendered proxies, ${int(THROUGHPUT_ROUTES)} routes versus 1`);
  log(`  ${load()}`);
  const missing = (['haproxy', 'nginx', 'wrk'] as const).filter((t) => tools[t] === undefined);
  if (missing.length > 0) {
    log(`  skipped: ${missing.join(', ')} not installed (scripts/setup-test-infra.sh installs them)`);
    targets.push({ name: 'throughput', value: `skipped (${missing.join(', ')} missing)`, goal: '', pass: undefined });
    return;
  }
  const cpus = os.cpus().length;
  log(
    `  ${cpus} CPU(s) (${os.cpus()[0]?.model.trim() ?? '?'}) shared by wrk (2 threads), the proxy (HAProxy: one thread per CPU; Nginx: worker_processes auto)`,
  );
  log(
    '  and the backend (nginx, 1 worker, `return 200`): absolute figures are low and noisy, the ratio is what counts.',
  );
  const backendDir = path.join(work, 'backend');
  await mkdir(backendDir, { recursive: true });
  const [backendPort = 0] = await distinctPorts(1);
  await writeFile(path.join(backendDir, 'backend.conf'), BACKEND_CONF(backendDir, backendPort));
  await startNginx('backend.conf', backendDir, { port: backendPort });

  const deployments: Deployment[] = [];
  for (const routes of [1, THROUGHPUT_ROUTES]) {
    progress(
      `${int(routes)} route(s): rendering with every backend at 127.0.0.1:${backendPort}, starting HAProxy and Nginx`,
    );
    deployments.push(await deploy(work, routes, backendPort));
  }
  const proxies = ['haproxy', 'nginx'] as const;
  const runs = new Map<string, WrkResult[]>();
  for (let round = 0; round < WRK_ROUNDS; round++) {
    const order = round % 2 === 0 ? deployments : [...deployments].reverse();
    for (const proxy of proxies) {
      for (const d of order) {
        progress(
          `round ${round + 1}: ${proxy}, ${int(d.routes)} route(s), wrk ${WRK_ARGS.join(' ')} -H 'Host: ${d.host}'`,
        );
        const r = await wrk(d.port[proxy], d.host, d.pid[proxy]);
        const key = `${proxy}/${d.routes}`;
        runs.set(key, [...(runs.get(key) ?? []), r]);
      }
    }
  }

  const rows: string[][] = [];
  for (const proxy of proxies) {
    for (const d of deployments) {
      const list = runs.get(`${proxy}/${d.routes}`) ?? [];
      const best = list.reduce((a, b) => (b.rps > a.rps ? b : a));
      rows.push([
        proxy,
        int(d.routes),
        d.host,
        int(d.startMs[proxy]),
        ...list.map((r) => int(r.rps)),
        int(best.rps),
        best.latency,
        int(Math.max(...list.map((r) => r.perCpuSecond))),
        int(list.reduce((n, r) => n + r.bad, 0)),
        list.map((r) => r.errors).join(' '),
      ]);
    }
  }
  log();
  log(
    table(
      `Requests/s (wrk ${WRK_ARGS.join(' ')}, keep-alive, loopback); runs alternate 1 ↔ ${int(THROUGHPUT_ROUTES)} routes`,
      [
        'proxy',
        'routes',
        'Host',
        'start ms',
        ...Array.from({ length: WRK_ROUNDS }, (_, i) => `run ${i + 1} rps`),
        'best rps',
        'avg latency',
        'req per proxy CPU-s',
        'non-2xx',
        'socket errors c/r/w/t',
      ],
      rows,
    ),
  );
  log(
    '  req per proxy CPU-s: requests ÷ CPU time of the proxy (master + workers) during the run, best run; other load barely moves it.',
  );
  for (const proxy of proxies) {
    const results = (routes: number) => runs.get(`${proxy}/${routes}`) ?? [];
    const best = (routes: number) => Math.max(...results(routes).map((r) => r.rps));
    const bestPerCpu = (routes: number) => Math.max(...results(routes).map((r) => r.perCpuSecond));
    const ratio = best(THROUGHPUT_ROUTES) / best(1);
    const cpuRatio = bestPerCpu(THROUGHPUT_ROUTES) / bestPerCpu(1);
    const bad = [...results(1), ...results(THROUGHPUT_ROUTES)].some((r) => r.bad > 0);
    log(
      `  ${proxy}: best ${int(THROUGHPUT_ROUTES)} routes ÷ best 1 route = ${fixed(ratio, 3)}; per proxy CPU-second: ${fixed(cpuRatio, 3)}${bad ? ' (some responses were not 2xx!)' : ''}`,
    );
    targets.push({
      name: `${proxy} rps, ${int(THROUGHPUT_ROUTES)} routes ÷ 1 route${QUICK ? ' (quick run)' : ''}`,
      value: `${int(best(THROUGHPUT_ROUTES))} ÷ ${int(best(1))} = ${fixed(ratio, 3)}`,
      goal: `≥ ${TARGET_RPS_RATIO}`,
      pass: ratio >= TARGET_RPS_RATIO && !bad,
    });
    if (Number.isFinite(cpuRatio)) {
      targets.push({
        name: `${proxy} requests per proxy CPU-second, ${int(THROUGHPUT_ROUTES)} ÷ 1 (information)`,
        value: `${int(bestPerCpu(THROUGHPUT_ROUTES))} ÷ ${int(bestPerCpu(1))} = ${fixed(cpuRatio, 3)}`,
        goal: `≥ ${TARGET_RPS_RATIO}`,
        pass: cpuRatio >= TARGET_RPS_RATIO && !bad,
      });
    }
  }
}

// ---------- main ----------

async function main(): Promise<void> {
  const started = performance.now();
  log(`interlock render benchmark${QUICK ? ' (--quick)' : ''}`);
  log(
    `  node ${process.version}, ${os.cpus().length} CPU(s), ${mb(os.totalmem())} MB RAM; haproxy ${toolVersion(tools.haproxy, '-v', /version (\S+)/)}, nginx ${toolVersion(tools.nginx, '-v', /nginx\/(\S+)/)}, ${toolVersion(tools.wrk, '-v', /(wrk \S+)/)}`,
  );
  log('  code: src/ through jiti (what `npm run bench` runs); the published CLI runs the same code compiled by tsc.');
  log();
  const work = await tempDir('ilbench-');
  // Interrupted: stop the proxies and remove the temp dir before going.
  const interrupted = (signal: NodeJS.Signals) => {
    log(`\n${signal}: stopping everything started here`);
    void stopAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  let failed = false;
  const part = async (name: string, body: () => Promise<void>) => {
    try {
      await body();
    } catch (error) {
      failed = true;
      log();
      log(`${name} FAILED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      targets.push({ name, value: 'failed (see above)', goal: '', pass: false });
    }
  };
  try {
    if (PARTS.has('render'))
      await part('render', async () => {
        await warmTranspileCache(work);
        const results = await renderBench(work);
        const largest = results[results.length - 1];
        const missed = targets.some((t) => t.name.startsWith('render') && t.name.includes('wall') && t.pass === false);
        if (largest && !args['no-profile'] && (args.profile || (missed && !QUICK))) {
          await profileLargest(work, largest.size);
        }
      });
    if (PARTS.has('start-up')) await part('start-up', () => startupBench(work));
    if (PARTS.has('throughput')) await part('throughput', () => throughputBench(work));
  } finally {
    await stopAll().catch((e: unknown) => log(`cleanup: ${String(e)}`));
  }

  log();
  log(
    table(
      'Targets',
      ['target', 'measured', 'goal', 'result'],
      targets.map((t) => [t.name, t.value, t.goal, t.pass === undefined ? 'n/a' : t.pass ? 'PASS' : 'MISS']),
    ),
  );
  log(`  (render benchmark took ${fixed((performance.now() - started) / 1000, 0)} s; ${load()})`);
  if (failed) process.exitCode = 2;
}

await main();
