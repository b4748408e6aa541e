import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeIfChanged } from '../../src/apply/write.ts';
import { reportFailure } from '../../src/cli/io.ts';
import { captureIo } from '../helpers/exec.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'interlock-report-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const capture = () => captureIo(dir);

describe('reportFailure', () => {
  // The checks refuse these paths before anything is written; this is for what changes on disk
  // between the check and the write.
  it('prints a file system error at write time (EISDIR, ENOTDIR) as a message, not as a bug', async () => {
    await mkdir(path.join(dir, 'a.cfg'));
    await writeFile(path.join(dir, 'file'), 'x');
    for (const target of [path.join(dir, 'a.cfg'), path.join(dir, 'file', 'b.cfg')]) {
      const c = capture();
      const error = await writeIfChanged(target, 'new').then(
        () => undefined,
        (e: unknown) => e,
      );
      reportFailure(c.io, error, 'text');
      expect(c.code()).toBe(2);
      expect(c.err).toHaveLength(1);
      // A directory is named as such before any read; a path under a file is the OS's ENOTDIR.
      expect(c.err[0]).toMatch(/^interlock: ((EISDIR|ENOTDIR): [^\n]+|\S+ is not a regular file; [^\n]+)$/);
      expect(c.err[0]).not.toContain('please report');
    }
  });

  it('keeps the stack for anything else: that is a bug', () => {
    const c = capture();
    reportFailure(c.io, new TypeError('x is undefined'), 'text');
    expect(c.err[0]).toMatch(
      /^interlock: unexpected failure \(a bug; please report it\):\nTypeError: x is undefined\n\s+at /,
    );
  });
});
