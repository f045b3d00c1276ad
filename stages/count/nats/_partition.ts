/**
 * A reduce job over NATS, both ends of it: the runs live on the coordinator's disk, so the
 * coordinator ships partition p's sections of every run as one object (`packSections`), a worker
 * reduces them (`reduceShipped`: the same `reduceSections` and part file as a local reduce job,
 * stages/count/_reduce.ts) and stores the part file, and the coordinator checks the file it fetched
 * (`checkPart`) before it renames it into count-runs/ as `part-<p>.bin`.
 *
 * Sections object (little-endian Int32 throughout, so it is read in place):
 *   header: MAGIC 'LMS2', order N, shards S, partition p, partitions P,
 *           then S x T row counts (shard-major, the T tables of a run: runTables(N), ngram2..N
 *           then sentence2..N)
 *   body:   for each shard, for each table t (of order n), its section's rows [hash, count, w1..wn]
 *           (the bytes of the run file between the partition's bucket offsets, as they are)
 * Raw rather than varint-packed (as shard counts are, _codec.ts): the coordinator's CPU is the
 * distributed run's bottleneck, and copying costs it nothing.
 *
 * `checkPart` trusts nothing of a worker's file: the header, the file's size, keys strictly
 * ascending and not negative (the sentence tables' markers, -1 and -2, excepted), counts whole and
 * at least 1, at most the input's rows, and per table the sum of the counts equal to the sum over
 * the sections shipped. A file that fails stops the run, naming the
 * partition; one that passes but is wrong (counts moved between keys) cannot be told from a right
 * one without reducing again.
 */
import { closeSync, fstatSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compareKeys, PartReader, reduceSections, RunReader, runPath, runTables, writePart, type KeyedRows } from '../index.ts';

const MAGIC = 0x32534d4c; // 'LMS2' read as u32 LE
const HEADER = 5;
/** Rows checked at a time: bounds the check's memory whatever the part's size. */
const CHECK_ROWS = 1 << 20;

/** Per table t (index t of runTables), what the part file must add up to: the sections' rows and count sums. */
export interface PartExpectation {
  rows: number[];
  total: number[];
}

/** Partition `index` of `partitions`, from the runs of `shards` shards in `runs`: chunks of one object, and what its part must hold. */
export function packSections(runs: string, job: { index: number; partitions: number; shards: number; order: number }): { chunks: Uint8Array[]; expected: PartExpectation } {
  const { index, partitions, shards, order } = job;
  const tables = runTables(order);
  const header = new Int32Array(HEADER + shards * tables.length);
  header.set([MAGIC, order, shards, index, partitions]);
  const chunks: Uint8Array[] = [new Uint8Array(header.buffer)];
  const expected: PartExpectation = { rows: new Array<number>(tables.length).fill(0), total: new Array<number>(tables.length).fill(0) };
  for (let shard = 0; shard < shards; shard++) {
    const reader = new RunReader(runPath(runs, shard));
    try {
      tables.forEach(({ n }, t) => {
        const section = reader.section(t, index, partitions);
        const rows = section.length / (n + 2);
        header[HEADER + shard * tables.length + t] = rows;
        expected.rows[t] += rows;
        for (let at = 1; at < section.length; at += n + 2) expected.total[t] += section[at];
        chunks.push(new Uint8Array(section.buffer, section.byteOffset, section.byteLength));
      });
    } finally {
      reader.close();
    }
  }
  return { chunks, expected };
}

/** What a part must add up to, from the runs alone (a rerun checking a job an earlier coordinator shipped). */
export function expectedPart(runs: string, job: { index: number; partitions: number; shards: number; order: number }): PartExpectation {
  return packSections(runs, job).expected;
}

