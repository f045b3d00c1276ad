/**
 * The write phase: the reduced partitions (each sorted by key, stages/count/_reduce.ts) merged by
 * key into ngram2..ngramN. SQLite has one writer per file, so one writer takes every partition's
 * next row in key order: rows in primary-key order append to the WITHOUT ROWID b-tree, which is
 * the cheapest way in (measured on 2.9M trigram rows: inserting the same rows from 4 hash
 * partitions one after another touches the whole tree, and building the by-count index first, or
 * copying per-partition SQLite files with INSERT ... SELECT, cost more CPU than this).
 *
 * Each transaction holds a batch of rows and the cursor (the order, and the rows taken from each
 * partition), so a kill resumes mid-write without writing a row twice.
 */
import type { Database } from '../../storage/driver.ts';
import { insertNgrams, type CountCheckpoint } from '../../storage/counts.ts';
import { compareKeys } from './_sort.ts';
import { PartReader, partPath, type KeyedRows } from './_runfile.ts';

/** Where the writer stands: orders below `order` are written, and `taken[p]` rows of partition p of it. */
export interface WriteCursor {
  order: number;
  taken: number[];
}

export interface WriteOptions {
  order: number;
  partitions: number;
  cursor: WriteCursor;
  /** The checkpoint to commit with the rows up to `cursor`. */
  checkpoint(cursor: WriteCursor): CountCheckpoint;
  /** Rows per transaction. */
  batchRows?: number;
}

/** Rows held in memory across all partitions while merging. */
const BUFFERED_ROWS = 1 << 20;

/**
 * Writes the rest of the partitions from `cursor` on. After each commit it yields the rows written
 * so far (those before `cursor` included) and the rows in all.
 */
export function* writeNgrams(db: Database, runs: string, options: WriteOptions): Generator<{ done: number; total: number }> {
  const { order, partitions, checkpoint, batchRows = 1 << 18 } = options;
  const readers = Array.from({ length: partitions }, (_, p) => new PartReader(partPath(runs, p)));
  const chunkRows = Math.max(4096, Math.floor(BUFFERED_ROWS / partitions));
  const rowsOf = (n: number) => readers.reduce((sum, reader) => sum + reader.rows[n], 0);
  let total = 0;
  let done = options.cursor.taken.reduce((sum, taken) => sum + taken, 0);
  for (let n = 2; n <= order; n++) {
    total += rowsOf(n);
    if (n < options.cursor.order) done += rowsOf(n);
  }
  try {
    for (let n = options.cursor.order; n <= order; n++) {
      const next = n === options.cursor.order ? [...options.cursor.taken] : new Array<number>(partitions).fill(0);
      const chunks: KeyedRows[] = [];
      const chunkStart = new Array<number>(partitions).fill(0);
      const load = (p: number) => {
        chunkStart[p] = next[p];
        chunks[p] = readers[p].read(n, next[p], Math.min(chunkRows, readers[p].rows[n] - next[p]));
      };
      // a before b when a's next key is smaller.
      const before = (a: number, b: number) =>
        compareKeys(chunks[a].keys, (next[a] - chunkStart[a]) * n, chunks[b].keys, (next[b] - chunkStart[b]) * n, n) < 0;
      const heap: number[] = [];
      for (let p = 0; p < partitions; p++) {
        if (next[p] >= readers[p].rows[n]) continue;
        load(p);
        heapPush(heap, p, before);
      }
      const batch: KeyedRows = { keys: new Int32Array(batchRows * n), counts: new Float64Array(batchRows) };
      let filled = 0;
      const commit = (cursor: WriteCursor) => {
        insertNgrams(db, n, { keys: batch.keys.subarray(0, filled * n), counts: batch.counts.subarray(0, filled) }, checkpoint(cursor));
        done += filled;
        filled = 0;
        return { done, total };
      };
      while (heap.length > 0) {
        const p = heap[0];
        const at = next[p] - chunkStart[p];
        batch.keys.set(chunks[p].keys.subarray(at * n, at * n + n), filled * n);
        batch.counts[filled++] = chunks[p].counts[at];
        next[p]++;
        if (next[p] === readers[p].rows[n]) heapPop(heap, before);
        else {
          if (next[p] - chunkStart[p] === chunks[p].counts.length) load(p);
          heapSiftDown(heap, 0, before);
        }
        if (filled === batchRows) yield commit({ order: n, taken: [...next] });
      }
      // The order is done: the last batch moves the cursor on to the next one.
      yield commit({ order: n + 1, taken: new Array<number>(partitions).fill(0) });
    }
  } finally {
    for (const reader of readers) reader.close();
  }
}

function heapPush(heap: number[], item: number, before: (a: number, b: number) => boolean): void {
  let at = heap.push(item) - 1;
  while (at > 0) {
    const parent = (at - 1) >> 1;
    if (!before(heap[at], heap[parent])) break;
    [heap[at], heap[parent]] = [heap[parent], heap[at]];
    at = parent;
  }
}

function heapPop(heap: number[], before: (a: number, b: number) => boolean): void {
  const last = heap.pop()!;
  if (heap.length === 0) return;
  heap[0] = last;
  heapSiftDown(heap, 0, before);
}

function heapSiftDown(heap: number[], at: number, before: (a: number, b: number) => boolean): void {
  for (;;) {
    let child = 2 * at + 1;
    if (child >= heap.length) return;
    if (child + 1 < heap.length && before(heap[child + 1], heap[child])) child++;
    if (!before(heap[child], heap[at])) return;
    [heap[at], heap[child]] = [heap[child], heap[at]];
    at = child;
  }
}
