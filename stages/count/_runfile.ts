/**
 * The count stage's temporary files, in `DIR/count-runs/`: compact binary, little-endian (the
 * platform's typed-array order; every machine lmpipe runs on is little-endian), written to a
 * temporary name and renamed, so a file that exists is whole.
 *
 * `shard-<i>.run`, one shard's sorted run (written by the count phase, read by reduce jobs):
 *   Int32 header: MAGIC_RUN, order N, rows of order 2..N, then for each order 2..N BUCKETS + 1
 *   offsets (the row where each 10-bit hash prefix starts, then the row count);
 *   then for each order n its rows, Int32 [hash, count, w1..wn], sorted by unsigned hash.
 * `part-<p>.bin`, partition p reduced (written by a reduce job, read by the writer):
 *   Int32 header: MAGIC_PART, order N, rows of order 2..N, padded to 8 bytes;
 *   then for each order n its keys (Int32, n per row, padded to 8 bytes) and counts (Float64),
 *   sorted by key.
 * Partition p of P (a power of two up to BUCKETS) is the hash prefixes [p, p+1) * BUCKETS / P: a
 * contiguous section of every run.
 */
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../lib/checkpoint.ts';
import type { KeyedRows } from '../../storage/counts.ts';
import { runPaths } from '../../storage/run-paths.ts';

export type { KeyedRows };

export const BUCKET_BITS = 10;
export const BUCKETS = 1 << BUCKET_BITS;
const MAGIC_RUN = 0x31524d4c; // 'LMR1'
const MAGIC_PART = 0x31504d4c; // 'LMP1'

export const runsDir = (dir: string) => runPaths(dir).countRuns;
export const runPath = (runs: string, shard: number) => join(runs, `shard-${String(shard).padStart(6, '0')}.run`);
export const partPath = (runs: string, partition: number) => join(runs, `part-${String(partition).padStart(4, '0')}.bin`);

/**
 * Makes `runs` hold only what a resume may reuse: the runs of shards below `shards`, the parts in
 * `parts` and the order files in `orders`; temporary files of a killed write and the rest go.
 */
export function pruneRuns(runs: string, keep: { shards: number; parts: ReadonlySet<number>; orders: ReadonlySet<number> }): void {
  mkdirSync(runs, { recursive: true });
  for (const name of readdirSync(runs)) {
    const run = /^shard-(\d+)\.run$/.exec(name);
    const part = /^part-(\d+)\.bin$/.exec(name);
    const order = /^ngram-(\d+)\.sqlite$/.exec(name);
    if ((run && Number(run[1]) < keep.shards) || (part && keep.parts.has(Number(part[1]))) || (order && keep.orders.has(Number(order[1])))) continue;
    rmSync(join(runs, name), { force: true });
  }
}

/**
 * Writes one shard's run. `rows[n]` holds order n's rows, Int32 [hash, count, w1..wn], sorted by
 * unsigned hash.
 */
export function writeRun(path: string, order: number, rows: Int32Array[]): void {
  const header = new Int32Array(2 + (order - 1) * (BUCKETS + 2));
  header[0] = MAGIC_RUN;
  header[1] = order;
  const data: Uint8Array[] = [];
  for (let n = 2; n <= order; n++) {
    const stride = n + 2;
    const count = rows[n].length / stride;
    header[n] = count;
    const offsets = header.subarray(order + 1 + (n - 2) * (BUCKETS + 1), order + 1 + (n - 1) * (BUCKETS + 1));
    let row = 0;
    for (let bucket = 0; bucket < BUCKETS; bucket++) {
      offsets[bucket] = row;
      while (row < count && rows[n][row * stride] >>> (32 - BUCKET_BITS) === bucket) row++;
    }
    offsets[BUCKETS] = count;
    if (row !== count) throw new RangeError(`Expected the rows of order ${n} sorted by hash in ${path}`);
    data.push(bytesOf(rows[n]));
  }
  writeFileAtomic(path, [bytesOf(header), ...data], { durable: false, crashPoint: 'spill' });
}

/** One run, open for reading sections: `section(n, p, P)` is partition p's rows of order n. */
export class RunReader {
  private readonly fd: number;
  private readonly order: number;
  private readonly header: Int32Array;

  constructor(readonly path: string) {
    this.fd = openSync(path, 'r');
    const start = readInts(this.fd, 0, 2);
    if (start[0] !== MAGIC_RUN) throw new RangeError(`Expected a count run in ${path}`);
    this.order = start[1];
    this.header = readInts(this.fd, 0, 2 + (this.order - 1) * (BUCKETS + 2));
  }

  section(n: number, partition: number, partitions: number): Int32Array {
    const offsets = this.header.subarray(this.order + 1 + (n - 2) * (BUCKETS + 1));
    const width = BUCKETS / partitions;
    const from = offsets[partition * width];
    const to = offsets[(partition + 1) * width];
    let at = this.header.length * 4;
    for (let m = 2; m < n; m++) at += this.header[m] * (m + 2) * 4;
    return readInts(this.fd, at + from * (n + 2) * 4, (to - from) * (n + 2));
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** Writes partition p's reduced rows; `rows[n]` holds order n's. */
export function writePart(path: string, order: number, rows: KeyedRows[]): void {
  const header = new Int32Array(headerInts(order));
  header[0] = MAGIC_PART;
  header[1] = order;
  const chunks: Uint8Array[] = [bytesOf(header)];
  for (let n = 2; n <= order; n++) {
    header[n] = rows[n].counts.length;
    chunks.push(bytesOf(rows[n].keys));
    if (rows[n].keys.length % 2 === 1) chunks.push(new Uint8Array(4));
    chunks.push(bytesOf(rows[n].counts));
  }
  writeFileAtomic(path, chunks, { durable: false, crashPoint: 'reduce' });
}

/** One reduced partition, open for reading rows of one order in pieces. */
export class PartReader {
  private readonly fd: number;
  /** Rows of each order. */
  readonly rows: number[] = [];
  private readonly starts: number[] = [];

  constructor(readonly path: string) {
    if (!existsSync(path)) throw new RangeError(`Expected a reduced partition at ${path}`);
    this.fd = openSync(path, 'r');
    const start = readInts(this.fd, 0, 2);
    if (start[0] !== MAGIC_PART) throw new RangeError(`Expected a reduced partition in ${path}`);
    const order = start[1];
    const header = readInts(this.fd, 0, headerInts(order));
    let at = header.length * 4;
    for (let n = 2; n <= order; n++) {
      this.rows[n] = header[n];
      this.starts[n] = at;
      at += Math.ceil((header[n] * n) / 2) * 8 + header[n] * 8;
    }
  }

  /** Rows [from, from + count) of order n. */
  read(n: number, from: number, count: number): KeyedRows {
    const keysAt = this.starts[n];
    const countsAt = keysAt + Math.ceil((this.rows[n] * n) / 2) * 8;
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
  return Math.ceil((order + 1) / 2) * 2;
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
