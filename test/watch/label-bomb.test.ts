/**
 * A label bomb under `watch`: Swarm accepts about 45,000 labels on a service. Two such services
 * used to slow every cycle from 0.2 s to 6–15 s and write 130,000 log lines.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ApplyResult } from '../../src/apply/apply.ts';
import { configSchema } from '../../src/config/schema.ts';
import type { PlannedOutput } from '../../src/pipeline.ts';
import { createLogger } from '../../src/runtime/log.ts';
import { createMetrics } from '../../src/runtime/metrics.ts';
import { WatchDaemon } from '../../src/watch/daemon.ts';
import { templateTexts } from '../helpers/render.ts';
import { FakeSwarm, httpService } from './fake-swarm.ts';

const many = (n: number, key: (i: number) => string) =>
  Object.fromEntries(Array.from({ length: n }, (_, i) => [key(i), 'x']));

describe('a label bomb under watch', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('says so once per service, keeps its log short and routes the rest', async () => {
    const swarm = new FakeSwarm();
    swarm.add(httpService('web', 8001));
    // Two bombs: one of junk labels, one of 900 unknown interlock.* labels (each a warning).
    swarm.add(
      httpService(
        'bomb1',
        8002,
        many(45_000, (i) => `junk.label.${i}`),
      ),
    );
    swarm.add(
      httpService(
        'bomb2',
        8003,
        many(900, (i) => `interlock.nonsense${i}`),
      ),
    );
    const lines: string[] = [];
    let last: PlannedOutput | undefined;
    const daemon = new WatchDaemon({
      config: configSchema.parse({
        clusters: { local: {} },
        outputs: [{ kind: 'haproxy', file: 'out/haproxy.cfg', http: { address: '127.0.0.1', port: 8080 } }],
        watch: { reconcile: '1s' },
      }),
      configDir: '/cfg',
      templates: templateTexts(),
      env: {},
      log: createLogger({ format: 'logfmt', level: 'info', write: (l) => lines.push(l.trimEnd()) }),
      metrics: createMetrics(),
      apply: async (o): Promise<ApplyResult> => {
        last = o;
        return { kind: 'unchanged' };
      },
      connect: async () => ({ api: swarm.api(), display: 'fake://local', timeoutMs: 1000 }),
      watcher: { backoff: { jitter: 0 } },
    });
    daemon.start();
    await vi.advanceTimersByTimeAsync(10_000);
    await daemon.stop();
    expect(daemon.cycles).toBeGreaterThan(5);

    const about = (service: string) => lines.filter((l) => l.includes(`service=${service}`));
    expect(about('bomb1').filter((l) => l.includes('45,') && l.includes('labels'))).toHaveLength(1);
    // 10 of the 900 warnings, then one line counting the rest; nothing more on later re-lists.
    expect(about('bomb2')).toHaveLength(11);
    expect(about('bomb2').at(-1)).toContain('new_not_logged=890');
    expect(lines.length).toBeLessThan(40);
    const map = last?.files[0]?.content ?? '';
    for (const host of ['web.test', 'bomb1.test', 'bomb2.test']) expect(map).toContain(host);
  });
});
