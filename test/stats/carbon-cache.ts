/**
 * A real carbon-cache on loopback in a temp dir (recipe: ../../../shared/TEST-INFRA.md), for the
 * Carbon integration test and bench/carbon.ts. Stopped by its own pid, never by name; every wait
 * is bounded.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const running = new Set<ChildProcess>();
// Last resort if a test worker exits without stopping it: no carbon-cache outlives its test.
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen({ host, port: 0 }, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export interface WhisperSeries {
  start: number;
  end: number;
  step: number;
  values: (number | null)[];
}

export class CarbonCache {
  readonly dir: string;
  /** The address it listens on: 127.0.0.1 unless `create({ host })` said otherwise. */
  readonly host: string;
  readonly linePort: number;
  readonly picklePort: number;
  readonly queryPort: number;
  #child: ChildProcess | undefined;

  private constructor(dir: string, host: string, linePort: number, picklePort: number, queryPort: number) {
    this.dir = dir;
    this.host = host;
    this.linePort = linePort;
    this.picklePort = picklePort;
    this.queryPort = queryPort;
  }

  /**
   * Writes the config into a fresh temp dir; `start()` runs it. `host`: the address to listen on
   * (default loopback; the multi-node tests use the address of their own bridge).
   */
  static async create(options: { host?: string } = {}): Promise<CarbonCache> {
    const host = options.host ?? '127.0.0.1';
    const dir = await mkdtemp(path.join(os.tmpdir(), 'interlock-carbon-'));
    const [linePort, picklePort, queryPort] = [await freePort(host), await freePort(host), await freePort(host)];
    const cache = new CarbonCache(dir, host, linePort, picklePort, queryPort);
    await mkdir(path.join(dir, 'conf'), { recursive: true });
    await mkdir(path.join(dir, 'storage', 'whisper'), { recursive: true });
    await mkdir(path.join(dir, 'log'), { recursive: true });
    await writeFile(
      path.join(dir, 'conf', 'carbon.conf'),
      [
        '[cache]',
        `STORAGE_DIR = ${dir}/storage/`,
        `LOCAL_DATA_DIR = ${dir}/storage/whisper/`,
        `CONF_DIR = ${dir}/conf/`,
        `LOG_DIR = ${dir}/log/`,
        `PID_DIR = ${dir}/`,
        'USER =',
        `LINE_RECEIVER_INTERFACE = ${host}`,
        `LINE_RECEIVER_PORT = ${linePort}`,
        `PICKLE_RECEIVER_INTERFACE = ${host}`,
        `PICKLE_RECEIVER_PORT = ${picklePort}`,
        `CACHE_QUERY_INTERFACE = ${host}`,
        `CACHE_QUERY_PORT = ${queryPort}`,
        'MAX_CREATES_PER_MINUTE = inf',
        'MAX_UPDATES_PER_SECOND = inf',
        'ENABLE_TAGS = False',
        '',
      ].join('\n'),
    );
    await writeFile(
      path.join(dir, 'conf', 'storage-schemas.conf'),
      '[default]\npattern = .*\nretentions = 10s:1h,60s:1d\n',
    );
    return cache;
  }

  get running(): boolean {
    return this.#child !== undefined;
  }

  async start(timeoutMs = 20_000): Promise<void> {
    if (this.#child) return;
    const conf = path.join(this.dir, 'conf', 'carbon.conf');
    const child = spawn(
      'carbon-cache',
      [
        `--config=${conf}`,
        `--pidfile=${path.join(this.dir, 'carbon.pid')}`,
        `--logdir=${path.join(this.dir, 'log')}`,
        '--nodaemon',
        'start',
      ],
      { stdio: 'ignore' },
    );
    this.#child = child;
    running.add(child);
    let exited = false;
    child.once('exit', () => {
      exited = true;
      running.delete(child);
      if (this.#child === child) this.#child = undefined;
    });
    const deadline = Date.now() + timeoutMs;
    while (!((await accepts(this.host, this.linePort)) && (await accepts(this.host, this.picklePort)))) {
      if (exited || Date.now() > deadline) {
        await this.stop();
        throw new Error(`carbon-cache did not start (${exited ? 'exited' : 'timeout'}):\n${await this.logTail()}`);
      }
      await sleep(50);
    }
  }

  /**
   * SIGTERM to our own child (carbon writes its cache out on the way down), SIGKILL after 10 s.
   * `SIGKILL` at once when the data is not wanted any more (benchmarks).
   */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null) return;
    const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await done;
    clearTimeout(timer);
  }

  async dispose(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    await this.stop(signal);
    await rm(this.dir, { recursive: true, force: true });
  }

  /** Where carbon keeps a series: every dot of the path is a directory. */
  whisperFile(metric: string): string {
    return path.join(this.dir, 'storage', 'whisper', ...metric.split('.')) + '.wsp';
  }

  async fetch(metric: string, from: number, until: number): Promise<WhisperSeries | undefined> {
    try {
      const { stdout } = await run(
        'whisper-fetch',
        ['--json', `--from=${from}`, `--until=${until}`, this.whisperFile(metric)],
        { timeout: 10_000 },
      );
      return JSON.parse(stdout) as WhisperSeries;
    } catch {
      return undefined;
    }
  }

  /** The stored value of `metric` in the slot holding `timestamp`, waiting (bounded) for the writer. */
  async valueAt(metric: string, timestamp: number, timeoutMs = 10_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const series = await this.fetch(metric, timestamp - 20, timestamp + 20);
      if (series) {
        const index = Math.floor((timestamp - series.start) / series.step);
        const value = series.values[index];
        if (typeof value === 'number') return value;
      }
      if (Date.now() > deadline) {
        throw new Error(`no value for ${metric} at ${timestamp} after ${timeoutMs} ms:\n${await this.logTail()}`);
      }
      await sleep(200);
    }
  }

  async logTail(lines = 30): Promise<string> {
    const out: string[] = [];
    for (const name of ['console.log', 'listener.log', 'creates.log']) {
      const text = await readFile(path.join(this.dir, 'log', name), 'utf8').catch(() => '');
      if (text) out.push(`--- ${name}`, ...text.trimEnd().split('\n').slice(-lines));
    }
    return out.join('\n');
  }
}
