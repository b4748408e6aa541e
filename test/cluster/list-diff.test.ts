import { describe, expect, it } from 'vitest';
import { ENTRY_OWNERS, EntrySplitter, ListDiff, ListEntries } from '../../src/cluster/list-diff.ts';
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

describe('ListEntries (a full read, entry by entry)', () => {
  /** Feeds `text` in chunks of random sizes (1 to 40 bytes). */
  const feed = (list: ListEntries | ListDiff, text: string, rnd: () => number) => {
    const bytes = Buffer.from(text);
    for (let at = 0; at < bytes.length; ) {
      const n = 1 + Math.floor(rnd() * 40);
      list.push(bytes.subarray(at, at + n));
      at += n;
    }
  };

  it('parses what JSON.parse parses, whatever the chunks, and never holds the body', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const rnd = prng(seed);
      const list = TRICKY.filter(() => rnd() < 0.7);
      const text = seed % 2 === 0 ? JSON.stringify(list) : ` \n${JSON.stringify(list, null, 2)}\n `;
      const entries = new ListEntries(false);
      feed(entries, text, rnd);
      expect(entries.end()).toBe('list');
      expect(entries.entries).toEqual(JSON.parse(text));
    }
  });

  it("gives the table a reconcile's ListDiff makes of the same body, so the next look compares like with like", () => {
    const text = JSON.stringify([
      { ID: 't1', ServiceID: 's1', Spec: { note: 'a, ] } "' } },
      { ID: 't2', ServiceID: 's2' },
      { ID: 't3', ServiceID: 's1' },
    ]);
    const entries = new ListEntries(true);
    feed(entries, text, prng(3));
    const diff = new ListDiff(undefined, ENTRY_OWNERS.tasks);
    feed(diff, text, prng(4));
    const table = entries.table(ENTRY_OWNERS.tasks);
    expect(table?.size).toBe(3);
    expect(table).toEqual(diff.end().table);
    // Not hashed, or an entry without an owner: no table (the next reconcile reads in full).
    const plain = new ListEntries(false);
    feed(plain, text, prng(5));
    expect(plain.table(ENTRY_OWNERS.tasks)).toBeUndefined();
    const standalone = new ListEntries(true);
    feed(standalone, JSON.stringify([{ Id: 'c', Labels: {} }]), prng(6));
    expect(standalone.table(ENTRY_OWNERS.containers)).toBeUndefined();
  });

  it('tells a list from JSON of another kind (an error answer) and from what is not JSON', () => {
    const shape = (text: string) => {
      const entries = new ListEntries(true);
      feed(entries, text, prng(text.length));
      return entries.end();
    };
    expect(shape(' [] ')).toBe('list');
    expect(shape('{"message":"this node is not a swarm manager"}')).toBe('not-a-list');
    expect(shape('"[1]"')).toBe('not-a-list');
    expect(shape('  42')).toBe('not-a-list');
    for (const text of ['[1,2', '[1,,2]', '[1] x', '[{"a":}]', '<html>', '{"a":', '']) {
      expect(shape(text), text).toBe('not-json');
    }
  });
});
