/**
 * Typed-array n-gram counters for the count stage: no JS Map and no string keys on the hot path.
 *
 * `NgramTable` is an open-addressing hash table (linear probing) for one order n >= 2. Slot s holds
 * its hash and key side by side in `slots` (so a probe reads one cache line, rejects most
 * mismatches by the hash alone, and growing never rehashes) and its count in `counts[s]`. It
 * doubles at 5/8 load.
 *
 * `UnigramCounts` counts order 1: token ids are dense (first-occurrence order), so a plain array
 * indexed by id is both smaller and faster than a hash table.
 *
 * Hashes are computed by the caller, one id at a time, walking back from the n-gram's last token
 * (`hashStep`), so that all orders ending at one position share the work; `hashFinish` mixes the
 * running state into a table hash.
 */

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

/** murmur3's finalizer: spreads every input bit over the low bits the table masks with. */
export function hashFinish(state: number): number {
  state ^= state >>> 16;
  state = Math.imul(state, 0x85ebca6b);
  state ^= state >>> 13;
  state = Math.imul(state, 0xc2b2ae35);
  return state ^ (state >>> 16);
}

export const HASH_SEED = 0x2545f491;

/** addAll's row order, reused across calls (one thread runs one addAll at a time). */
let slotOrder = new Int32Array(0);

/** The table hash of `ids[start .. start+n)`; the same value the counting loops compute. */
export function hashKey(ids: ArrayLike<number>, start: number, n: number): number {
  let state = HASH_SEED;
  for (let k = n - 1; k >= 0; k--) state = hashStep(state, ids[start + k]);
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

  constructor(order: number, capacity = INITIAL_CAPACITY) {
    if (!Number.isInteger(order) || order < 2) throw new RangeError(`Expected an order of at least 2, got \`${order}\``);
    this.order = order;
    this.stride = order + 2;
    const slots = NgramTable.slotsFor(capacity);
    this.slots = new Int32Array(slots * this.stride);
    this.mask = slots - 1;
    this.limit = (slots * 5) >>> 3;
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

  /** Slots in the table. */
  get capacity(): number {
    return this.mask + 1;
  }

  /**
   * The most bytes the table holds while `rows` more distinct n-grams are added (an upper bound:
   * some may already be stored). Growing keeps the old arrays until the new ones are filled.
   */
  peakBytes(rows: number): number {
    if (this.size + rows <= this.limit) return this.bytes;
    return this.bytes + NgramTable.slotsFor(this.size + rows) * this.stride * 4;
  }

  /**
   * Adds `amount` to the n-gram `source[start .. start+n)`, whose hashKey is `hash`.
   * Written as one flat loop: this is the count stage's hot path.
   */
  add(source: Int32Array, start: number, hash: number, amount: number): void {
    const n = this.order;
    const stride = this.stride;
    const slots = this.slots;
    const mark = hash === EMPTY ? 1 : hash;
    let slot = hash & this.mask;
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
    if (++this.size > this.limit) this.grow();
  }

  /**
   * Adds many n-grams: row r is keys[r*n .. r*n+n) with hash hashes[r] and count counts[r]. Grows
   * once up front, then inserts in slot order: a big table is then walked forward, not hit at
   * random, which is several times faster once it outgrows the caches (the merger's tables do).
   */
  addAll(keys: Int32Array, hashes: Int32Array, counts: Float64Array): void {
    const rows = counts.length;
    while (this.size + rows > this.limit) this.grow();
    const bits = Math.log2(this.mask + 1);
    const shift = Math.max(0, bits - 16);
    const starts = new Int32Array((1 << Math.min(bits, 16)) + 1);
    for (let row = 0; row < rows; row++) starts[((hashes[row] & this.mask) >>> shift) + 1]++;
    for (let b = 1; b < starts.length; b++) starts[b] += starts[b - 1];
    if (slotOrder.length < rows) slotOrder = new Int32Array(Math.ceil(rows * 1.25));
    const order = slotOrder;
    for (let row = 0; row < rows; row++) order[starts[(hashes[row] & this.mask) >>> shift]++] = row;
    for (let i = 0; i < rows; i++) {
      const row = order[i];
      this.add(keys, row * this.order, hashes[row], counts[row]);
    }
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

  /** The stored n-grams packed densely: keys [size * n] and counts [size], in slot order. */
  compact(): { keys: Int32Array; counts: Float64Array } {
    const { order: n, stride, slots } = this;
    const keys = new Int32Array(this.size * n);
    const counts = new Float64Array(this.size);
    for (let base = 0, row = 0, out = 0; row < this.size; base += stride) {
      if (slots[base] === EMPTY) continue;
      for (let k = 2; k < n + 2; k++) keys[out++] = slots[base + k];
      counts[row++] = slots[base + 1];
    }
    return { keys, counts };
  }

  private grow(): void {
    const { slots, stride } = this;
    const size = (this.mask + 1) * 2;
    this.slots = new Int32Array(size * stride);
    this.mask = size - 1;
    this.limit = (size * 5) >>> 3;
    for (let from = 0; from < slots.length; from += stride) {
      if (slots[from] === EMPTY) continue;
      let slot = slots[from] & this.mask;
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
