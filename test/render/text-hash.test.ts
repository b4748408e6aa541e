import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { updateText } from '../../src/render/text-hash.ts';

const whole = (text: string) => createHash('sha256').update(text).digest('hex');
const pieces = (text: string) => updateText(createHash('sha256'), text).digest('hex');

describe('updateText: a large text hashed in pieces', () => {
  it('gives the digest of the whole text', () => {
    const text = 'backend be_svc\n  server s1 10.0.0.1:80 check\n'.repeat(2000);
    expect(text.length).toBeGreaterThan(16_384 * 5);
    expect(pieces(text)).toBe(whole(text));
    expect(pieces('')).toBe(whole(''));
  });

  it('never splits a surrogate pair between two pieces', () => {
    // An emoji (two UTF-16 units) across every piece boundary, and non-ASCII text around.
    for (const pad of [16_383, 16_384, 16_385]) {
      const text = `${'x'.repeat(pad)}😀é${'y'.repeat(16_384)}😀`;
      expect(pieces(text)).toBe(whole(text));
    }
  });
});
