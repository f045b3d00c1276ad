/**
 * Typed-array n-gram counters for the count stage: no JS Map and no string keys on the hot path.
 *
 * `NgramTable` is an open-addressing hash table (linear probing) for one order n >= 2. Slot s holds
 * its hash, count and key side by side in `slots` (so a probe reads one cache line, rejects most
 * mismatches by the hash alone, and growing never rehashes). It doubles at 5/8 load.
 *
 * A table picks a slot by the *top* bits of the hash: rows that arrive sorted by hash (a worker's
 * radix buckets, stages/count/_radix.ts) then land in ascending slots, so merging a shard into a
 * table far bigger than the caches walks it forward instead of at random. A table that counts one
 * bucket, whose rows share their top `skip` bits, uses the bits below those (`skip`).
 *
 * `UnigramCounts` counts order 1: token ids are dense (first-occurrence order), so a plain array
 * indexed by id is both smaller and faster than a hash table.
 *
 * An n-gram's hash is a function of its tokens' text, not of their ids (`ngramHash` over
 * `tokenHash`es): a worker knows only its shard's local ids, yet the hash it computes is the one the
 * merger's global table uses, so the merger never rehashes.
 */
import { textHashStart, textHashStep } from '../ingest/index.ts';

const INITIAL_CAPACITY = 1 << 10;
/** The hash slot of a free slot; a key whose hash is EMPTY is stored with hash 1 instead. */
const EMPTY = 0;

