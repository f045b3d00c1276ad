/**
 * The query tool on databases written by the real count stage: The Time Machine (d2l's published
 * figures, and brute-force counts from a re-implementation of d2l's tokenizer), and a JSON Lines
 * corpus whose held-out perplexity is computed directly, document by document.
 */
import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { query } from '../../../scripts/query.ts';
import { resolveConfig, type Config } from '../../../pipeline/config.ts';
import { runPipeline } from '../../../pipeline/runner.ts';
import type { Reporter } from '../../../pipeline/progress.ts';
import { countStage } from '../../../stages/count/index.ts';
import { vocabStage } from '../../../stages/vocab.ts';
import { bruteCounts, key } from '../../helpers/query-fixture.ts';

const dir = mkdtempSync(join(tmpdir(), 'lmpipe-query-corpus-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const silent: Reporter = { stage() {}, progress() {}, log() {}, summary() {} };

async function countCorpus(settings: Partial<Config>): Promise<string> {
  const config = resolveConfig({ order: 3, workers: 1, until: 'vocab', quiet: true, ...settings });
  const result = await runPipeline(config, { stages: [countStage, vocabStage], reporter: silent, signal: new AbortController().signal });
  result.db.close();
  return join(config.out, 'lmpipe.sqlite');
}

async function json(db: string, ...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await query([...argv, '--db', db, '--json'], { stdout: (s) => out.push(s), stderr: (s) => err.push(s) });
  if (code !== 0) throw new Error(`query ${argv.join(' ')} failed: ${err.join('\n')}`);
  return JSON.parse(out.join('\n'));
}

/** The smoothed model written out directly from its formulas, over brute-force counts. */
function directLogProb(brute: ReturnType<typeof bruteCounts>, documents: string[][], order: number): { logProb: number; evaluated: number; oov: number } {
  const c = (tokens: string[]) => brute.orders[tokens.length - 1].get(key(tokens)) ?? 0;
  const n = [...brute.orders[0].values()].reduce((a, b) => a + b, 0);
  const m = brute.orders[0].size;
  const p = (word: string, history: string[]): number => {
    if (history.length === 0) return (c([word]) + 1 / m) / (n + 1);
    const lower = p(word, history.slice(1));
    return c(history) === 0 ? lower : (c([...history, word]) + lower) / (c(history) + 1);
  };
  let logProb = 0, evaluated = 0, oov = 0;
  for (const document of documents) {
    document.forEach((word, i) => {
      if (c([word]) === 0) return void oov++;
      evaluated++;
      logProb += Math.log(p(word, document.slice(Math.max(0, i - order + 1), i)));
    });
  }
  return { logProb, evaluated, oov };
}

const corpus = new URL('../../../../shared/corpora/timemachine/timemachine.txt', import.meta.url);

t.test('query on The Time Machine (d2l-word) gives d2l figures and brute-force counts', { skip: !existsSync(corpus) && 'corpus absent' }, async (t) => {
  const db = await countCorpus({ input: [corpus.pathname], out: join(dir, 'tm'), tokenizer: 'd2l-word' });
  // d2l's read_time_machine + tokenize(lines, 'word'), written again here: one document, all lines.
  const words = readFileSync(corpus, 'utf8').split('\n')
    .flatMap((line) => line.replace(/[^A-Za-z]+/g, ' ').trim().toLowerCase().split(' ').filter(Boolean));
  const brute = bruteCounts([words], 3);

  const bigrams = await json(db, 'top', '--n', '2', '--k', '5');
  t.same(bigrams.rows[0], { rank: 1, tokens: ['of', 'the'], count: 309, frequency: 309 / (32775 - 1) }, 'top bigram (of, the) 309');
  t.same([bigrams.distinct, bigrams.total], [20234, 32774]);
  const unigrams = await json(db, 'top', '--n', '1', '--k', '10');
  t.same([unigrams.distinct, unigrams.total], [4579, 32775]);
  t.same(unigrams.rows.map((row: { tokens: string[]; count: number }) => [row.tokens[0], row.count]),
    [...brute.orders[0]].sort((a, b) => b[1] - a[1]).slice(0, 10), 'top words match the brute-force counts');
  t.equal((await json(db, 'top', '--n', '3', '--k', '1')).distinct, 29882);
  for (const tokens of [['time', 'traveller'], ['the', 'time', 'machine'], ['said', 'the', 'time'], ['of', 'zzz']]) {
    t.equal((await json(db, 'count', ...tokens)).count, brute.orders[tokens.length - 1].get(key(tokens)) ?? 0, tokens.join(' '));
  }
  const prob = await json(db, 'prob', 'traveller', '--given', 'the', 'time');
  const c = (tokens: string[]) => brute.orders[tokens.length - 1].get(key(tokens)) ?? 0;
  const p1 = (c(['traveller']) + 1 / 4579) / (32775 + 1);
  const p2 = (c(['time', 'traveller']) + p1) / (c(['time']) + 1);
  const p3 = (c(['the', 'time', 'traveller']) + p2) / (c(['the', 'time']) + 1);
  t.ok(Math.abs(prob.smoothed - p3) < 1e-15, `P(traveller | the time) = ${prob.smoothed}`);
  t.equal(prob.mle, c(['the', 'time', 'traveller']) / c(['the', 'time']));
  const zipf = await json(db, 'zipf', '--n', '1');
  t.equal(zipf.to, [...brute.orders[0].values()].filter((count) => count > 1).length, 'default range ends before the words seen once');
  t.ok(zipf.alpha > 0.8 && zipf.alpha < 1.6, `unigram α ${zipf.alpha} is near 1, as Zipf's law says`);

  const heldOut = join(dir, 'held-out.txt');
  const text = 'The Time Traveller smiled.\nAre you sure we can move freely in space and xyzzy time?\n';
  writeFileSync(heldOut, text);
  const expected = directLogProb(brute, [text.split('\n').flatMap((line) => line.replace(/[^A-Za-z]+/g, ' ').trim().toLowerCase().split(' ').filter(Boolean))], 3);
  const ppl = await json(db, 'perplexity', heldOut, '--n', '3');
  t.same([ppl.tokens, ppl.oov, ppl.evaluated], [expected.evaluated + expected.oov, 1, expected.evaluated]);
  t.ok(Math.abs(ppl.logProb - expected.logProb) < 1e-9, `log prob ${ppl.logProb} vs ${expected.logProb}`);
  t.ok(Math.abs(ppl.perplexity - Math.exp(-expected.logProb / expected.evaluated)) < 1e-9);
});

t.test('query on The Time Machine (d2l-char) shows the d2l vocabulary and the space token', { skip: !existsSync(corpus) && 'corpus absent' }, async (t) => {
  const db = await countCorpus({ input: [corpus.pathname], out: join(dir, 'tm-char'), tokenizer: 'd2l-char', order: 2, reserved: [] });
  const vocab = await json(db, 'vocab', '--k', '30');
  t.equal(vocab.size, 28);
  t.same(vocab.rows.map((row: { token: string }) => row.token),
    ['<unk>', ' ', 'e', 't', 'a', 'i', 'n', 'o', 's', 'h', 'r', 'd', 'l', 'm', 'u', 'c', 'f', 'w', 'g', 'y', 'p', 'b', 'v', 'k', 'x', 'z', 'j', 'q']);
  t.equal((await json(db, 'top', '--n', '1', '--k', '1')).total, 170580);
  const text = readFileSync(corpus, 'utf8').split('\n').map((line) => line.replace(/[^A-Za-z]+/g, ' ').trim().toLowerCase()).join('');
  const spaceT = text.split(' t').length - 1;
  t.equal((await json(db, 'count', ' ', 't')).count, spaceT, 'the bigram (" ", t) counted by splitting the text');
});

t.test('query on a JSON Lines corpus: n-grams and perplexity stay inside documents', async (t) => {
  const records = ['the cat sat on the mat', 'the dog sat', 'on the mat the cat slept', 'a cat and a dog'];
  const input = join(dir, 'train.jsonl');
  writeFileSync(input, records.map((text) => JSON.stringify({ body: text })).join('\n') + '\n');
  const db = await countCorpus({ input: [input], out: join(dir, 'jsonl'), tokenizer: 'word', jsonField: 'body' });
  const documents = records.map((text) => text.split(' '));
  const brute = bruteCounts(documents, 3);
  const top = await json(db, 'top', '--n', '2', '--k', '100');
  t.same(new Map(top.rows.map((row: { tokens: string[]; count: number }) => [key(row.tokens), row.count])), brute.orders[1]);
  t.equal((await json(db, 'count', 'slept', 'a')).count, 0, 'no bigram across a record boundary');

  const heldOut = join(dir, 'held-out.jsonl');
  const held = ['the cat sat on a mat', 'dog sat the cat', 'the bird sat'];
  writeFileSync(heldOut, held.map((text) => JSON.stringify({ body: text })).join('\n'));
  const expected = directLogProb(brute, held.map((text) => text.split(' ')), 3);
  const ppl = await json(db, 'perplexity', heldOut, '--n', '3');
  t.same([ppl.tokens, ppl.oov, ppl.evaluated], [13, 1, 12]);
  t.ok(Math.abs(ppl.logProb - expected.logProb) < 1e-12, 'each record scored from its own start');
  const bigram = await json(db, 'perplexity', heldOut, '--n', '2', '--eps1', '1', '--eps2', '1');
  t.ok(bigram.perplexity !== ppl.perplexity, 'the order changes the model');
});
