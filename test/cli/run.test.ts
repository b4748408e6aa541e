/** The one command runner: outcome → exit code, a refused config, failures, for every command alike. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCommand } from '../../src/cli/run.ts';
import { InterlockError } from '../../src/errors.ts';
import { createLogger } from '../../src/runtime/log.ts';
import { captureIo } from '../helpers/exec.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'interlock-run-'));
  await writeFile(
    path.join(dir, 'good.json'),
    JSON.stringify({ clusters: { local: {} }, outputs: [{ kind: 'haproxy', file: 'haproxy.cfg' }] }),
  );
  await writeFile(path.join(dir, 'bad.json'), JSON.stringify({ clusters: {}, outputs: [{ kind: 'haproxy' }] }));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const spec = (configOption: string) => ({ name: 'render', configOption });

describe('runCommand', () => {
  it('maps the outcome to the exit code: ok 0, invalid 1', async () => {
    for (const [outcome, code] of [
      ['ok', 0],
      ['invalid', 1],
    ] as const) {
      const c = captureIo(dir);
      await runCommand(c.io, spec('good.json'), async (run) => {
        expect((await run.config()).config.outputs).toHaveLength(1);
        return outcome;
      });
      expect(c.code()).toBe(code);
    }
  });

  it('stops on a refused config: its diagnostics on stderr, exit 1, the body goes no further', async () => {
    const c = captureIo(dir);
    let after = false;
    await runCommand(c.io, { ...spec('bad.json'), refused: 'nothing rendered' }, async (run) => {
      await run.config();
      after = true;
      return 'ok';
    });
    expect(after).toBe(false);
    expect(c.code()).toBe(1);
    expect(c.err.join('\n')).toContain('outputs[0]');
    expect(c.err.at(-1)).toBe('interlock: bad.json is invalid; nothing rendered (run `interlock validate`)');
  });

  it('prints a refused config as one JSON document when stdout is the JSON report', async () => {
    const c = captureIo(dir);
    await runCommand(c.io, { ...spec('bad.json'), format: 'json', jsonReport: true }, async (run) => {
      await run.config();
      return 'ok';
    });
    expect(c.code()).toBe(1);
    expect(JSON.parse(c.out.join(''))).toMatchObject({ ok: false });
  });

  it('hands the config to the body as found when it asks to check it (validate)', async () => {
    const c = captureIo(dir);
    await runCommand(c.io, spec('bad.json'), async (run) => {
      const checked = await run.check();
      expect(checked.diagnostics.some((d) => d.severity === 'error')).toBe(true);
      return 'invalid';
    });
    expect(c.code()).toBe(1);
    expect(c.err).toEqual([]);
  });

  it('exits 2 on a known failure, its message without a stack', async () => {
    const c = captureIo(dir);
    await runCommand(c.io, spec('good.json'), async () => {
      throw new InterlockError('cannot reach the engine');
    });
    expect(c.code()).toBe(2);
    expect(c.err).toEqual(['interlock: cannot reach the engine']);
  });

  it('exits 2 when the config cannot be loaded at all', async () => {
    const c = captureIo(dir);
    await runCommand(c.io, spec('missing.json'), async (run) => {
      await run.config();
      return 'ok';
    });
    expect(c.code()).toBe(2);
    expect(c.err[0]).toMatch(/^interlock: config .*missing\.json cannot be read/);
  });

  it('a daemon logs a refused config and exits 2: it could not start', async () => {
    const c = captureIo(dir);
    const log = createLogger({ format: 'logfmt', level: 'info', write: (line) => c.io.stderr(line) });
    await runCommand(c.io, { ...spec('bad.json'), name: 'watch', log, daemon: true }, async (run) => {
      await run.config();
      return 'ok';
    });
    expect(c.code()).toBe(2);
    expect(c.err.join('\n')).toMatch(/level=error msg=.*outputs\[0\]/);
    expect(c.err.at(-1)).toContain('not starting');
    expect(c.out).toEqual([]);
  });
});
