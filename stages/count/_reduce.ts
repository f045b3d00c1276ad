/**
 * The reduce job: one hash partition of every shard's run, merged into exact counts sorted by key,
 * for each table of the run (ngram2..N, sentence2..N).
 * Self-contained (a run directory, the partition, P, the number of shards), so any thread or process
 * that can read the run directory can run it; it writes `part-<p>.bin` and returns its row counts.
 *
 * Per order, the partition's sections of the runs (each sorted by unsigned hash) are k-way merged
 * with a binary heap on their head hashes. Rows with the same hash are the same n-gram unless two
 * n-grams collide on 32 bits (thousands of pairs among tens of millions): within a hash, rows are
 * matched by key, so a collision gives two rows, never a sum. The merged rows are then sorted by key
 * (token ids), the SQLite primary key order the writer needs.
 */
import type { PoolJob } from '../../lib/workers.ts';
import { compareKeys, sortByKey } from './_sort.ts';
import { partPath, RunReader, runPath, runTables, writePart, type KeyedRows } from './_runfile.ts';

export interface ReduceJob extends PoolJob {
  /** The partition. */
  index: number;
  /** The run directory. */
  path: string;
  partitions: number;
  /** Runs shard-0 .. shard-(shards-1) are read. */
  shards: number;
  order: number;
}

export interface ReduceResult {
  partition: number;
  /** Rows written per table (index t of runTables). */
  rows: number[];
}

export function reducePartition(job: ReduceJob): ReduceResult {
  const readers: RunReader[] = [];
  try {
    for (let shard = 0; shard < job.shards; shard++) readers.push(new RunReader(runPath(job.path, shard)));
    const reduced: KeyedRows[] = [];
    const rows: number[] = [];
    runTables(job.order).forEach(({ n }, t) => {
      reduced[t] = reduceSections(readers.map((reader) => reader.section(t, job.index, job.partitions)), n);
      rows[t] = reduced[t].counts.length;
    });
    writePart(partPath(job.path, job.index), job.order, reduced);
    return { partition: job.index, rows };
  } finally {
    for (const reader of readers) reader.close();
  }
}

/** Merges sections of order-n rows ([hash, count, w1..wn], each sorted by unsigned hash). */
export function reduceSections(sections: Int32Array[], n: number): KeyedRows {
  const stride = n + 2;
  const total = sections.reduce((sum, section) => sum + section.length / stride, 0);
  const keys = new Int32Array(total * n);
  const counts = new Float64Array(total);
  let out = 0;
  const heap = new MinHeap(sections.length);
  const at = new Int32Array(sections.length);
  sections.forEach((section, s) => section.length > 0 && heap.push(s, section[0] >>> 0));
  while (heap.size > 0) {
    const hash = heap.topKey;
    const group = out;
    while (heap.size > 0 && heap.topKey === hash) {
      const s = heap.top;
      const section = sections[s];
      let row = at[s];
      for (; row < section.length && section[row] >>> 0 === hash; row += stride) {
        // The rows with this hash so far: nearly always none or the same n-gram.
        let match = group;
        while (match < out && compareKeys(keys, match * n, section, row + 2, n) !== 0) match++;
        if (match === out) {
          for (let k = 0; k < n; k++) keys[out * n + k] = section[row + 2 + k];
          counts[out++] = 0;
        }
        counts[match] += section[row + 1];
      }
      at[s] = row;
      if (row < section.length) heap.replaceTop(section[row] >>> 0);
      else heap.pop();
    }
  }
  const order = sortByKey(keys, n, out);
  const sorted: KeyedRows = { keys: new Int32Array(out * n), counts: new Float64Array(out) };
  for (let i = 0; i < out; i++) {
    const row = order[i];
    for (let k = 0; k < n; k++) sorted.keys[i * n + k] = keys[row * n + k];
    sorted.counts[i] = counts[row];
  }
  return sorted;
}

/** A binary min-heap of items 0..capacity-1 keyed by numbers: the k-way merges' frontier. */
export class MinHeap {
  private readonly items: Int32Array;
  private readonly keys: Float64Array;
  size = 0;

  constructor(capacity: number) {
    this.items = new Int32Array(capacity);
    this.keys = new Float64Array(capacity);
  }

  get top(): number {
    return this.items[0];
  }

  get topKey(): number {
    return this.keys[0];
  }

  push(item: number, key: number): void {
    let at = this.size++;
    while (at > 0) {
      const parent = (at - 1) >> 1;
      if (this.keys[parent] <= key) break;
      this.items[at] = this.items[parent];
      this.keys[at] = this.keys[parent];
      at = parent;
    }
    this.items[at] = item;
    this.keys[at] = key;
  }

  pop(): void {
    const last = --this.size;
    if (last > 0) this.siftDown(this.items[last], this.keys[last]);
  }

  /** Gives the top item a new key (its next row) and restores the order. */
  replaceTop(key: number): void {
    this.siftDown(this.items[0], key);
  }

  private siftDown(item: number, key: number): void {
    const { items, keys, size } = this;
    let at = 0;
    for (;;) {
      let child = 2 * at + 1;
      if (child >= size) break;
      if (child + 1 < size && keys[child + 1] < keys[child]) child++;
      if (keys[child] >= key) break;
      items[at] = items[child];
      keys[at] = keys[child];
      at = child;
    }
    items[at] = item;
    keys[at] = key;
  }
}
