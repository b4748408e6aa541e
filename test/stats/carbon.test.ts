/**
 * CarbonSender against a real carbon-cache on loopback: what is sent is stored under the expected
 * whisper file with the right value, over plaintext and pickle, and across a carbon restart.
 */
import { expect, it } from 'vitest';
import { createNamer } from '../../src/stats/names.ts';
import type { Point } from '../../src/stats/point.ts';
import { CarbonSender, type SenderEvent } from '../../src/stats/sender.ts';
import { describeIntegration } from '../helpers/infra.ts';
import { CarbonCache } from './carbon-cache.ts';

/** Whisper refuses timestamps in the future; use whole 10 s slots in the recent past. */
function slot(secondsAgo: number): number {
  const t = Math.floor(Date.now() / 1000) - secondsAgo;
  return t - (t % 10);
}

async function withCarbon(fn: (carbon: CarbonCache) => Promise<void>): Promise<void> {
  const carbon = await CarbonCache.create();
  try {
    await carbon.start();
    await fn(carbon);
  } finally {
    await carbon.dispose();
  }
}

describeIntegration('CarbonSender with a real carbon-cache', ['carbon-cache', 'whisper-fetch'], () => {
  it('plaintext and pickle points land in the documented whisper files with their values', async () => {
    await withCarbon(async (carbon) => {
      const namer = createNamer({ prefix: 'interlock' });
      const t = slot(60);
      const taskPath = namer.task({ cluster: 'it', service: 'web.v2', task: '1' }, 'cpu.percent');
      const servicePath = namer.service({ cluster: 'it', service: 'web.v2' }, 'memory.used');
      expect(taskPath).toBe('interlock.it.tasks.web_v2.1.cpu.percent');

      const plain = new CarbonSender({ host: '127.0.0.1', port: carbon.linePort });
      plain.send([
        { path: taskPath, value: 97.25, timestamp: t },
        { path: servicePath, value: 1093632, timestamp: t },
      ]);
      const pickle = new CarbonSender({ host: '127.0.0.1', port: carbon.picklePort, protocol: 'pickle' });
      pickle.send([{ path: 'interlock.it.pickled.value', value: -1.5, timestamp: t }]);
      expect(await plain.flush(5_000)).toBe(true);
      expect(await pickle.flush(5_000)).toBe(true);
      await Promise.all([plain.close(), pickle.close()]);

      expect(await carbon.valueAt(taskPath, t)).toBe(97.25);
      expect(await carbon.valueAt(servicePath, t)).toBe(1093632);
      expect(await carbon.valueAt('interlock.it.pickled.value', t)).toBe(-1.5);
    });
  });

  it('carbon stopped and started again: memory stays bounded, drops are counted, points after the restart arrive', async () => {
    await withCarbon(async (carbon) => {
      const events: SenderEvent[] = [];
      const capacity = 1_000;
      const sender = new CarbonSender({
        host: '127.0.0.1',
        port: carbon.linePort,
        capacity,
        backoff: { initialMs: 50, maxMs: 400, jitter: 0 },
        onEvent: (e) => events.push(e),
      });
      try {
        const before = slot(120);
        sender.send([{ path: 'it.restart.before', value: 1, timestamp: before }]);
        expect(await sender.flush(5_000)).toBe(true);
        expect(await carbon.valueAt('it.restart.before', before)).toBe(1);

        await carbon.stop();
        const during = slot(60);
        const away: Point[] = Array.from({ length: 3 * 600 }, (_, i) => ({
          path: `it.restart.during.p${i}`,
          value: i,
          timestamp: during,
        }));
        for (let round = 0; round < 3; round++) {
          sender.send(away.slice(round * 600, (round + 1) * 600));
          await new Promise((resolve) => setTimeout(resolve, 300));
        }
        const down = sender.counters();
        expect(down.connected).toBe(false);
        expect(down.queued).toBe(capacity);
        expect(down.dropped).toBe(away.length - capacity);
        expect(events.some((e) => e.type === 'disconnected')).toBe(true);

        await carbon.start();
        const after = slot(30);
        sender.send([{ path: 'it.restart.after', value: 3, timestamp: after }]);
        expect(await sender.flush(10_000)).toBe(true);
        expect(await carbon.valueAt('it.restart.after', after)).toBe(3);
        // The newest buffered point was kept and delivered; the oldest were the ones dropped.
        expect(await carbon.valueAt(`it.restart.during.p${away.length - 1}`, during)).toBe(away.length - 1);
        expect(await carbon.fetch('it.restart.during.p0', during - 10, during + 10)).toBeUndefined();
        expect(sender.counters()).toMatchObject({ reconnects: 1, connected: true, queued: 0 });
      } finally {
        await sender.close();
      }
    });
  }, 60_000);
});
