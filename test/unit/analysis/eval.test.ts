import t from 'tap';
import * as tf from '@tensorflow/tfjs-core';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { evaluateRun } from '../../../analysis/eval.ts';
import { openRunDatabase } from '../../../storage/schema.ts';
import { loadEvaluations } from '../../../storage/evaluations.ts';
import { d2lWordOracle } from '../../oracles/count-oracle.ts';
import { runStages, smallText, tinyConfig } from '../../helpers/train-fixture.ts';
import { referenceLogitsEach } from '../../oracles/train-reference.ts';
import { loadModel } from '../../../stages/sample.ts';
import { vocabTokens } from '../../../storage/vocab.ts';

const oracle = fileURLToPath(new URL('../../oracles/kn_oracle.py', import.meta.url));
const skip = spawnSync('python3', ['--version']).status === 0 ? false : 'python3 not found';

function runOracle(args: string[]): string {
  const result = spawnSync('python3', [oracle, ...args], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`kn_oracle.py ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

/** d2l 8.3's Laplace model, written out here: ε = 1 at every order, an unseen history backs off. */
function laplacePerplexity(train: string[], valid: string[], order: number): number {
  const counts = new Map<string, number>();
  for (let n = 1; n <= order; n++) {
    for (let i = 0; i + n <= train.length; i++) counts.set(train.slice(i, i + n).join(' '), (counts.get(train.slice(i, i + n).join(' ')) ?? 0) + 1);
  }
  const count = (words: string[]) => counts.get(words.join(' ')) ?? 0;
  const types = new Set(train).size;
  let sum = 0;
  let scored = 0;
  for (let t = 1; t < valid.length; t++) {
    if (count([valid[t]]) === 0) continue; // OOV: left out
    let p = (count([valid[t]]) + 1 / types) / (train.length + 1);
    for (let h = 1; h < order && t - h >= 0; h++) {
      const history = valid.slice(t - h, t);
      if (count(history) > 0) p = (count([...history, valid[t]]) + p) / (count(history) + 1);
    }
    sum += Math.log(p);
    scored++;
  }
  return Math.exp(-sum / scored);
}

t.test('evaluateRun scores Laplace, Kneser-Ney and the RNN on the same validation tokens as independent oracles', { skip }, async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'lmpipe-eval-'));
  const text = smallText(20000);
  const config = tinyConfig(root, text, { tokenizer: 'd2l-word', order: 2, epochs: 1 });
  await runStages(config);
  const db = openRunDatabase(join(config.out, 'lmpipe.sqlite'));
  const result = await evaluateRun(config.out, db, { backend: 'cpu' });

  // The split, rebuilt from the text: d2l words; the last 10% of the tokens are validation. Every
  // model reads them as one stream (the input's line breaks are not tokens): one line per file.
  const all = text.split('\n').flatMap((line) => d2lWordOracle(line));
  const trainLength = all.length - Math.floor(all.length * 0.1);
  const [train, valid] = [all.slice(0, trainLength), all.slice(trainLength)];
  const files = { train: join(root, 'train.txt'), valid: join(root, 'valid.txt') };
  writeFileSync(files.train, train.join(' ') + '\n');
  writeFileSync(files.valid, valid.join(' ') + '\n');

  t.same(result.rows.map((row) => row.model), ['laplace-1', 'laplace-2', 'laplace-3', 'laplace-4', 'laplace-5', 'kn-2', 'kn-3', 'kn-4', 'kn-5', 'rnn']);
  t.equal(result.tokens, valid.length - 1, 'every validation token but the first (it has no history for the RNN)');
  const oov = valid.slice(1).filter((word) => !train.includes(word)).length;
  t.equal(result.oov, oov, `OOV: validation tokens the training split never shows (${oov})`);
  const row = (model: string) => result.rows.find((r) => r.model === model)!;
  const close = (a: number, b: number) => Math.abs(a - b) <= 1e-6 * b;
  for (const order of [1, 2, 3, 4, 5]) {
    const expected = laplacePerplexity(train, valid, order);
    t.ok(close(row(`laplace-${order}`).perplexity, expected), `laplace-${order}: ${row(`laplace-${order}`).perplexity} = ${expected}`);
  }
  for (const order of [2, 3, 4, 5]) {
    const arpa = join(root, `kn${order}.arpa`);
    writeFileSync(arpa, runOracle(['arpa', '--order', String(order), '--tokenizer', 'whitespace', '--discount-fallback', files.train]));
    const summary = Object.fromEntries(runOracle(['perplexity', '--arpa', arpa, '--tokenizer', 'whitespace', '--no-eos', '--skip-first', files.valid])
      .trim().split('\n').map((line) => line.split('\t')));
    const expected = Number(summary['Perplexity excluding OOVs:']);
    t.ok(Math.abs(row(`kn-${order}`).perplexity - expected) <= 1e-4 * expected, `kn-${order}: ${row(`kn-${order}`).perplexity} = ${expected} (oracle)`);
    t.equal(Number(summary['OOVs:']), oov, `kn-${order}: the oracle's OOVs are the same tokens`);
  }
  // The RNN, stepped naively (one-hot input, one token at a time from a zero state) over the validation tokens.
  const { params, shape } = loadModel(config.out, db);
  const vocab = new Map(vocabTokens(db).map((token, id) => [token, id]));
  const validIds = valid.map((word) => vocab.get(word) ?? 0);
  const logits = referenceLogitsEach(shape, params, validIds.slice(0, -1));
  let sum = 0;
  for (let t = 1; t < valid.length; t++) {
    if (!train.includes(valid[t])) continue; // OOV: left out
    const z = logits[t - 1];
    const max = Math.max(...z);
    sum += z[validIds[t]] - max - Math.log(z.reduce((total, value) => total + Math.exp(value - max), 0));
  }
  const expected = Math.exp(-sum / (valid.length - 1 - oov));
  t.ok(Math.abs(row('rnn').perplexity - expected) <= 1e-5 * expected, `rnn: ${row('rnn').perplexity} = ${expected} (stepped naively)`);
  tf.dispose(Object.values(params));
  t.same(loadEvaluations(db)[0].rows, result.rows, 'the table is saved in the database');
  db.close();
});
