import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeShardCounts, encodeShardCounts } from '../../../../../stages/count/nats/_codec.ts';
import { countShard } from '../../../../../stages/count/index.ts';
import { planShards } from '../../../../../stages/ingest/index.ts';
import { random, randomText } from '../../../../oracles/count-oracle.ts';

const dir = mkdtempSync(join(tmpdir(), 'lmpipe-codec-'));
const path = join(dir, 'corpus.txt');
writeFileSync(path, randomText(random(7), 4000));
const [first, second] = await planShards([path], { shardBytes: 6000 });
const options = { tokenizer: 'char', lowercase: false, jsonField: 'text', order: 3 } as const;
const counted = await countShard(second, options);
const arrays = (counts: typeof counted) => JSON.stringify({
  stream: [...counts.stream], firstSeen: [...counts.firstSeen], head: [...counts.head], tail: [...counts.tail],
  keys: counts.keys.map((a) => [...a]), counts: counts.counts.map((a) => [...a]), hashes: counts.hashes.map((a) => [...a]),
  tokens: counts.tokens, tokenHashes: [...counts.tokenHashes],
  sentences: ['keys', 'counts', 'hashes'].map((field) => counts.sentences![field as 'keys'].map((a) => [...a])),
  scalars: [counts.index, counts.documents, counts.leadingGap, counts.trailingGap, counts.bytes, counts.invalidUtf8, counts.skippedRecords],
});

t.test('decodeShardCounts(encodeShardCounts(x)) gives back the worker\'s arrays, its n-gram hashes recomputed', async (t) => {
  t.ok(second.continuesDocument || first.end === second.start);
  const bytes = encodeShardCounts(counted, 'run1');
  const decoded = decodeShardCounts(bytes, { run: 'run1', index: second.index, order: 3 });
  t.equal(arrays(decoded), arrays(counted));
  t.ok(counted.sentences!.counts[0].length > 10, 'the sentence counts (Kneser-Ney) travel too, their hashes recomputed');
  t.equal(decoded.firstToken, 0);
  // Varints: well under the raw arrays' size.
  const raw = [counted.stream, ...counted.keys, ...counted.counts, ...counted.hashes].reduce((sum, a) => sum + a.byteLength, 0);
  t.ok(bytes.length < raw / 2, `${bytes.length} bytes for ${raw} raw`);
});

t.test('decodeShardCounts() refuses garbage, truncation, another shard and altered counts', async (t) => {
  const bytes = encodeShardCounts(counted, 'run1');
  const expected = { run: 'run1', index: second.index, order: 3 };
  t.throws(() => decodeShardCounts(crypto.getRandomValues(new Uint8Array(500)), expected), /LMPC/);
  t.throws(() => decodeShardCounts(bytes.subarray(0, bytes.length - 1), expected), RangeError);
  t.throws(() => decodeShardCounts(Uint8Array.of(...bytes, 0), expected), /Expected \d+ bytes/);
  t.throws(() => decodeShardCounts(bytes, { ...expected, index: 0 }), /shard 0/);
  t.throws(() => decodeShardCounts(bytes, { ...expected, run: 'run2' }), /run run2/);
  // One more occurrence of the first unigram: its count no longer matches the stream.
  const altered = { ...counted, counts: [Float64Array.from(counted.counts[0], (c, i) => (i === 0 ? c + 1 : c)), ...counted.counts.slice(1)] };
  t.throws(() => decodeShardCounts(encodeShardCounts(altered, 'run1'), expected), /unigram counts that match the stream/);
  // A token id past the dictionary.
  const outside = { ...counted, head: Int32Array.of(counted.tokens.length) };
  t.throws(() => decodeShardCounts(encodeShardCounts(outside, 'run1'), expected), /ids below/);
});

t.test('encodeShardCounts() refuses a shard counted with a shared dictionary', async (t) => {
  t.throws(() => encodeShardCounts({ ...counted, firstToken: 5 }, 'run1'), /own dictionary/);
});
