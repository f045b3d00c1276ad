/**
 * Counts one order of n-grams in a shard's token stream: the worker's hot path.
 *
 * One hash table as big as a shard's distinct n-grams (several MB for word trigrams) misses the
 * caches on nearly every probe, and two workers probing theirs at once fight over the one L3 they
 * share: measured on 2 cores, two such workers counted only 1.5x faster than one. So a big order is
 * counted by radix partitioning, the way databases aggregate:
 *   1. hash every n-gram, reading the stream in order, and histogram the hashes' top bits;
 *   2. scatter each n-gram (its hash, then its ids) into its bucket: sequential writes;
 *   3. count each bucket in a table sized for one bucket, which stays in L2, then drain it.
 * An order with few distinct n-grams (characters) fits L2 whole; it skips the scatter and counts
 * straight from the stream. Either way the rows are the same (n-gram, count) multiset; only their
 * order differs, and nothing downstream depends on it.
 *
 * An n-gram never reaches back past the start of its document: `documentStarts` lists the stream
 * positions where documents begin (the tokens before the first belong to a document that began in
 * an earlier shard). Hashes come from the tokens' text (`tokenHashes[id]`, see ngramHash), and each
 * row goes out with its hash: the merger adds it to the global table without rehashing, and since
 * the rows leave the buckets sorted by their hashes' top bits, in nearly ascending slot order.
 */
import { HASH_SEED, hashFinish, hashStep, NgramTable, ngramHash } from './_table.ts';
import { bufferPool } from '../../lib/buffer-pool.ts';

/**
 * Largest table, in bytes, counted without partitioning: about one core's L2 cache. Partitioning
 * costs a scatter of every row, so it pays only when the table would miss the caches often.
 */
const CACHE_BYTES = 1 << 20;
/** Bucket tables are sized for a quarter of that: a bucket's rows are not all distinct. */
const BUCKET_BYTES = CACHE_BYTES / 4;
const MAX_BUCKET_BITS = 10;

/**
 * Scratch memory reused from shard to shard in one thread (a worker counts one shard at a time):
 * fresh memory costs a page fault per 4 KiB, several ms per MB on some virtual machines.
 */
const scratch = {
  hashes: new Int32Array(0),
  buckets: new Int32Array(0),
  keys: new Int32Array(0),
  counts: new Float64Array(0),
  rowHashes: new Int32Array(0),
  tables: [] as NgramTable[],
  /** Distinct n-grams per order in the last shard this thread counted: the next one's estimate. */
  lastDistinct: [] as number[],
};

export interface NgramCounts {
  /** Row r's ids are keys[r*n .. r*n+n), its count counts[r], its ngramHash hashes[r]. */
  keys: Int32Array;
  counts: Float64Array;
  hashes: Int32Array;
}

export interface RadixOptions {
  /** Count orders 2..order (at most 5). */
  order: number;
  /** tokenHash of each id's text: the hashes the rows carry (see ngramHash). */
  tokenHashes: Int32Array;
  /**
   * Distinct n-grams of order n expected, which decides between counting directly and
   * partitioning. Default: as many as in the last shard this thread counted; for the first, as many
   * as there are n-grams. Never more than vocabulary^n (characters: few).
   */
  expectedDistinct?(n: number): number;
}

/**
 * Counts every n-gram of orders 2..order in `stream` that lies inside one document. Returns the
 * rows of order n at index n.
 */
export function countNgrams(stream: Int32Array, documentStarts: Int32Array, options: RadixOptions): NgramCounts[] {
  const { order, tokenHashes } = options;
  const results: NgramCounts[] = [];
  const direct: boolean[] = [];
  /** Per order: its n-grams, and the bytes a table of its expected distinct n-grams takes. */
  const rows: number[] = [];
  const tableBytes: number[] = [];
  let longestDirect = 1;
  for (let n = 2; n <= order; n++) {
    const table = (scratch.tables[n] ??= new NgramTable(n, 1 << 10));
    rows[n] = countRows(stream, documentStarts, n);
    const expected = options.expectedDistinct?.(n) ?? scratch.lastDistinct[n] ?? rows[n];
    tableBytes[n] = NgramTable.slotsFor(Math.min(rows[n], tokenHashes.length ** n, expected)) * table.stride * 4;
    direct[n] = tableBytes[n] <= CACHE_BYTES;
    if (direct[n]) longestDirect = n;
  }
  if (longestDirect >= 2) countDirect(stream, documentStarts, { longest: longestDirect, direct, tokenHashes });
  for (let n = 2; n <= order; n++) {
    const out = direct[n]
      ? drainInto(scratch.tables[n], 0)
      : countPartitioned(stream, documentStarts, { order: n, tokenHashes, rows: rows[n], tableBytes: tableBytes[n] });
    scratch.lastDistinct[n] = out;
    results[n] = takeRows(out, n);
  }
  return results;
}

/**
 * Counts the orders marked `direct` straight from the stream into their tables, in one pass: the
 * n-grams ending at one position share their hashing (walked back from the last token).
 */
function countDirect(stream: Int32Array, documentStarts: Int32Array, options: { longest: number; direct: boolean[]; tokenHashes: Int32Array }): void {
  const { longest, direct, tokenHashes } = options;
  const tables = scratch.tables;
  for (let n = 2; n <= longest; n++) if (direct[n]) tables[n].skip = 0;
  for (let d = -1; d < documentStarts.length; d++) {
    const [from, to] = documentRange(stream, documentStarts, d);
    for (let p = from; p < to; p++) {
      let state = hashStep(HASH_SEED, tokenHashes[stream[p]]);
      const reach = Math.min(longest, p - from + 1);
      for (let n = 2; n <= reach; n++) {
        state = hashStep(state, tokenHashes[stream[p - n + 1]]);
        if (direct[n]) tables[n].add(stream, p - n + 1, hashFinish(state), 1);
      }
    }
  }
}

