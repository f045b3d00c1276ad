/**
 * Typed-array n-gram counters for the count stage: no JS Map and no string keys on the hot path.
 *
 * `NgramTable` is an open-addressing hash table (linear probing) for one order n >= 2. Slot s holds
 * its key in `keys[s*n .. s*n+n)`, its count in `counts[s]` (0 marks an empty slot: every stored
 * n-gram was seen at least once) and its hash in `hashes[s]`, so that probing rejects most
 * mismatches without touching the keys and growing never rehashes. It doubles at 5/8 load.
 *
 * `UnigramCounts` counts order 1: token ids are dense (first-occurrence order), so a plain array
 * indexed by id is both smaller and faster than a hash table.
 *
 * Hashes are computed by the caller, one id at a time, walking back from the n-gram's last token
 * (`hashStep`), so that all orders ending at one position share the work; `hashFinish` mixes the
 * running state into a table hash.
 */

const INITIAL_CAPACITY = 1 << 10;

/** Folds one token id into a running hash state (murmur3's 32-bit body step). */
export function hashStep(state: number, id: number): number {
  let k = Math.imul(id, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  state ^= Math.imul(k, 0x1b873593);
  state = (state << 13) | (state >>> 19);
  return (Math.imul(state, 5) + 0xe6546b64) | 0;
}

/** murmur3's finalizer: spreads every input bit over the low bits the table masks with. */
export function hashFinish(state: number): number {
  state ^= state >>> 16;
  state = Math.imul(state, 0x85ebca6b);
  state ^= state >>> 13;
  state = Math.imul(state, 0xc2b2ae35);
  return state ^ (state >>> 16);
}

export const HASH_SEED = 0x2545f491;

/** The table hash of `ids[start .. start+n)`; the same value the counting loops compute. */
export function hashKey(ids: ArrayLike<number>, start: number, n: number): number {
  let state = HASH_SEED;
  for (let k = n - 1; k >= 0; k--) state = hashStep(state, ids[start + k]);
  return hashFinish(state);
}

export class NgramTable {
  readonly order: number;
  /** Distinct n-grams stored. */
  size = 0;
  /** Sum of all counts added (n-gram occurrences). */
  total = 0;
  keys: Int32Array;
  counts: Float64Array;
  hashes: Int32Array;
  private mask: number;
  private limit: number;

  constructor(order: number, capacity = INITIAL_CAPACITY) {
    if (!Number.isInteger(order) || order < 2) throw new RangeError(`Expected an order of at least 2, got \`${order}\``);
    this.order = order;
    const slots = 1 << Math.max(4, Math.ceil(Math.log2(capacity)));
    this.keys = new Int32Array(slots * order);
    this.counts = new Float64Array(slots);
    this.hashes = new Int32Array(slots);
    this.mask = slots - 1;
    this.limit = (slots * 5) >>> 3;
  }

  /** Bytes held by the table's arrays (what --memory-mb budgets). */
  get bytes(): number {
    return this.keys.byteLength + this.counts.byteLength + this.hashes.byteLength;
  }

  /**
   * The most bytes the table holds while `rows` more distinct n-grams are added (an upper bound:
   * some may already be stored). Growing keeps the old arrays until the new ones are filled.
   */
  peakBytes(rows: number): number {
    let slots = this.counts.length;
    if (this.size + rows <= this.limit) return this.bytes;
    while (((slots * 5) >>> 3) < this.size + rows) slots *= 2;
    return this.bytes + slots * (this.order * 4 + 8 + 4);
  }

  /**
   * Adds `amount` to the n-gram `source[start .. start+n)`, whose hashKey is `hash`.
   * Written as one flat loop: this is the count stage's hot path.
   */
  add(source: Int32Array, start: number, hash: number, amount: number): void {
    const n = this.order;
    const keys = this.keys;
    const counts = this.counts;
    const hashes = this.hashes;
    let slot = hash & this.mask;
    for (;;) {
      if (counts[slot] === 0) break;
      if (hashes[slot] === hash) {
        const base = slot * n;
        let k = 0;
        while (k < n && keys[base + k] === source[start + k]) k++;
        if (k === n) {
          counts[slot] += amount;
          this.total += amount;
          return;
        }
      }
      slot = (slot + 1) & this.mask;
    }
    const base = slot * n;
    for (let k = 0; k < n; k++) keys[base + k] = source[start + k];
    counts[slot] = amount;
    hashes[slot] = hash;
    this.total += amount;
    if (++this.size > this.limit) this.grow();
  }

  /** Calls `visit(keys, offset, count)` for each stored n-gram; keys[offset .. offset+n) is its key. */
  forEach(visit: (keys: Int32Array, offset: number, count: number) => void): void {
    const { keys, counts, order } = this;
    for (let slot = 0; slot < counts.length; slot++) {
      if (counts[slot] !== 0) visit(keys, slot * order, counts[slot]);
    }
  }

  /** The stored n-grams packed densely: keys [size * n] and counts [size], in slot order. */
  compact(): { keys: Int32Array; counts: Float64Array } {
    const n = this.order;
    const keys = new Int32Array(this.size * n);
    const counts = new Float64Array(this.size);
    let row = 0;
    for (let slot = 0; slot < this.counts.length; slot++) {
      if (this.counts[slot] === 0) continue;
      keys.set(this.keys.subarray(slot * n, slot * n + n), row * n);
      counts[row++] = this.counts[slot];
    }
    return { keys, counts };
  }

  private grow(): void {
    const n = this.order;
    const { keys, counts, hashes } = this;
    const slots = counts.length * 2;
    this.keys = new Int32Array(slots * n);
    this.counts = new Float64Array(slots);
    this.hashes = new Int32Array(slots);
    this.mask = slots - 1;
    this.limit = (slots * 5) >>> 3;
    for (let old = 0; old < counts.length; old++) {
      if (counts[old] === 0) continue;
      let slot = hashes[old] & this.mask;
      while (this.counts[slot] !== 0) slot = (slot + 1) & this.mask;
      this.keys.set(keys.subarray(old * n, old * n + n), slot * n);
      this.counts[slot] = counts[old];
      this.hashes[slot] = hashes[old];
    }
  }
}

/** Order-1 counts indexed directly by token id. */
export class UnigramCounts {
  counts: Float64Array;
  /** One past the highest id counted. */
  size = 0;
  total = 0;

  constructor(capacity = INITIAL_CAPACITY) {
    this.counts = new Float64Array(Math.max(16, capacity));
  }

  get bytes(): number {
    return this.counts.byteLength;
  }

  /** The most bytes held while ids below `size` are added. */
  peakBytes(size: number): number {
    if (size <= this.counts.length) return this.bytes;
    let length = this.counts.length * 2;
    while (length < size) length *= 2;
    return this.bytes + length * 8;
  }

  add(id: number, amount: number): void {
    if (id >= this.counts.length) this.grow(id + 1);
    this.counts[id] += amount;
    this.total += amount;
    if (id >= this.size) this.size = id + 1;
  }

  /** Ids with a non-zero count, ascending, and their counts. */
  compact(): { keys: Int32Array; counts: Float64Array } {
    let distinct = 0;
    for (let id = 0; id < this.size; id++) if (this.counts[id] !== 0) distinct++;
    const keys = new Int32Array(distinct);
    const counts = new Float64Array(distinct);
    let row = 0;
    for (let id = 0; id < this.size; id++) {
      if (this.counts[id] === 0) continue;
      keys[row] = id;
      counts[row++] = this.counts[id];
    }
    return { keys, counts };
  }

  private grow(needed: number): void {
    let length = this.counts.length * 2;
    while (length < needed) length *= 2;
    const counts = new Float64Array(length);
    counts.set(this.counts);
    this.counts = counts;
  }
}
