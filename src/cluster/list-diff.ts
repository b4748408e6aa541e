/**
 * Which services changed between two reads of the Engine's lists, without parsing the lists
 * (issue 12: the watch daemon's reconcile at 10,000 services). Each list's body is cut into its
 * top-level entries as it streams in, and each entry is hashed; only an entry whose hash is new
 * is parsed, to learn whose it is. An entry gone since the last read names its owner from the
 * last read's table. So a reconcile holds one small table per list (hash → owner), never the
 * lists, and never blocks the event loop longer than one chunk of the body.
 *
 * The cutting only finds where entries begin and end (brackets and strings); JSON.parse still
 * reads every entry it needs, and a body that does not cut cleanly is reported as unreadable.
 */
import { createHash } from 'node:crypto';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

/**
 * Cuts a JSON array's bytes, pushed in chunks of any size, into the bytes of its entries.
 * `entry` is called once per entry, in order. `end()` says whether the body was one whole array.
 */
export class EntrySplitter {
  readonly #entry: (bytes: Buffer) => void;
  #depth = 0;
  #inString = false;
  #escape = false;
  #active = false;
  #parts: Buffer[] = [];
  #done = false;
  #broken = false;

  constructor(entry: (bytes: Buffer) => void) {
    this.#entry = entry;
  }

  push(chunk: Buffer): void {
    if (this.#broken) return;
    let start = this.#active ? 0 : -1;
    const n = chunk.length;
    // Where the next backslash is (n: none): strings are skipped with indexOf, and most have none.
    let backslash = -2;
    let i = 0;
    while (i < n) {
      if (this.#inString) {
        if (this.#escape) {
          this.#escape = false;
          i++;
          continue;
        }
        const quote = chunk.indexOf(QUOTE, i);
        if (backslash !== n && backslash < i) {
          backslash = chunk.indexOf(BACKSLASH, i);
          if (backslash === -1) backslash = n;
        }
        if (backslash < (quote === -1 ? n : quote)) {
          // An escape before the string's end: skip the escaped byte (maybe in the next chunk).
          if (backslash + 1 >= n) this.#escape = true;
          i = backslash + 2;
          continue;
        }
        if (quote === -1) break;
        this.#inString = false;
        i = quote + 1;
        continue;
      }
      const b = chunk[i] as number;
      if (this.#done) {
        if (!isSpace(b)) this.#broken = true;
        i++;
        continue;
      }
      if (this.#depth === 0) {
        if (b === OPEN_BRACKET) this.#depth = 1;
        else if (!isSpace(b)) {
          this.#broken = true;
          return;
        }
        i++;
        continue;
      }
      if (this.#depth === 1) {
        if (b === COMMA || b === CLOSE_BRACKET) {
          if (this.#active) {
            this.#parts.push(chunk.subarray(start, i));
            this.#finish();
            start = -1;
          } else if (b === COMMA) {
            this.#broken = true;
            return;
          }
          if (b === CLOSE_BRACKET) {
            this.#depth = 0;
            this.#done = true;
          }
          i++;
          continue;
        }
        if (isSpace(b)) {
          i++;
          continue;
        }
        if (!this.#active) {
          this.#active = true;
          start = i;
        }
      }
      if (b === QUOTE) this.#inString = true;
      else if (b === OPEN_BRACE || b === OPEN_BRACKET) this.#depth++;
      else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) this.#depth--;
      i++;
    }
    if (this.#active && start >= 0) this.#parts.push(chunk.subarray(start));
  }

  /** True when the bytes were exactly one JSON array (entries not checked: JSON.parse does that). */
  end(): boolean {
    return this.#done && !this.#broken && !this.#inString;
  }

  #finish(): void {
    const parts = this.#parts;
    this.#parts = [];
    this.#active = false;
    let bytes = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
    // Trailing white space before the separator is not part of the entry.
    let end = bytes.length;
    while (end > 0 && isSpace(bytes[end - 1] as number)) end--;
    if (end !== bytes.length) bytes = bytes.subarray(0, end);
    this.#entry(bytes);
  }
}

/**
 * The hash an entry is known by: the same function for a full read's table (ListEntries) and a
 * reconcile's look (ListDiff), which compares against it.
 */
function entryHash(bytes: Buffer): string {
  return createHash('sha1').update(bytes).digest('base64');
}

/** hash of an entry → its owner (a service id), for one list. */
export type EntryTable = Map<string, string>;

/** What one list's entries say changed against the last read's table. */
export interface ListChanges {
  /** Owners (service ids) with an entry that is new, changed or gone. */
  owners: Set<string>;
  /** An entry belongs to no service (a standalone container), or could not be read. */
  unowned: boolean;
  /** This read's table, for the next one. */
  table: EntryTable;
}

/**
 * Streams one list's body into a diff against `last` (undefined: everything is new). `owner`
 * reads an entry's owner from the parsed entry; undefined means it has none.
 */
export class ListDiff {
  readonly #last: EntryTable | undefined;
  readonly #owner: (entry: unknown) => string | undefined;
  readonly #splitter: EntrySplitter;
  readonly #table: EntryTable = new Map();
  readonly #owners = new Set<string>();
  #unowned = false;

