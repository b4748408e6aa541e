/**
 * A fixed-capacity FIFO that overwrites its oldest item when full: the sender's buffer while
 * Carbon is slow or away. Memory never grows past `capacity` items.
 */
export class RingBuffer<T> {
  readonly capacity: number;
  #items: (T | undefined)[];
  #head = 0;
  #size = 0;

  constructor(capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be ≥ 1, got ${capacity}`);
    this.capacity = capacity;
    this.#items = new Array<T | undefined>(capacity);
  }

  get size(): number {
    return this.#size;
  }

  /** Appends; returns true when the oldest item was dropped to make room. */
  push(item: T): boolean {
    const cap = this.capacity;
    if (this.#size === cap) {
      this.#items[this.#head] = item;
      this.#head = (this.#head + 1) % cap;
      return true;
    }
    this.#items[(this.#head + this.#size) % cap] = item;
    this.#size++;
    return false;
  }

  /** Removes and returns up to `n` of the oldest items, oldest first. */
  shiftMany(n: number): T[] {
    const count = Math.min(n, this.#size);
    const out = new Array<T>(count);
    const cap = this.capacity;
    for (let i = 0; i < count; i++) {
      out[i] = this.#items[this.#head] as T;
      // Let the point be collected once it has left the buffer.
      this.#items[this.#head] = undefined;
      this.#head = (this.#head + 1) % cap;
    }
    this.#size -= count;
    return out;
  }

  /**
   * Puts items back in front (they are older than everything queued), keeping their order. When
   * the buffer fills up, the oldest of them are the ones dropped; returns how many were.
   */
  unshiftMany(items: readonly T[]): number {
    const cap = this.capacity;
    for (let i = items.length - 1; i >= 0; i--) {
      if (this.#size === cap) return i + 1;
      this.#head = (this.#head - 1 + cap) % cap;
      this.#items[this.#head] = items[i];
      this.#size++;
    }
    return 0;
  }

  clear(): void {
    this.#items = new Array<T | undefined>(this.capacity);
    this.#head = 0;
    this.#size = 0;
  }
}
