/**
 * The count stage's temporary files, in `DIR/count-runs/`: compact binary, little-endian (the
 * platform's typed-array order; every machine lmpipe runs on is little-endian), written to a
 * temporary name and renamed, so a file that exists is whole.
 *
 * A run and a part hold the same tables, in this order (`runTables(N)`): ngram2..ngramN (the d2l
 * counts), then sentence2..sentenceN (Kneser-Ney's counts, ids < 0 for the markers); table t of
 * order n has n ids per row.
 *
 * `shard-<i>.run`, one shard's sorted run (written by the count phase, read by reduce jobs):
 *   Int32 header: MAGIC_RUN, order N, the rows of each table, then for each table BUCKETS + 1
 *   offsets (the row where each 10-bit hash prefix starts, then the row count);
 *   then for each table its rows, Int32 [hash, count, w1..wn], sorted by unsigned hash.
 * `part-<p>.bin`, partition p reduced (written by a reduce job, read by the writer):
 *   Int32 header: MAGIC_PART, order N, the rows of each table, padded to 8 bytes;
 *   then for each table its keys (Int32, n per row, padded to 8 bytes) and counts (Float64),
 *   sorted by key.
 * Partition p of P (a power of two up to BUCKETS) is the hash prefixes [p, p+1) * BUCKETS / P: a
 * contiguous section of every run.
 */
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { writeFileAtomic } from '../../lib/checkpoint.ts';
import type { CountTable, KeyedRows } from '../../storage/counts.ts';

export type { KeyedRows };

export const BUCKET_BITS = 10;
export const BUCKETS = 1 << BUCKET_BITS;
const MAGIC_RUN = 0x32524d4c; // 'LMR2'
const MAGIC_PART = 0x32504d4c; // 'LMP2'

/** One table of a run: its SQLite table is `${name}${n}`. */
export type RunTable = CountTable;

/** The tables of a run of order N, in file order (index t is "table t" everywhere in count-runs/). */
export function runTables(order: number): RunTable[] {
  const orders = Array.from({ length: Math.max(0, order - 1) }, (_, i) => i + 2);
  return [...orders.map((n): RunTable => ({ name: 'ngram', n })), ...orders.map((n): RunTable => ({ name: 'sentence', n }))];
}

export const runPath = (runs: string, shard: number) => join(runs, `shard-${String(shard).padStart(6, '0')}.run`);
export const partPath = (runs: string, partition: number) => join(runs, `part-${String(partition).padStart(4, '0')}.bin`);
/** Table t's database file, built by the write phase. */
export const tablePath = (runs: string, { name, n }: RunTable) => join(runs, `${name}-${n}.sqlite`);

/**
 * Makes `runs` hold only what a resume may reuse: the runs of shards below `shards`, the parts in
 * `parts` and the database files of `tables`; temporary files of a killed write and the rest go.
 */
export function pruneRuns(runs: string, keep: { shards: number; parts: ReadonlySet<number>; tables: readonly RunTable[] }): void {
  mkdirSync(runs, { recursive: true });
  const tables = new Set(keep.tables.map((table) => basename(tablePath(runs, table))));
  for (const name of readdirSync(runs)) {
    const run = /^shard-(\d+)\.run$/.exec(name);
    const part = /^part-(\d+)\.bin$/.exec(name);
    if ((run && Number(run[1]) < keep.shards) || (part && keep.parts.has(Number(part[1]))) || tables.has(name)) continue;
    rmSync(join(runs, name), { force: true });
  }
}

/**
 * Writes one shard's run. `rows[t]` holds table t's rows (runTables), Int32 [hash, count, w1..wn],
 * sorted by unsigned hash.
 */
export function writeRun(path: string, order: number, rows: Int32Array[]): void {
  const tables = runTables(order);
  const header = new Int32Array(2 + tables.length * (BUCKETS + 2));
  header[0] = MAGIC_RUN;
  header[1] = order;
  const data: Uint8Array[] = [];
  tables.forEach(({ name, n }, t) => {
    const stride = n + 2;
    const count = rows[t].length / stride;
    header[2 + t] = count;
    const offsets = header.subarray(2 + tables.length + t * (BUCKETS + 1), 2 + tables.length + (t + 1) * (BUCKETS + 1));
    let row = 0;
    for (let bucket = 0; bucket < BUCKETS; bucket++) {
      offsets[bucket] = row;
      while (row < count && rows[t][row * stride] >>> (32 - BUCKET_BITS) === bucket) row++;
    }
    offsets[BUCKETS] = count;
    if (row !== count) throw new RangeError(`Expected the rows of ${name}${n} sorted by hash in ${path}`);
    data.push(bytesOf(rows[t]));
  });
  writeFileAtomic(path, [bytesOf(header), ...data], { durable: false, crashPoint: 'spill' });
}

