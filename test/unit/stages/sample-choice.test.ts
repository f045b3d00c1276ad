/**
 * What generation may emit: reserved tokens are not text (<pad> and <bos> never, <unk> only when
 * asked, <eos> ends the text), and top-k / top-p cut the distribution as Hugging Face's warpers do.
 * The model is fixed (every step's distribution is exactly p), so the expected shares are computed
 * here from p by hand.
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sample } from '../../../stages/sample.ts';
import { backend } from '../../../stages/train/index.ts';
import { fixedModel } from '../../helpers/fixed-model.ts';

await backend('cpu');

const VOCAB = ['<unk>', '<pad>', '<bos>', '<eos>', 'a', 'b', 'c', 'd'];

const runDir = (t: { teardown(fn: () => void): void }, p: number[]) => {
  const dir = mkdtempSync(join(tmpdir(), 'lmpipe-choice-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  fixedModel(dir, p, { vocab: VOCAB, tokenizer: 'word' });
  return dir;
};

/** How often each token of VOCAB follows the one-word prefix. */
const shares = (text: string) => {
  const words = text.split(' ').slice(1);
  return Object.fromEntries(VOCAB.map((token) => [token, words.filter((w) => w === token).length / words.length]));
};

t.test('sample() never emits <pad> or <bos>, nor <unk> unless allowUnk', async (t) => {
  const dir = runDir(t, [0.2, 0.2, 0.2, 0, 0.1, 0.1, 0.1, 0.1]);
  const greedy = await sample(dir, { prefix: 'a', length: 5, backend: 'cpu' });
  t.equal(greedy.text, 'a a a a a a', 'greedy takes the most likely token that is text');
  const drawn = await sample(dir, { prefix: 'a', length: 2000, temperature: 1, seed: 3, backend: 'cpu' });
  const seen = shares(drawn.text);
  t.same([seen['<pad>'], seen['<bos>'], seen['<unk>']], [0, 0, 0]);
  t.ok(Math.abs(seen.a - 0.25) < 0.05, `a, b, c, d share the draws: a ${seen.a}`);
  const withUnk = shares((await sample(dir, { prefix: 'a', length: 2000, temperature: 1, seed: 3, allowUnk: true, backend: 'cpu' })).text);
  t.ok(Math.abs(withUnk['<unk>'] - 0.2 / 0.6) < 0.05, `<unk> at its share of 0.6: ${withUnk['<unk>']}`);
  t.equal(withUnk['<pad>'], 0);
});

t.test('sample() stops at <eos>', async (t) => {
  const dir = runDir(t, [0, 0, 0, 0.3, 0.7, 0, 0, 0]);
  const drawn = await sample(dir, { prefix: 'a', length: 1000, temperature: 1, seed: 5, backend: 'cpu' });
  t.ok(drawn.endOfText);
  t.match(drawn.text, /^a( a)*$/, 'the text holds no <eos>');
  t.ok(drawn.text.split(' ').length < 60, 'with p(<eos>) 0.3 it ends long before 1000 tokens');
  const greedyEnd = await sample(runDir(t, [0, 0, 0, 0.6, 0.4, 0, 0, 0]), { prefix: 'b', length: 10, backend: 'cpu' });
  t.match(greedyEnd, { text: 'b', endOfText: true });
});

t.test('sample() with topK draws only among the k most likely, in proportion', async (t) => {
  const p = [0, 0, 0, 0, 0.4, 0.3, 0.2, 0.1];
  const dir = runDir(t, p);
  const drawn = await sample(dir, { prefix: 'a', length: 4000, temperature: 1, topK: 2, seed: 11, backend: 'cpu' });
  t.match(drawn.strategy, 'temperature 1, top-k 2, seed 11');
  const seen = shares(drawn.text);
  t.same([seen.c, seen.d], [0, 0]);
  t.ok(Math.abs(seen.a - 0.4 / 0.7) < 0.03, `a: ${seen.a} vs ${(0.4 / 0.7).toFixed(3)}`);
});

t.test('sample() with topP draws from the smallest most likely set holding p, after temperature', async (t) => {
  const p = [0, 0, 0, 0, 0.5, 0.25, 0.15, 0.1];
  const dir = runDir(t, p);
  // T = 1: 0.5 + 0.25 = 0.75 reaches 0.7, so {a, b}.
  const nucleus = shares((await sample(dir, { prefix: 'a', length: 4000, temperature: 1, topP: 0.7, seed: 2, backend: 'cpu' })).text);
  t.same([nucleus.c, nucleus.d], [0, 0]);
  t.ok(Math.abs(nucleus.a - 2 / 3) < 0.03, `a: ${nucleus.a}`);
  // T = 2 flattens p to √p / Σ√p = .31, .22, .17, .14 (of the allowed): {a, b, c} are needed for 0.7.
  const weights = p.map(Math.sqrt);
  const total = weights.reduce((a, b) => a + b, 0);
  t.ok((weights[4] + weights[5]) / total < 0.7 && (weights[4] + weights[5] + weights[6]) / total >= 0.7);
  const flat = shares((await sample(dir, { prefix: 'a', length: 4000, temperature: 2, topP: 0.7, seed: 2, backend: 'cpu' })).text);
  t.equal(flat.d, 0);
  t.ok(Math.abs(flat.c - weights[6] / (weights[4] + weights[5] + weights[6])) < 0.03, `c: ${flat.c}`);
  const both = shares((await sample(dir, { prefix: 'a', length: 4000, temperature: 2, topK: 2, topP: 0.7, seed: 2, backend: 'cpu' })).text);
  t.ok(both.c === 0 && Math.abs(both.a - weights[4] / (weights[4] + weights[5])) < 0.03, 'top-p is taken of the top-k');
});

t.test('sample() refuses a model trained on another vocabulary', async (t) => {
  const dir = runDir(t, [0, 0, 0, 0, 0.4, 0.3, 0.2, 0.1]);
  const { openRunDatabase } = await import('../../../storage/schema.ts');
  const db = openRunDatabase(join(dir, 'lmpipe.sqlite'));
  db.prepare("UPDATE vocab SET token = 'z' WHERE token = 'd'").run();
  db.close();
  await t.rejects(sample(dir, { prefix: 'a', length: 3, backend: 'cpu' }), { code: 'STATE', stage: 'sample', message: /Expected the model's vocabulary \(hash \w+\), got \w+ in the vocab table/ });
});

t.test('sample() without a prefix warms up on the first tokens of the validation split', async (t) => {
  const { runStages, tinyConfig } = await import('../../helpers/train-fixture.ts');
  const dir = mkdtempSync(join(tmpdir(), 'lmpipe-prefix-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const words = Array.from({ length: 400 }, (_, i) => ['the', 'river', 'flows', 'to', 'a', 'sea'][i % 6]).join(' ') + ' zebra yak xenon';
  const config = tinyConfig(dir, words, { tokenizer: 'd2l-word', validFrac: 0.1, epochs: 1, sampleLength: 2 });
  await runStages(config);
  const result = await sample(config.out, { prefix: '', length: 2, backend: 'cpu' });
  // 403 tokens, the last floor(403 * 0.1) = 40 held out: tokens 363.. of the text.
  const expected = words.split(' ').slice(363, 366).join(' ');
  t.equal(result.prefix, expected);
  t.ok(result.text.startsWith(expected + ' '));
});
