import t from 'tap';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkPart, expectedPart, packSections, reduceShipped, unpackSections } from '../../../../../stages/count/nats/_partition.ts';
import { PartReader, partPath, reducePartition, runPath, runTables, writeRun } from '../../../../../stages/count/index.ts';
import { random } from '../../../../oracles/count-oracle.ts';

// Three shards' runs of orders 2 and 3 over a small vocabulary (so shards share n-grams), each row
// [hash, count, w1..wn] sorted by unsigned hash, as the count phase writes them: the tables ngram2,
// ngram3, then sentence2, sentence3 (ids from -2: the markers </s> and <s>).
const SHARDS = 3;
const ORDER = 3;
const PARTITIONS = 4;
const runs = join(mkdtempSync(join(tmpdir(), 'lmpipe-partition-')), 'count-runs');
mkdirSync(runs);
const next = random(11);
const hash = (key: number[]) => key.reduce((h, id) => Math.imul(h ^ (id + 1), 0x9e3779b1) >>> 0, 0x811c9dc5) | 0;
/** The brute-force sums over every shard, key "table:w1,w2.." -> count. */
const oracle = new Map<string, number>();
const TABLES = runTables(ORDER);
for (let shard = 0; shard < SHARDS; shard++) {
  const rows: Int32Array[] = [];
  TABLES.forEach(({ name, n }, t) => {
    const lowest = name === 'sentence' ? -2 : 0;
    const keys = new Map<string, number[]>();
    for (let i = 0; i < 400; i++) {
      const key = Array.from({ length: n }, () => lowest + Math.floor(next() * 12));
      keys.set(key.join(','), key);
    }
    const sorted = [...keys.values()].map((key) => ({ key, hash: hash(key), count: 1 + Math.floor(next() * 5) }))
      .sort((a, b) => (a.hash >>> 0) - (b.hash >>> 0));
    rows[t] = Int32Array.from(sorted.flatMap(({ key, hash, count }) => {
      oracle.set(`${name}${n}:${key}`, (oracle.get(`${name}${n}:${key}`) ?? 0) + count);
      return [hash, count, ...key];
    }));
  });
  writeRun(runPath(runs, shard), ORDER, rows);
}
const concat = (chunks: Uint8Array[]) => new Uint8Array(Buffer.concat(chunks));
const jobOf = (index: number) => ({ run: 'run1', index, path: runs, partitions: PARTITIONS, shards: SHARDS, order: ORDER });

t.test('a partition shipped, reduced by a worker and checked is byte for byte the local reduce job\'s part, and the parts add up to brute force', async (t) => {
  const reduced = new Map<string, number>();
  for (let p = 0; p < PARTITIONS; p++) {
    const local = reducePartition(jobOf(p));
    const { chunks, expected } = packSections(runs, jobOf(p));
    const shipped = reduceShipped(concat(chunks), jobOf(p));
    t.equal(Buffer.from(shipped).toString('base64'), readFileSync(partPath(runs, p)).toString('base64'), `partition ${p}`);
    t.same(checkPart(partPath(runs, p), ORDER, expected), local.rows);
    t.same(expectedPart(runs, jobOf(p)), expected);
    const part = new PartReader(partPath(runs, p));
    TABLES.forEach(({ name, n }, t) => {
      const { keys, counts } = part.read(t, 0, part.rows[t]);
      counts.forEach((count, row) => reduced.set(`${name}${n}:${[...keys.subarray(row * n, (row + 1) * n)]}`, count));
    });
    part.close();
  }
  t.same(new Map([...reduced].sort()), new Map([...oracle].sort()));
});

t.test('unpackSections() refuses the sections of another partition and a cut object', async (t) => {
  const bytes = concat(packSections(runs, jobOf(1)).chunks);
  t.throws(() => unpackSections(bytes, jobOf(2)), /Expected the sections of partition 2 of 4/);
  t.throws(() => unpackSections(bytes.subarray(0, bytes.length - 8), jobOf(1)), /the object ends first|Expected \d+ bytes/);
  t.throws(() => unpackSections(bytes.subarray(0, bytes.length - 1), jobOf(1)), /Expected a sections object/);
  // Unaligned (a view into a bigger download): read from a copy, the same sections.
  const offset = new Uint8Array(bytes.length + 1);
  offset.set(bytes, 1);
  t.same(unpackSections(offset.subarray(1), jobOf(1)), unpackSections(bytes, jobOf(1)));
});

t.test('checkPart() refuses a part file with a count changed, a fraction, keys out of order, a negative id, a cut, or another format', async (t) => {
  const { expected } = packSections(runs, jobOf(0));
  const good = new Uint8Array(readFileSync(partPath(runs, 0)));
  const rows2 = new PartReader(partPath(runs, 0)).rows[0];
  // Layout (_runfile.ts): header of 6 ints (magic, order, 4 tables' rows), ngram2's keys (2 per
  // row), then its counts (Float64).
  const keysAt = 24;
  const countsAt = keysAt + Math.ceil(rows2 * 2 / 2) * 8;
  const altered = (change: (bytes: Uint8Array) => Uint8Array) => {
    const path = join(runs, `altered-${crypto.randomUUID()}.bin`);
    writeFileSync(path, change(good.slice()));
    return path;
  };
  const count = (value: number) => (bytes: Uint8Array) => (new DataView(bytes.buffer).setFloat64(countsAt, value, true), bytes);
  const first = new DataView(good.buffer).getFloat64(countsAt, true);
  t.throws(() => checkPart(altered(count(first + 1)), ORDER, expected), /Expected the ngram2 counts to add up to/);
  t.throws(() => checkPart(altered(count(0.5)), ORDER, expected), /Expected counts of at least 1 in ngram2, got 0.5 at row 0/);
  t.throws(() => checkPart(altered((bytes) => {
    const keys = new Int32Array(bytes.buffer, keysAt, 4);
    keys.set([keys[2], keys[3], keys[0], keys[1]]);
    return bytes;
  }), ORDER, expected), /Expected keys in strictly ascending order in ngram2, row 1/);
  t.throws(() => checkPart(altered((bytes) => (new DataView(bytes.buffer).setInt32(keysAt, -5, true), bytes)), ORDER, expected), /Expected token ids, got -5/);
  t.throws(() => checkPart(altered((bytes) => bytes.subarray(0, bytes.length - 8)), ORDER, expected), /Expected \d+ bytes for the rows in the header/);
  t.throws(() => checkPart(altered((bytes) => crypto.getRandomValues(bytes)), ORDER, expected), /Expected a reduced partition/);
  t.throws(() => checkPart(partPath(runs, 0), ORDER, { rows: expected.rows.map(() => 1), total: expected.total }), /Expected at most 1 rows of ngram2/);
  t.doesNotThrow(() => checkPart(altered((bytes) => bytes), ORDER, expected));
});
