import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { countNgrams } from '../../../../stages/count/_radix.ts';
import { CountMerger } from '../../../../stages/count/_merge.ts';
import { countShard } from '../../../../stages/count/_shard.ts';
import { ngramHash, tokenHash } from '../../../../stages/count/_table.ts';
import { planShards } from '../../../../stages/ingest/index.ts';
import { reduceSections } from '../../../../stages/count/_reduce.ts';
import { random } from '../../../oracles/count-oracle.ts';
import { fnv1a, murmur3Words, referenceNgramHash } from '../../../oracles/hash-oracle.ts';

/** Brute force over a Map: the n-grams of each document piece of `stream`, keyed by their ids. */
function bruteForce(stream: Int32Array, documentStarts: number[], n: number): Map<string, number> {
  const counts = new Map<string, number>();
  const bounds = [0, ...documentStarts, stream.length];
  for (let d = 0; d + 1 < bounds.length; d++) {
    for (let start = bounds[d]; start + n <= bounds[d + 1]; start++) {
      const key = Array.from(stream.subarray(start, start + n)).join(' ');
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  return counts;
}

/** `text` in a file, cut into shards of (about) one short line each. */
async function lineShards(text: string) {
  const path = join(mkdtempSync(join(tmpdir(), 'lmpipe-radix-')), 'a.txt');
  writeFileSync(path, text);
  return planShards([path], { shardBytes: 4 });
}

function rowsOf(keys: Int32Array, counts: Float64Array, n: number): Map<string, number> {
  const rows = new Map<string, number>();
  for (let row = 0; row < counts.length; row++) {
    const key = Array.from(keys.subarray(row * n, row * n + n)).join(' ');
    if (rows.has(key)) throw new Error(`Row ${key} appears twice`);
    rows.set(key, counts[row]);
  }
  return rows;
}

t.test('countNgrams() counts like a brute-force counter, partitioned, direct or both, orders 2..5', async (t) => {
  const next = random(17);
  // Zipf-like ids over a big vocabulary: many distinct n-grams (partitioned into many buckets),
  // some repeated; documents of every length, empty ones included.
  const stream = Int32Array.from({ length: 60_000 }, () => Math.floor(1 / (next() + 1e-4)) % 5000);
  const documentStarts = [0, 0, 1, 7, 7, 8, 100, 20_000, 20_003, 59_999];
  const tokenHashes = Int32Array.from({ length: 5000 }, (_, id) => tokenHash(`token ${id}`));
  const paths = { partitioned: () => stream.length, direct: () => 1, mixed: (n: number) => (n === 3 || n === 5 ? stream.length : 1) };
  for (const [path, expectedDistinct] of Object.entries(paths)) {
    const rows = countNgrams(stream, Int32Array.from(documentStarts), { order: 5, tokenHashes, expectedDistinct });
    for (let n = 2; n <= 5; n++) {
      t.same(rowsOf(rows[n].keys, rows[n].counts, n), bruteForce(stream, documentStarts, n), `order ${n}, ${path}`);
      const expected = (row: number) => referenceNgramHash(Array.from(rows[n].keys.subarray(row * n, row * n + n), (id) => tokenHashes[id])) || 1;
      const wrongHashes = Array.from(rows[n].hashes).filter((hash, row) => hash !== expected(row));
      t.equal(wrongHashes.length, 0, `order ${n}, ${path}: each row carries the hash of its tokens' text (reference murmur3)`);
    }
  }
});

t.test('tokenHash() is FNV-1a and ngramHash() murmur3 over the token hashes, last first (reference implementations)', async (t) => {
  // The references first meet the published test vectors of both hashes ...
  t.equal(fnv1a('a'), 0xe40c292c | 0, 'FNV-1a("a")');
  t.equal(fnv1a('foobar'), 0xbf9cf968 | 0, 'FNV-1a("foobar")');
  t.equal(murmur3Words([], 0, 0), 0, 'MurmurHash3_x86_32("", 0)');
  t.equal(murmur3Words([], 0, 1), 0x514e28b7 | 0, 'MurmurHash3_x86_32("", 1)');
  t.equal(murmur3Words([0x74736574], 4, 0), 0xba6bd213 | 0, 'MurmurHash3_x86_32("test", 0)');
  // ... then the code under test meets the references.
  const next = random(3);
  for (let round = 0; round < 200; round++) {
    const token = Array.from({ length: Math.floor(next() * 12) }, () => String.fromCharCode(Math.floor(next() * 0x3000))).join('');
    if (tokenHash(token) !== fnv1a(token)) t.fail(`tokenHash(${JSON.stringify(token)})`);
    const ids = Int32Array.from({ length: 2 + Math.floor(next() * 4) }, () => Math.floor(next() * 50));
    const hashes = Int32Array.from({ length: 50 }, () => (next() * 2 ** 32) | 0);
    const start = Math.floor(next() * 2);
    const n = ids.length - start;
    if (ngramHash(ids, start, n, hashes) !== referenceNgramHash(Array.from(ids.subarray(start), (id) => hashes[id]))) t.fail(`ngramHash, round ${round}`);
  }
  t.pass('200 random tokens and n-grams hash as the references do');
});

t.test('countNgrams() rows come out sorted by unsigned hash (the order of a shard\'s run)', async (t) => {
  const next = random(5);
  const stream = Int32Array.from({ length: 200_000 }, () => Math.floor(next() * 100_000));
  const tokenHashes = Int32Array.from({ length: 100_000 }, (_, id) => tokenHash(String(id)));
  const { hashes } = countNgrams(stream, new Int32Array(0), { order: 3, tokenHashes, expectedDistinct: () => stream.length })[3];
  let descents = 0;
  for (let row = 1; row < hashes.length; row++) if (hashes[row] >>> 0 < hashes[row - 1] >>> 0) descents++;
  t.ok(hashes.length > 100_000, `${hashes.length} rows`);
  t.equal(descents, 0, 'no row has a smaller hash than the one before');
});

t.test('CountMerger runs and their reduce keep one row per n-gram whether it comes from a worker, a cut or after a resume', async (t) => {
  // Two shards of one document: (b, a) is counted across the cut and inside the second shard.
  const shards = await lineShards('a b\na b a\n');
  t.equal(shards.length, 2);
  const options = { tokenizer: 'word' as const, lowercase: true, jsonField: 'text', order: 3 };
  const text = (tokens: readonly string[], id: number) => (id === -1 ? '<s>' : id === -2 ? '</s>' : tokens[id]);
  const bigrams = (runs: Int32Array[], tokens: readonly string[]) => {
    const { keys, counts } = reduceSections(runs, 2);
    return Array.from(counts, (count, row) => `${text(tokens, keys[2 * row])} ${text(tokens, keys[2 * row + 1])}=${count}`);
  };
  // The run's tables (runTables(3)): ngram2, ngram3, sentence2, sentence3.
  const first = new CountMerger(3);
  const { run: firstRun } = first.merge(shards[0], await countShard(shards[0], options));
  let tokens: string[] = [];
  let state = first.state;
  first.flush((batch, at) => {
    tokens = [...batch.tokens];
    state = structuredClone(at);
  });
  t.same(bigrams([firstRun[0]], tokens), ['a b=1'], 'first shard');
  // A resumed merger knows the tokens only by their text: its hashes must match the workers'.
  const resumed = new CountMerger(3, { tokens, state });
  const { run } = resumed.merge(shards[1], await countShard(shards[1], options));
  for (const table of [0, 2]) {
    const hashes = Array.from({ length: run[table].length / 4 }, (_, row) => run[table][4 * row] >>> 0);
    t.same(hashes, [...hashes].sort((a, b) => a - b), `table ${table} of the run is sorted by unsigned hash`);
  }
  t.same(bigrams([firstRun[0], run[0]], tokens), ['a b=2', 'b a=2'].sort((a, b) => (a < b ? -1 : 1)));
  // Sentences never cross a line, so (b, a) is one sentence bigram, and the markers stay < 0.
  t.same(bigrams([firstRun[2], run[2]], tokens).sort(), ['a b=2', 'b a=1', '<s> a=2', 'a </s>=1', 'b </s>=1'].sort());
});

t.test('countShard keeps one dictionary per run and thread: a shard sends only the tokens not sent before', async (t) => {
  const shards = await lineShards('a b\nb c a\nd a\n');
  t.equal(shards.length, 3);
  const options = { tokenizer: 'word' as const, lowercase: true, jsonField: 'text', order: 2, run: 'one run' };
  const results: Awaited<ReturnType<typeof countShard>>[] = [];
  for (const shard of shards) results.push(await countShard(shard, options));
  t.same(results.map((r) => [r.firstToken, r.tokens]), [[0, ['a', 'b']], [2, ['c']], [3, ['d']]]);
  t.equal(new Set(results.map((r) => r.dictionary)).size, 1, 'one dictionary');
  const merger = new CountMerger(2);
  const streams = results.map((r, i) => Array.from(merger.merge(shards[i], r).pieces.at(-1)!));
  t.same(streams, [[0, 1], [1, 2, 0], [3, 0]], 'global ids in first-occurrence order');
  const next = await countShard(shards[0], { ...options, run: 'another run' });
  t.same([next.firstToken, next.tokens], [0, ['a', 'b']], 'a new run starts a new dictionary');
  t.throws(() => new CountMerger(2).merge(shards[0], { ...results[1], index: 0 }), /continue dictionary .* at token 0, got 2/);
});

t.test('countShard starts a new dictionary past dictionaryTokens, and the merger gives the same global ids', async (t) => {
  const shards = await lineShards('a b\nb c a\nd a\n');
  const options = { tokenizer: 'word' as const, lowercase: true, jsonField: 'text', order: 2, run: 'small dictionaries', dictionaryTokens: 2 };
  const results: Awaited<ReturnType<typeof countShard>>[] = [];
  for (const shard of shards) results.push(await countShard(shard, options));
  t.same(results.map((r) => [r.firstToken, r.tokens]), [[0, ['a', 'b']], [2, ['c']], [0, ['d', 'a']]], 'the third shard resends what it needs');
  t.equal(results[2].replaces, results[0].dictionary, 'and names the dictionary it replaces');
  const merger = new CountMerger(2);
  t.same(results.map((r, i) => Array.from(merger.merge(shards[i], r).pieces.at(-1)!)), [[0, 1], [1, 2, 0], [3, 0]]);
});