/** Folds one token id into a running hash state (murmur3's 32-bit body step). */
export function hashStep(state: number, id: number): number {
  let k = Math.imul(id, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  state ^= Math.imul(k, 0x1b873593);
  state = (state << 13) | (state >>> 19);
  return (Math.imul(state, 5) + 0xe6546b64) | 0;
}

/** murmur3's finalizer: spreads every input bit over the whole word. */
export function hashFinish(state: number): number {
  state ^= state >>> 16;
  state = Math.imul(state, 0x85ebca6b);
  state ^= state >>> 13;
  state = Math.imul(state, 0xc2b2ae35);
  return state ^ (state >>> 16);
}

export const HASH_SEED = 0x2545f491;

/** The hash of a token's text (FNV-1a over its UTF-16 units): what ngramHash combines. */
export function tokenHash(token: string): number {
  let hash = textHashStart;
  for (let i = 0; i < token.length; i++) hash = textHashStep(hash, token.charCodeAt(i));
  return hash;
}

/**
 * The table hash of the n-gram `ids[start .. start+n)`, whose token hashes are `tokenHashes[id]`:
 * walked from the last token back, as the counting loops do.
 */
export function ngramHash(ids: ArrayLike<number>, start: number, n: number, tokenHashes: ArrayLike<number>): number {
  let state = HASH_SEED;
  for (let k = n - 1; k >= 0; k--) state = hashStep(state, tokenHashes[ids[start + k]]);
  return hashFinish(state);
}

export class NgramTable {
  readonly order: number;
  /** Int32s per slot in `slots`: the hash, the count, then the n ids. */
  readonly stride: number;
  /** Distinct n-grams stored. */
  size = 0;
  /** Sum of all counts added (n-gram occurrences). */
  total = 0;
  /**
   * Slot s: slots[s*stride] is its hash (EMPTY when free), then its count, then its key: a probe
   * and its count update touch one cache line. The count is an int32: callers keep the occurrences
   * added to one table below 2^31 (a shard is far smaller; the merger commits before that).
   */
  slots: Int32Array;
  private mask: number;
  private limit: number;
  /** 32 - log2(slots): `index(hash)` keeps the top bits. */
  private shift: number;
  #skip = 0;

  constructor(order: number, capacity = INITIAL_CAPACITY) {
    if (!Number.isInteger(order) || order < 2) throw new RangeError(`Expected an order of at least 2, got \`${order}\``);
    this.order = order;
    this.stride = order + 2;
    const slots = NgramTable.slotsFor(capacity);
    this.slots = new Int32Array(slots * this.stride);
    this.mask = slots - 1;
    this.limit = (slots * 5) >>> 3;
    this.shift = 32 - Math.log2(slots);
  }

  /** Top bits that every hash in the table shares (a radix bucket's): the slot comes from the next ones. */
  get skip(): number {
    return this.#skip;
  }

  set skip(bits: number) {
    if (this.size > 0) throw new RangeError('Expected an empty table when changing its skipped bits');
    this.#skip = bits;
  }

  /** The home slot of `hash`: its top bits after the skipped ones (rotated, so bits never run out). */
  private index(hash: number): number {
    const skip = this.#skip;
    return (skip === 0 ? hash : (hash << skip) | (hash >>> (32 - skip))) >>> this.shift;
  }

  /** Slots (a power of two) that hold `rows` n-grams without growing. */
  static slotsFor(rows: number): number {
    let slots = 16;
    while (((slots * 5) >>> 3) < rows) slots *= 2;
    return slots;
  }

  /** Bytes held by the table's arrays (what --memory-mb budgets). */
  get bytes(): number {
    return this.slots.byteLength;
  }

  /**
   * The most bytes the table holds while `rows` more distinct n-grams are added (an upper bound:
   * some may already be stored). Growing keeps the old arrays until the new ones are filled.
   */
  peakBytes(rows: number): number {
    if (this.size + rows <= this.limit) return this.bytes;
    return this.bytes + NgramTable.slotsFor(this.size + rows) * this.stride * 4;
  }

  /** Grows now, if need be, to hold `rows` more n-grams: growing a smaller table is cheaper. */
  reserve(rows: number): void {
    if (this.size + rows > this.limit) this.grow(NgramTable.slotsFor(this.size + rows));
  }

  /**
   * Adds `amount` to the n-gram `source[start .. start+n)`, whose ngramHash is `hash`.
   * Written as one flat loop: this is the count stage's hot path.
   */
  add(source: Int32Array, start: number, hash: number, amount: number): void {
    const n = this.order;
    const stride = this.stride;
    const slots = this.slots;
    // A hash equal to EMPTY is stored (and placed) as 1: drain() hands back the stored hash.
    const mark = hash === EMPTY ? 1 : hash;
    let slot = this.index(mark);
    for (;;) {
      const base = slot * stride;
      const stored = slots[base];
      if (stored === EMPTY) break;
      if (stored === mark) {
        let k = 0;
        while (k < n && slots[base + 2 + k] === source[start + k]) k++;
        if (k === n) {
          slots[base + 1] += amount;
          this.total += amount;
          return;
        }
      }
      slot = (slot + 1) & this.mask;
    }
    const base = slot * stride;
    slots[base] = mark;
    slots[base + 1] = amount;
    for (let k = 0; k < n; k++) slots[base + 2 + k] = source[start + k];
    this.total += amount;
    if (++this.size > this.limit) this.grow((this.mask + 1) * 2);
  }

  /** Calls `visit(keys, offset, count)` for each stored n-gram; keys[offset .. offset+n) is its key. */
  forEach(visit: (keys: Int32Array, offset: number, count: number) => void): void {
    const { slots, stride } = this;
    for (let base = 0; base < slots.length; base += stride) {
      if (slots[base] !== EMPTY) visit(slots, base + 2, slots[base + 1]);
    }
  }

  /** Forgets every n-gram, keeping the arrays. */
  clear(): void {
    this.slots.fill(EMPTY);
    this.size = 0;
    this.total = 0;
  }

  /** Indices of the occupied slots, ascending. */
  occupied(): Int32Array {
    const rows = new Int32Array(this.size);
    const { slots, stride } = this;
    for (let slot = 0, row = 0; row < rows.length; slot++) if (slots[slot * stride] !== EMPTY) rows[row++] = slot;
    return rows;
  }

  /**
   * Moves the stored n-grams into keys[out*n ..], counts[out ..] and hashes[out ..] (slot order, so
   * ascending hashes when the table was filled by one radix bucket), leaving the table
   * empty but its arrays allocated. Returns `out` plus the rows moved. One pass, and unlike clear()
   * it writes only the occupied slots.
   */
  drain(keys: Int32Array, counts: Float64Array, hashes: Int32Array, out: number): number {
    const { order: n, stride, slots } = this;
    let k = out * n;
    for (let base = 0, left = this.size; left > 0; base += stride) {
      if (slots[base] === EMPTY) continue;
      for (let i = 2; i < n + 2; i++) keys[k++] = slots[base + i];
      hashes[out] = slots[base];
      counts[out++] = slots[base + 1];
      slots[base] = EMPTY;
      left--;
    }
    this.size = 0;
    this.total = 0;
    return out;
  }

  /** Rehashes into `size` slots (a power of two, more than now). */
  private grow(size: number): void {
    const { slots, stride } = this;
    this.slots = new Int32Array(size * stride);
    this.mask = size - 1;
    this.limit = (size * 5) >>> 3;
    this.shift = 32 - Math.log2(size);
    for (let from = 0; from < slots.length; from += stride) {
      if (slots[from] === EMPTY) continue;
      let slot = this.index(slots[from]);
      while (this.slots[slot * stride] !== EMPTY) slot = (slot + 1) & this.mask;
      const to = slot * stride;
      for (let k = 0; k < stride; k++) this.slots[to + k] = slots[from + k];
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

  /** Forgets every count, keeping the array. */
  clear(): void {
    this.counts.fill(0, 0, this.size);
    this.size = 0;
    this.total = 0;
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