  constructor(last: EntryTable | undefined, owner: (entry: unknown) => string | undefined) {
    this.#last = last;
    this.#owner = owner;
    this.#splitter = new EntrySplitter((bytes) => this.#entry(bytes));
  }

  push(chunk: Buffer): void {
    this.#splitter.push(chunk);
  }

  end(): ListChanges {
    if (!this.#splitter.end()) this.#unowned = true;
    if (this.#last) {
      for (const [hash, owner] of this.#last) if (!this.#table.has(hash)) this.#owners.add(owner);
    }
    return { owners: this.#owners, unowned: this.#unowned, table: this.#table };
  }

  #entry(bytes: Buffer): void {
    const hash = entryHash(bytes);
    const known = this.#last?.get(hash);
    if (known !== undefined) {
      this.#table.set(hash, known);
      return;
    }
    let owner: string | undefined;
    try {
      owner = this.#owner(JSON.parse(bytes.toString('utf8')));
    } catch {
      owner = undefined;
    }
    if (owner === undefined) {
      this.#unowned = true;
      return;
    }
    this.#table.set(hash, owner);
    if (this.#last) this.#owners.add(owner);
  }
}

/** What a full read's list body turned out to be. */
export type ListShape = 'list' | 'not-a-list' | 'not-json';

/** The most of a body that does not start as a list kept to tell "JSON, not a list" from "not JSON". */
const NOT_A_LIST_KEPT = 1024 * 1024;

/**
 * A list's body taken in as it streams, for a full read: cut into its entries, each parsed as it
 * arrives and, for a list tracked per entry, hashed for the next reconcile's table. Neither the
 * body nor its text is ever held whole (issue 12: the three big lists of 10,000 services are
 * ~83 MB; read alone, joining their text and parsing it peaked at ~290 MB of RSS in ~3.1 s, entry
 * by entry ~160 MB in ~1.8 s. In the watch daemon the first read peaked at ~255 MB either way:
 * the parsed entries are held while they are mapped and the first render runs; `reduce` keeping
 * only what mapping reads of task containers brought it to ~210 MB).
 */
export class ListEntries {
  readonly entries: unknown[] = [];
  readonly #hashes: string[] | undefined;
  readonly #splitter: EntrySplitter;
  /** The body's first bytes, while it does not start with `[` (an error answer: kept to name it). */
  #head: Buffer[] | undefined;
  #headBytes = 0;
  #started = false;
  #unparsable = false;
  readonly #reduce: ((entry: unknown) => unknown) | undefined;

  /** `reduce`: what to keep of each parsed entry (the owner `table` reads must stay in it). */
  constructor(hashed: boolean, reduce?: (entry: unknown) => unknown) {
    this.#hashes = hashed ? [] : undefined;
    this.#reduce = reduce;
    this.#splitter = new EntrySplitter((bytes) => this.#entry(bytes));
  }

  push(chunk: Buffer): void {
    if (!this.#started) {
      let i = 0;
      while (i < chunk.length && isSpace(chunk[i] as number)) i++;
      if (i < chunk.length) {
        this.#started = true;
        if (chunk[i] !== OPEN_BRACKET) this.#head = [];
      }
    }
    if (this.#head) {
      if (this.#headBytes < NOT_A_LIST_KEPT) this.#head.push(chunk);
      this.#headBytes += chunk.length;
      return;
    }
    this.#splitter.push(chunk);
  }

  /** Whether the body was a JSON list (then `entries` holds it), JSON of another kind, or not JSON. */
  end(): ListShape {
    if (this.#head) {
      if (this.#headBytes > NOT_A_LIST_KEPT) return 'not-json';
      try {
        JSON.parse(Buffer.concat(this.#head).toString('utf8'));
        return 'not-a-list';
      } catch {
        return 'not-json';
      }
    }
    return this.#splitter.end() && !this.#unparsable ? 'list' : 'not-json';
  }

  /**
   * hash → owner, the owners read from the parsed entries: as ListDiff with no last table.
   * Undefined when the list is not hashed or not whole, or an entry has no owner.
   */
  table(owner: (entry: unknown) => string | undefined): EntryTable | undefined {
    const hashes = this.#hashes;
    if (!hashes || this.end() !== 'list' || hashes.length !== this.entries.length) return undefined;
    const table: EntryTable = new Map();
    for (let i = 0; i < hashes.length; i++) {
      const o = owner(this.entries[i]);
      if (o === undefined) return undefined;
      table.set(hashes[i] as string, o);
    }
    return table;
  }

  #entry(bytes: Buffer): void {
    this.#hashes?.push(entryHash(bytes));
    if (this.#unparsable) return;
    try {
      const entry: unknown = JSON.parse(bytes.toString('utf8'));
      this.entries.push(this.#reduce ? this.#reduce(entry) : entry);
    } catch {
      this.#unparsable = true;
    }
  }
}

function field(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined;
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** Whose entry it is, per list: the service's own id, a task's service, a task container's service. */
export const ENTRY_OWNERS: Readonly<
  Record<'services' | 'tasks' | 'containers', (entry: unknown) => string | undefined>
> = {
  services: (e) => text(field(e, 'ID')),
  tasks: (e) => text(field(e, 'ServiceID')),
  containers: (e) => text(field(field(e, 'Labels'), 'com.docker.swarm.service.id')),
};
