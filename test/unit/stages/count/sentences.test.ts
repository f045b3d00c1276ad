import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { countStage } from '../../../../stages/count/count.ts';
import { SentenceCounter, SentenceSplitter, sentenceRunLength, sentenceRunRows, sentencesOf } from '../../../../stages/count/_sentences.ts';
import { Interner } from '../../../../stages/ingest/index.ts';
import {
  charOracle, d2lWordOracle, wordOracle, databaseSentenceCounts, drain, dumpTables, oracleSentenceCounts, random, randomText, stageContext,
} from '../../../oracles/count-oracle.ts';

const ORACLES = { char: charOracle, 'd2l-word': d2lWordOracle, word: wordOracle } as const;

for (const tokenizer of ['char', 'd2l-word', 'word'] as const) {
  t.test(`countStage's sentence counts equal a brute-force counter across shard cuts (${tokenizer}, 1 and 2 workers)`, async (t) => {
    const root = mkdtempSync(join(tmpdir(), 'lmpipe-sentences-'));
    const next = random(tokenizer.length * 31);
    const texts = [randomText(next, 700), randomText(next, 90) + '\n', '', '\n\nlast line without newline'];
    const inputs = texts.map((text, i) => join(root, `doc${i}.txt`));
    texts.forEach((text, i) => writeFileSync(inputs[i], text));
    const records = Array.from({ length: 6 }, () => randomText(next, 12));
    inputs.push(join(root, 'records.jsonl'));
    writeFileSync(inputs.at(-1)!, records.map((text) => JSON.stringify({ text })).join('\n'));
    const expected = oracleSentenceCounts([...texts, ...records], ORACLES[tokenizer], 4);
    const dumps: string[] = [];
    for (const workers of [1, 2]) {
      const ctx = stageContext(join(root, `run${workers}`), { input: inputs, tokenizer, order: 4, workers, shardMb: 0.0002 });
      await drain(countStage.run(ctx));
      t.same(databaseSentenceCounts(ctx.db), expected, `${workers} worker(s)`);
      dumps.push(dumpTables(ctx.db));
      ctx.close();
    }
    t.equal(dumps[0], dumps[1], '1 and 2 workers write identical tables');
  });
}

t.test('SentenceSplitter gives the same sentences wherever the chunks are cut', async (t) => {
  const next = random(5);
  const text = randomText(next, 400) + '\r\nlast';
  const split = (pieces: string[]) => {
    const interner = new Interner();
    const splitter = new SentenceSplitter({ tokenizer: 'word', interner });
    const sentences: string[][] = [];
    const collect = (ids: Int32Array) => void sentences.push(Array.from(ids, (id) => interner.token(id)));
    pieces.forEach((piece, i) => splitter.push({ text: piece, documentStart: i === 0, documentEnd: i === pieces.length - 1, source: '', position: 0 }, collect));
    return sentences;
  };
  const whole = split([text]);
  t.same(whole, text.split('\n').map((line) => wordOracle(line)), 'one sentence per line, the last without a newline too');
  for (let round = 0; round < 20; round++) {
    const cuts = Array.from({ length: 1 + Math.floor(next() * 30) }, () => Math.floor(next() * text.length)).sort((a, b) => a - b);
    const pieces = [0, ...cuts].map((start, i) => text.slice(start, [...cuts, text.length][i]));
    t.same(split(pieces), whole, `cut at ${cuts.length} places`);
  }
});

t.test('sentencesOf reads files as the count stage does: an empty line is an empty sentence', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'lmpipe-sentences-'));
  writeFileSync(join(root, 'a.txt'), 'The Time\n\nMachine, by H. G. Wells\n');
  writeFileSync(join(root, 'b.json'), JSON.stringify([{ text: 'one\ntwo three' }, { text: '' }]));
  const sentences: string[][] = [];
  for await (const words of sentencesOf([join(root, 'a.txt'), join(root, 'b.json')], { tokenizer: 'd2l-word' })) sentences.push(words);
  t.same(sentences, [['the', 'time'], [], ['machine', 'by', 'h', 'g', 'wells'], ['one'], ['two', 'three']]);
});

t.test('SentenceCounter rows come sorted by hash, markers < 0; sentenceRunRows maps them to global ids and sorts rows that are not', async (t) => {
  const counter = new SentenceCounter(3);
  // Local ids 0..3; two sentences share the bigram (0, 1); an empty sentence is <s> </s>.
  for (const ids of [[0, 1, 2], [0, 1], [], [3, 0, 1]]) counter.push(Int32Array.from(ids));
  const tokenHashes = Int32Array.of(11, 22, 33, 44);
  const tables = counter.finish(tokenHashes);
  const rowsOf = (keys: Int32Array, counts: Float64Array, n: number) =>
    Array.from(counts, (count, row) => `${Array.from(keys.subarray(row * n, row * n + n)).join(' ')}=${count}`).sort();
  t.same(rowsOf(tables.keys[0], tables.counts[0], 2), ['-1 -2=1', '-1 0=2', '-1 3=1', '0 1=3', '1 -2=2', '1 2=1', '2 -2=1', '3 0=1'].sort(), 'bigrams, <s> -1 and </s> -2');
  const hashes = Array.from(tables.hashes[0], (hash) => hash >>> 0);
  t.same(hashes, [...hashes].sort((a, b) => a - b), 'sorted by unsigned hash');
  const map = Int32Array.of(7, 5, 9, 6);
  const stride = 4;
  const expected = sentenceRunRows(tables, 2, map, new Int32Array(sentenceRunLength(tables, 2)));
  // The same rows in reverse order, as another worker might send them.
  const reversed = { keys: [Int32Array.from({ length: tables.keys[0].length }, (_, i) => tables.keys[0][tables.keys[0].length - 2 * (1 + (i >> 1)) + (i & 1)])],
    counts: [Float64Array.from(tables.counts[0]).reverse()], hashes: [Int32Array.from(tables.hashes[0]).reverse()] };
  const resorted = sentenceRunRows(reversed, 2, map, new Int32Array(sentenceRunLength(reversed, 2)));
  t.same(Array.from(resorted), Array.from(expected), 'unsorted rows come out in hash order');
  const global = Array.from({ length: expected.length / stride }, (_, row) => `${expected[row * stride + 2]} ${expected[row * stride + 3]}=${expected[row * stride + 1]}`).sort();
  t.same(global, ['-1 -2=1', '-1 7=2', '-1 6=1', '7 5=3', '5 -2=2', '5 9=1', '9 -2=1', '6 7=1'].sort(), 'ids mapped to global ones, markers kept');
});
