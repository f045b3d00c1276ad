/**
 * The write phase, one job per table of the runs (ngram2..N, sentence2..N; self-contained like the
 * others: any thread or process that can read the run directory can run it): the table's reduced
 * partitions, each sorted by key, merged by key into a database file of its own,
 * `count-runs/ngram-<n>.sqlite` or `sentence-<n>.sqlite` (storage openNgramFile), and `ngramN`
 * indexed by count there. The main thread then copies each file into the empty table of
 * lmpipe.sqlite in one transaction (storage copyNgrams), which SQLite does record by record without
 * decoding or sorting again.
 *
 * Why this shape (measured on 2.9M trigram rows, CPU seconds, 2 busy cores): SQLite has one writer
 * per file, and inserting in key order (0.82 s: rows append to the b-tree) plus building the
 * by-count index (0.80 s) is the bulk of the stage's serial work. Building each order in its own
 * file lets the orders go in parallel; the copy into the run database costs 0.64 s for table and
 * index together. Slower: inserting hash partitions one after another (they touch the whole
 * tree), creating the index before the rows (3.9x the insert), and INSERT ... SELECT into a table
 * that is not empty (1.24 s without an index: SQLite then decodes and checks every row).
 */
import { renameSync, rmSync } from 'node:fs';
import type { PoolJob } from '../../lib/workers.ts';
import { indexNgrams, insertNgrams, openNgramFile } from '../../storage/counts.ts';
import { compareKeys } from './_sort.ts';
import { PartReader, partPath, runTables, tablePath, type KeyedRows } from './_runfile.ts';

export interface BuildJob extends PoolJob {
  /** The table (its index in runTables(order)). */
  index: number;
  /** The run directory. */
  path: string;
  partitions: number;
  order: number;
  /**
   * SQLite's page cache for the file, KiB. It also bounds the sorter that builds the count index,
   * which holds as much again before it spills to a temporary file: a build job holds about twice this.
   */
  cacheKib: number;
}

export interface BuildResult {
  table: number;
  rows: number;
}

/** Rows held in memory across all partitions while merging (about 20 MB of trigrams), and rows per insert batch. */
const BUFFERED_ROWS = 1 << 20;
const BATCH_ROWS = 1 << 16;

/** Builds table t's file from its partitions (under a temporary name, then renamed). */
export function buildTable(job: BuildJob): BuildResult {
  const table = runTables(job.order)[job.index];
  const path = tablePath(job.path, table);
  const temporary = `${path}.tmp`;
  rmSync(temporary, { force: true });
  const db = openNgramFile(temporary, table);
  let rows = 0;
  try {
    db.exec(`PRAGMA cache_size = -${Math.round(job.cacheKib)}`);
    db.transaction(() => {
      for (const batch of mergePartitions(job.path, job.index, table.n, job.partitions)) {
        insertNgrams(db, table, batch);
        rows += batch.counts.length;
      }
    })();
    if (table.name === 'ngram') indexNgrams(db, table.n);
  } finally {
    db.close();
  }
  renameSync(temporary, path);
  return { table: job.index, rows };
}

/**
 * The rows of table t (n ids each) of partitions 0..partitions-1, merged by key, in batches (views
 * of one buffer: each is valid until the next).
 */
export function* mergePartitions(runs: string, t: number, n: number, partitions: number): Generator<KeyedRows> {
  const readers = Array.from({ length: partitions }, (_, p) => new PartReader(partPath(runs, p)));
  const chunkRows = Math.max(4096, Math.floor(BUFFERED_ROWS / partitions));
  try {
    const next = new Array<number>(partitions).fill(0);
    const chunks: KeyedRows[] = [];
    const chunkStart = new Array<number>(partitions).fill(0);
    const load = (p: number) => {
      chunkStart[p] = next[p];
      chunks[p] = readers[p].read(t, next[p], Math.min(chunkRows, readers[p].rows[t] - next[p]));
    };
    // a before b when a's next key is smaller.
    const before = (a: number, b: number) =>
      compareKeys(chunks[a].keys, (next[a] - chunkStart[a]) * n, chunks[b].keys, (next[b] - chunkStart[b]) * n, n) < 0;
    const heap: number[] = [];
    for (let p = 0; p < partitions; p++) {
      if (readers[p].rows[t] === 0) continue;
      load(p);
      heapPush(heap, p, before);
    }
    const batch: KeyedRows = { keys: new Int32Array(BATCH_ROWS * n), counts: new Float64Array(BATCH_ROWS) };
    let filled = 0;
    while (heap.length > 0) {
      const p = heap[0];
      const at = next[p] - chunkStart[p];
      const keys = chunks[p].keys;
      for (let k = 0; k < n; k++) batch.keys[filled * n + k] = keys[at * n + k];
      batch.counts[filled++] = chunks[p].counts[at];
      next[p]++;
      if (next[p] === readers[p].rows[t]) heapPop(heap, before);
      else {
        if (next[p] - chunkStart[p] === chunks[p].counts.length) load(p);
        heapSiftDown(heap, 0, before);
      }
      if (filled === BATCH_ROWS) {
        yield batch;
        filled = 0;
      }
    }
    if (filled > 0) yield { keys: batch.keys.subarray(0, filled * n), counts: batch.counts.subarray(0, filled) };
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