/** The sections in `bytes`, per table t one per shard; throws a RangeError when they are not the job's. */
export function unpackSections(bytes: Uint8Array, job: { index: number; partitions: number; order: number }): Int32Array[][] {
  // Read in place when aligned (a fresh download is); else a copy.
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : new Uint8Array(bytes);
  if (aligned.length % 4 !== 0 || aligned.length < HEADER * 4) throw new RangeError(`Expected a sections object, got ${bytes.length} bytes`);
  const ints = new Int32Array(aligned.buffer, aligned.byteOffset, aligned.length / 4);
  const [magic, order, shards, index, partitions] = ints;
  if (magic !== MAGIC || order !== job.order || index !== job.index || partitions !== job.partitions) {
    throw new RangeError(`Expected the sections of partition ${job.index} of ${job.partitions}, order ${job.order}`);
  }
  const tables = runTables(order);
  const sections: Int32Array[][] = tables.map(() => []);
  let at = HEADER + shards * tables.length;
  for (let shard = 0; shard < shards; shard++) {
    tables.forEach(({ name, n }, t) => {
      const length = ints[HEADER + shard * tables.length + t] * (n + 2);
      if (length < 0 || at + length > ints.length) throw new RangeError(`Expected ${length} ints of shard ${shard}'s ${name}${n} section, the object ends first`);
      sections[t].push(ints.subarray(at, at + length));
      at += length;
    });
  }
  if (at !== ints.length) throw new RangeError(`Expected ${at * 4} bytes of sections, got ${bytes.length}`);
  return sections;
}

/** The worker's reduce: shipped sections in, the bytes of `part-<p>.bin` out. */
export function reduceShipped(bytes: Uint8Array, job: { run: string; index: number; partitions: number; order: number }): Uint8Array {
  const sections = unpackSections(bytes, job);
  const reduced: KeyedRows[] = [];
  runTables(job.order).forEach(({ n }, t) => (reduced[t] = reduceSections(sections[t], n)));
  const path = join(tmpdir(), `lmpipe-${job.run}-part-${job.index}-${crypto.randomUUID().slice(0, 8)}.bin`);
  try {
    writePart(path, job.order, reduced);
    return readFileSync(path);
  } finally {
    rmSync(path, { force: true });
  }
}

/**
 * Checks the part file at `path` against the partition's sections; returns its rows per table
 * (index t of runTables), or throws a RangeError saying what is wrong.
 */
export function checkPart(path: string, order: number, expected: PartExpectation): number[] {
  const fd = openSync(path, 'r');
  let size: number;
  try {
    size = fstatSync(fd).size;
  } finally {
    closeSync(fd);
  }
  const part = new PartReader(path);
  const tables = runTables(order);
  try {
    let bytes = Math.ceil((2 + tables.length) / 2) * 8;
    tables.forEach(({ name, n }, t) => {
      const rows = part.rows[t];
      if (!Number.isInteger(rows) || rows < 0 || rows > expected.rows[t]) {
        throw new RangeError(`Expected at most ${expected.rows[t]} rows of ${name}${n}, got ${rows}`);
      }
      bytes += Math.ceil((rows * n) / 2) * 8 + rows * 8;
    });
    if (bytes !== size) throw new RangeError(`Expected ${bytes} bytes for the rows in the header, got ${size}`);
    tables.forEach(({ name, n }, t) => {
      // The sentence markers <s> and </s> are -1 and -2.
      const lowest = name === 'sentence' ? -2 : 0;
      let total = 0;
      let previous: Int32Array | undefined;
      for (let from = 0; from < part.rows[t]; from += CHECK_ROWS) {
        const { keys, counts } = part.read(t, from, Math.min(CHECK_ROWS, part.rows[t] - from));
        for (let row = 0; row < counts.length; row++) {
          const count = counts[row];
          if (!Number.isInteger(count) || count < 1) throw new RangeError(`Expected counts of at least 1 in ${name}${n}, got ${count} at row ${from + row}`);
          total += count;
          for (let k = row * n; k < (row + 1) * n; k++) if (keys[k] < lowest) throw new RangeError(`Expected token ids, got ${keys[k]} in ${name}${n} at row ${from + row}`);
          const before = row > 0 ? compareKeys(keys, (row - 1) * n, keys, row * n, n) : previous ? compareKeys(previous, 0, keys, 0, n) : -1;
          if (before >= 0) throw new RangeError(`Expected keys in strictly ascending order in ${name}${n}, row ${from + row} is not`);
        }
        previous = keys.slice(keys.length - n);
      }
      if (total !== expected.total[t]) throw new RangeError(`Expected the ${name}${n} counts to add up to ${expected.total[t]}, got ${total}`);
    });
    return part.rows;
  } finally {
    part.close();
  }
}
