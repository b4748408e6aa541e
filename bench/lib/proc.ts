/**
 * Child processes for the benchmarks: every one bounded in time, killed (with its own children,
 * through its process group) when the bound is reached, and timed from spawn to exit.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

export interface RunResult {
  /** Exit code; null when killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to exit, in milliseconds. */
  ms: number;
  timedOut: boolean;
}

export interface RunOptions {
  cwd?: string;
  timeoutMs: number;
  env?: NodeJS.ProcessEnv;
  /** Print the child's output as it comes (it is captured either way). */
  echo?: boolean;
  /** Keep at most this many characters of each stream (the last ones). */
  limit?: number;
  /** Pass SIGINT / SIGTERM received by this process on to the child's group (as SIGTERM). */
  forwardSignals?: boolean;
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    // The child leads its own group (detached), so this reaches what it started, and nothing else.
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

/** Runs `file args`, bounded by `timeoutMs` (SIGTERM to its group, SIGKILL 5 s later). */
export function run(file: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
  const limit = options.limit ?? 1024 * 1024;
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const keep = (text: string, chunk: string) => {
      const next = text + chunk;
      return next.length > limit ? next.slice(-limit) : next;
    };
    child.stdout.on('data', (b: Buffer) => {
      const s = b.toString();
      stdout = keep(stdout, s);
      if (options.echo) process.stdout.write(s);
    });
    child.stderr.on('data', (b: Buffer) => {
      const s = b.toString();
      stderr = keep(stderr, s);
      if (options.echo) process.stderr.write(s);
    });
    let hardKill: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid, 'SIGTERM');
      hardKill = setTimeout(() => killGroup(child.pid, 'SIGKILL'), 5000);
    }, options.timeoutMs);
    // If this process exits first, the child goes too.
    const onExit = () => killGroup(child.pid, 'SIGKILL');
    process.once('exit', onExit);
    // A detached child is out of the terminal's process group: Ctrl-C reaches it only through us.
    const onSignal = () => killGroup(child.pid, 'SIGTERM');
    if (options.forwardSignals) {
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
    }
    const done = () => {
      clearTimeout(timer);
      if (hardKill) clearTimeout(hardKill);
      process.off('exit', onExit);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    };
    child.once('error', (e) => {
      done();
      reject(e);
    });
    child.once('close', (code, signal) => {
      const elapsed = performance.now() - started;
      done();
      resolve({ code, signal, stdout, stderr, ms: elapsed, timedOut });
    });
  });
}

/** One line saying how a run ended, for error reports. */
export function describeExit(r: RunResult, timeoutMs: number): string {
  if (r.timedOut) return `stopped after the ${Math.round(timeoutMs / 1000)} s bound`;
  if (r.signal) return `killed by ${r.signal}`;
  return `exit ${r.code}`;
}

/** The last `lines` lines of a text, indented, for error reports. */
export function tail(text: string, lines = 15): string {
  return text
    .trimEnd()
    .split('\n')
    .slice(-lines)
    .map((l) => `    ${l}`)
    .join('\n');
}

let clockTicks: number | undefined;

/** USER_HZ: the unit of utime / stime in /proc/<pid>/stat. */
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5000 });
    const n = Number(r.stdout?.trim());
    clockTicks = Number.isFinite(n) && n > 0 ? n : 100;
  }
  return clockTicks;
}

/** Fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses). */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/**
 * CPU time (user + system, ms) used so far by `pid` and every live descendant (Linux /proc; NaN
 * elsewhere). For a proxy's master and workers: read before and after a load run. `reaped` adds the
 * children that exited (the commands an agent runs).
 */
export function processTreeCpuMs(pid: number, options: { reaped?: boolean } = {}): number {
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return Number.NaN;
  }
  const children = new Map<number, number[]>();
  for (const d of entries) {
    const ppid = Number(statFields(Number(d))?.[1]);
    if (!Number.isFinite(ppid)) continue;
    const list = children.get(ppid) ?? [];
    list.push(Number(d));
    children.set(ppid, list);
  }
  let ticks = 0;
  const queue = [pid];
  for (let p = queue.pop(); p !== undefined; p = queue.pop()) {
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    const f = statFields(p);
    if (f) ticks += Number(f[11]) + Number(f[12]);
    // cutime and cstime: children that exited and were waited for (a check or reload command).
    if (f && options.reaped) ticks += Number(f[13]) + Number(f[14]);
    queue.push(...(children.get(p) ?? []));
  }
  return (ticks * 1000) / ticksPerSecond();
}
