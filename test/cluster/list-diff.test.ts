import { describe, expect, it } from 'vitest';
import { ENTRY_OWNERS, EntrySplitter, ListDiff } from '../../src/cluster/list-diff.ts';
import { prng } from '../helpers/prng.ts';

/** Cuts `text` into chunks of random sizes and returns the entries the splitter found. */
function split(text: string, rnd: () => number): { entries: string[]; whole: boolean } {
  const entries: string[] = [];
  const splitter = new EntrySplitter((b) => entries.push(b.toString('utf8')));
  const bytes = Buffer.from(text);
  for (let at = 0; at < bytes.length; ) {
    const n = 1 + Math.floor(rnd() * 40);
    splitter.push(bytes.subarray(at, at + n));
    at += n;
  }
  return { entries, whole: splitter.end() };
}

const TRICKY = [
  { ID: 'a', Spec: { Name: 'x', Labels: { 'a,b': '[{"}]', q: 'say \\"hi\\" ] , }' } } },
  { ID: 'b', list: [1, [2, [3]], { '': '' }], s: 'é ✓ \u2028' },
  'a string, with ] and }',
  42,
  null,
  [],
  {},
];

describe('EntrySplitter', () => {
  it('finds the entries JSON.parse finds, whatever the chunks and white space', () => {
    for (let seed = 1; seed <= 50; seed++) {
      const rnd = prng(seed);
      const list = TRICKY.filter(() => rnd() < 0.7);
      const text =
        seed % 2 === 0 ? JSON.stringify(list) : ` \n${JSON.stringify(list, null, seed % 3 === 0 ? 2 : '\t')}\n `;
      const { entries, whole } = split(text, rnd);
      expect(whole).toBe(true);
      expect(entries.map((e) => JSON.parse(e))).toEqual(JSON.parse(text));
    }
  });

  it('says when the body is not one array', () => {
    const rnd = prng(7);
    for (const text of ['{"a":1}', '[1,2', '[1,,2]', '[1] x', '"[1]"', '']) {
      expect(split(text, rnd).whole, text).toBe(false);
    }
  });
});

describe('ListDiff', () => {
  const tasks = (xs: Array<[string, string]>) =>
    JSON.stringify(xs.map(([id, service]) => ({ ID: id, ServiceID: service })));
  const run = (last: Map<string, string> | undefined, text: string) => {
    const d = new ListDiff(last, ENTRY_OWNERS.tasks);
    d.push(Buffer.from(text));
    return d.end();
  };

  it('names the owners of new, changed and gone entries only', () => {
    const first = run(
      undefined,
      tasks([
        ['t1', 's1'],
        ['t2', 's2'],
        ['t3', 's3'],
      ]),
    );
    expect(first.unowned).toBe(false);
    expect([...first.owners]).toEqual([]);
    const second = run(
      first.table,
      tasks([
        ['t1', 's1'],
        ['t2b', 's2'],
        ['t4', 's4'],
      ]),
    );
    expect([...second.owners].sort()).toEqual(['s2', 's3', 's4']);
    expect(
      run(
        second.table,
        tasks([
          ['t1', 's1'],
          ['t2b', 's2'],
          ['t4', 's4'],
        ]),
      ).owners.size,
    ).toBe(0);
  });

  it('flags an entry without an owner (a standalone container) and a broken body', () => {
    expect(run(undefined, JSON.stringify([{ ID: 'x' }])).unowned).toBe(true);
    expect(run(undefined, '[{"ID":"t","ServiceID":"s"}').unowned).toBe(true);
    const containers = new ListDiff(undefined, ENTRY_OWNERS.containers);
    containers.push(Buffer.from(JSON.stringify([{ Id: 'c', Labels: { 'com.docker.swarm.service.id': 's' } }])));
    expect(containers.end().unowned).toBe(false);
  });
});
