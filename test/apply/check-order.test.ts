/**
 * Checks that run at the same time start the slow one (HAProxy's, `checkFirst`) first, whichever
 * was asked for first; a check alone, or a failing HAProxy check, holds nothing up.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkRendered } from '../../src/apply/check-proxy.ts';
import { configSchema, type FileOutput } from '../../src/config/schema.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'interlock-check-order-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** An output whose check appends its kind to `log` (the order the checks started in). */
function output(kind: 'haproxy' | 'nginx', log: string, exit = 0): FileOutput {
  return configSchema.parse({
    clusters: { local: {} },
    outputs: [
      {
        kind,
        file: `${kind}.conf`,
        validate: { kind: 'command', command: ['sh', '-c', `echo ${kind} >> ${log}; exit ${exit}`] },
      },
    ],
  }).outputs[0] as FileOutput;
}

const files = (name: string) => [{ name, content: 'x\n' }];
const env = { env: {}, missingBinary: 'fail' as const };

describe('checks at the same time', () => {
  it('start HAProxy’s first, also when Nginx’s was asked for first and has fewer files to write', async () => {
    for (let round = 0; round < 5; round++) {
      const log = path.join(dir, `order-${round}`);
      const [n, h] = await Promise.all([
        checkRendered(output('nginx', log), files('nginx.conf'), env),
        checkRendered(
          output('haproxy', log),
          [...files('haproxy.cfg'), ...Array.from({ length: 20 }, (_, i) => ({ name: `m${i}.map`, content: 'y' }))],
          env,
        ),
      ]);
      expect([n.ok, h.ok]).toEqual([true, true]);
      expect(await readFile(log, 'utf8')).toBe('haproxy\nnginx\n');
    }
  });

  it('a HAProxy check that fails to start holds nothing up; a check alone never waits', async () => {
    const log = path.join(dir, 'order');
    const missing: FileOutput = {
      ...output('haproxy', log),
      validate: { kind: 'binary', path: '/nonexistent/haproxy' },
    };
    const [n, h] = await Promise.all([
      checkRendered(output('nginx', log), files('nginx.conf'), env),
      checkRendered(missing, files('haproxy.cfg'), env),
    ]);
    expect(n.ok).toBe(true);
    expect(h.ok).toBe(false);
    const alone = await checkRendered(output('nginx', log, 1), files('nginx.conf'), env);
    expect(alone.ok).toBe(false);
    expect(await readFile(log, 'utf8')).toBe('nginx\nnginx\n');
  });
});