/** One run, open for reading sections: `section(t, p, P)` is partition p's rows of table t. */
export class RunReader {
  private readonly fd: number;
  private readonly tables: RunTable[];
  private readonly header: Int32Array;

  constructor(readonly path: string) {
    this.fd = openSync(path, 'r');
    const start = readInts(this.fd, 0, 2);
    if (start[0] !== MAGIC_RUN) throw new RangeError(`Expected a count run in ${path}`);
    this.tables = runTables(start[1]);
    this.header = readInts(this.fd, 0, 2 + this.tables.length * (BUCKETS + 2));
  }

  section(t: number, partition: number, partitions: number): Int32Array {
    const offsets = this.header.subarray(2 + this.tables.length + t * (BUCKETS + 1));
    const width = BUCKETS / partitions;
    const from = offsets[partition * width];
    const to = offsets[(partition + 1) * width];
    let at = this.header.length * 4;
    for (let u = 0; u < t; u++) at += this.header[2 + u] * (this.tables[u].n + 2) * 4;
    const stride = this.tables[t].n + 2;
    return readInts(this.fd, at + from * stride * 4, (to - from) * stride);
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** Writes partition p's reduced rows; `rows[t]` holds table t's (runTables). */
export function writePart(path: string, order: number, rows: KeyedRows[]): void {
  const header = new Int32Array(headerInts(order));
  header[0] = MAGIC_PART;
  header[1] = order;
  const chunks: Uint8Array[] = [bytesOf(header)];
  runTables(order).forEach((_, t) => {
    header[2 + t] = rows[t].counts.length;
    chunks.push(bytesOf(rows[t].keys));
    if (rows[t].keys.length % 2 === 1) chunks.push(new Uint8Array(4));
    chunks.push(bytesOf(rows[t].counts));
  });
  writeFileAtomic(path, chunks, { durable: false, crashPoint: 'reduce' });
}

/** One reduced partition, open for reading rows of one table in pieces. */
export class PartReader {
  private readonly fd: number;
  private readonly tables: RunTable[];
  /** Rows of each table. */
  readonly rows: number[] = [];
  private readonly starts: number[] = [];

  constructor(readonly path: string) {
    if (!existsSync(path)) throw new RangeError(`Expected a reduced partition at ${path}`);
    this.fd = openSync(path, 'r');
    const start = readInts(this.fd, 0, 2);
    if (start[0] !== MAGIC_PART) throw new RangeError(`Expected a reduced partition in ${path}`);
    const order = start[1];
    this.tables = runTables(order);
    const header = readInts(this.fd, 0, headerInts(order));
    let at = header.length * 4;
    this.tables.forEach(({ n }, t) => {
      this.rows[t] = header[2 + t];
      this.starts[t] = at;
      at += Math.ceil((header[2 + t] * n) / 2) * 8 + header[2 + t] * 8;
    });
  }

  /** Rows [from, from + count) of table t. */
  read(t: number, from: number, count: number): KeyedRows {
    const n = this.tables[t].n;
    const keysAt = this.starts[t];
    const countsAt = keysAt + Math.ceil((this.rows[t] * n) / 2) * 8;
    const keys = readInts(this.fd, keysAt + from * n * 4, count * n);
    const bytes = new Uint8Array(count * 8);
    readFully(this.fd, bytes, countsAt + from * 8);
    return { keys, counts: new Float64Array(bytes.buffer) };
  }

  close(): void {
    closeSync(this.fd);
  }
}

function headerInts(order: number): number {
  return Math.ceil((2 + runTables(order).length) / 2) * 2;
}

function bytesOf(array: Int32Array | Float64Array): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

function readInts(fd: number, position: number, count: number): Int32Array {
  const bytes = new Uint8Array(count * 4);
  readFully(fd, bytes, position);
  return new Int32Array(bytes.buffer);
}

function readFully(fd: number, bytes: Uint8Array, position: number): void {
  for (let done = 0; done < bytes.length;) {
    const read = readSync(fd, bytes, done, bytes.length - done, position + done);
    if (read === 0) throw new RangeError(`Expected ${bytes.length} bytes at ${position}, the file ends first`);
    done += read;
  }
}
