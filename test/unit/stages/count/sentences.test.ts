import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { countStage } from '../../../../stages/count/count.ts';
import { SentenceSplitter, sentencesOf } from '../../../../stages/count/_sentences.ts';
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