/** Counts one order by radix partitioning (passes 1 to 3 above); returns the rows drained. */
function countPartitioned(
  stream: Int32Array, documentStarts: Int32Array, options: { order: number; tokenHashes: Int32Array; rows: number; tableBytes: number },
): number {
  const { order: n, tokenHashes, rows, tableBytes } = options;
  const table = scratch.tables[n];
  const bits = Math.max(1, Math.min(MAX_BUCKET_BITS, Math.ceil(Math.log2(tableBytes / BUCKET_BYTES))));
  const ends = scatter(stream, documentStarts, { order: n, tokenHashes, rows, bits });
  table.skip = bits;
  const buckets = scratch.buckets;
  const stride = n + 1;
  let out = 0;
  for (let bucket = 0, from = 0; bucket < ends.length; from = ends[bucket++]) {
    for (let at = from * stride, end = ends[bucket] * stride; at < end; at += stride) table.add(buckets, at + 1, buckets[at], 1);
    out = drainInto(table, out);
  }
  return out;
}

/** The first `out` rows of the scratch, copied into pool buffers: the main thread can send them back. */
function takeRows(out: number, n: number): NgramCounts {
  const keys = bufferPool.int32(out * n);
  keys.set(scratch.keys.subarray(0, out * n));
  const counts = bufferPool.float64(out);
  counts.set(scratch.counts.subarray(0, out));
  const hashes = bufferPool.int32(out);
  hashes.set(scratch.rowHashes.subarray(0, out));
  return { keys, counts, hashes };
}

/** The n-grams inside documents. */
function countRows(stream: Int32Array, documentStarts: Int32Array, n: number): number {
  let rows = 0;
  for (let d = -1; d < documentStarts.length; d++) {
    const [from, to] = documentRange(stream, documentStarts, d);
    rows += Math.max(0, to - from - n + 1);
  }
  return rows;
}

/** Stream positions [from, to) of document d; d = -1 is the piece before the first start. */
function documentRange(stream: Int32Array, documentStarts: Int32Array, d: number): [number, number] {
  return [d < 0 ? 0 : documentStarts[d], d + 1 < documentStarts.length ? documentStarts[d + 1] : stream.length];
}

/**
 * Passes 1 and 2: hashes every n-gram, then writes it as [hash, ids...] into bucket
 * `hash >>> (32 - bits)` of scratch.buckets (a table's slot comes from the low bits, so the two stay
 * independent). Returns each bucket's end, in rows.
 */
function scatter(stream: Int32Array, documentStarts: Int32Array, options: { order: number; tokenHashes: Int32Array; rows: number; bits: number }): Int32Array {
  const { order: n, tokenHashes, rows, bits } = options;
  const stride = n + 1;
  if (scratch.hashes.length < rows) scratch.hashes = new Int32Array(grown(rows));
  if (scratch.buckets.length < rows * stride) scratch.buckets = new Int32Array(grown(rows * stride));
  const { hashes, buckets } = scratch;
  const shift = 32 - bits;
  const ends = new Int32Array(1 << bits);
  let row = 0;
  for (let d = -1; d < documentStarts.length; d++) {
    const [from, to] = documentRange(stream, documentStarts, d);
    for (let start = from; start + n <= to; start++) {
      const hash = ngramHash(stream, start, n, tokenHashes);
      hashes[row++] = hash;
      ends[hash >>> shift]++;
    }
  }
  for (let bucket = 1; bucket < ends.length; bucket++) ends[bucket] += ends[bucket - 1];
  const next = new Int32Array(ends.length);
  for (let bucket = 1; bucket < ends.length; bucket++) next[bucket] = ends[bucket - 1] * stride;
  row = 0;
  for (let d = -1; d < documentStarts.length; d++) {
    const [from, to] = documentRange(stream, documentStarts, d);
    for (let start = from; start + n <= to; start++) {
      const hash = hashes[row++];
      let at = next[hash >>> shift];
      next[hash >>> shift] = at + stride;
      buckets[at++] = hash;
      for (let k = 0; k < n; k++) buckets[at++] = stream[start + k];
    }
  }
  return ends;
}

/** Moves the table's rows to scratch.keys/counts/rowHashes from row `out` on, emptying the table. */
function drainInto(table: NgramTable, out: number): number {
  const n = table.order;
  const needed = out + table.size;
  if (scratch.counts.length < needed) {
    const counts = new Float64Array(grown(needed));
    counts.set(scratch.counts.subarray(0, out));
    scratch.counts = counts;
    const hashes = new Int32Array(counts.length);
    hashes.set(scratch.rowHashes.subarray(0, out));
    scratch.rowHashes = hashes;
  }
  if (scratch.keys.length < needed * n) {
    const keys = new Int32Array(grown(needed * n));
    keys.set(scratch.keys.subarray(0, out * n));
    scratch.keys = keys;
  }
  return table.drain(scratch.keys, scratch.counts, scratch.rowHashes, out);
}

/** Room for `length` and a quarter more, so a slightly bigger shard does not reallocate. */
function grown(length: number): number {
  return Math.ceil(length * 1.25) + 1024;
}
