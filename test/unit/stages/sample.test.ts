import t from 'tap';
import * as tf from '@tensorflow/tfjs-core';
import { join } from 'node:path';
import { backend } from '../../../stages/train/index.ts';
import { readCheckpoint } from '../../../lib/checkpoint.ts';
import { openRunDatabase } from '../../../storage/schema.ts';
import { loadSamples } from '../../../storage/metrics.ts';
import { sample } from '../../../stages/sample.ts';
import { type ModelShape } from '../../../stages/train/index.ts';
import { runPaths } from '../../../storage/run-paths.ts';
import { referenceLogits } from '../../oracles/train-reference.ts';
import { corpusSkip, runStages, smallText, tinyConfig } from '../../helpers/train-fixture.ts';
import { fixedModel } from '../../helpers/fixed-model.ts';

await backend('cpu');

t.test('sample() greedy: keeps the prefix and always picks the most likely token', async (t) => {
  const dir = t.testdir(); // removed when the test ends
  fixedModel(dir, [0.05, 0.1, 0.2, 0.5, 0.15]);
  const result = await sample(dir, { prefix: 'ab a', length: 10, backend: 'cpu' });
  t.match(result, { text: 'ab a' + 'b'.repeat(10), strategy: 'greedy', run: 'fixed', unknown: [], finished: false, endOfText: false });
});

t.test('sample() with temperature T draws from softmax(logits / T), reproducibly from the seed', async (t) => {
  const dir = t.testdir(); // removed when the test ends
  const p = [0.05, 0.1, 0.2, 0.5, 0.15];
  fixedModel(dir, p);
  for (const temperature of [1, 0.5, 2]) {
    const { text, strategy } = await sample(dir, { prefix: 'a', length: 4000, temperature, seed: 9, allowUnk: true, backend: 'cpu' });
    t.equal(strategy, `temperature ${temperature}, seed 9`);
    const generated = text.slice(1);
    const weights = p.map((x) => x ** (1 / temperature));
    const total = weights.reduce((a, b) => a + b, 0);
    ['<unk>', ' ', 'a', 'b', 'c'].forEach((token, id) => {
      if (id === 0) return; // '<unk>' is several characters: counted through the others
      const observed = generated.split(token).length - 1;
      const share = weights[id] / total;
      const tokens = 4000;
      const sd = Math.sqrt(tokens * share * (1 - share));
      t.ok(Math.abs(observed - tokens * share) < 5 * sd, `T ${temperature} '${token}': ${observed} vs ${(tokens * share).toFixed(0)} ± ${sd.toFixed(0)}`);
    });
  }
  const a = await sample(dir, { prefix: 'a', length: 50, temperature: 1, seed: 1, backend: 'cpu' });
  const b = await sample(dir, { prefix: 'a', length: 50, temperature: 1, seed: 1, backend: 'cpu' });
  const c = await sample(dir, { prefix: 'a', length: 50, temperature: 1, seed: 2, backend: 'cpu' });
  t.equal(a.text, b.text, 'same seed, same text');
  t.not(a.text, c.text, 'another seed, another text');
});

t.test('sample() greedy on a trained model is d2l predict_ch8 (warm-up on the prefix, then argmax)', { skip: corpusSkip }, async (t) => {
  const dir = t.testdir(); // removed when the test ends
  const config = tinyConfig(dir, smallText(2500), { epochs: 1, cell: 'lstm', layers: 2, hidden: 16, optimizer: 'adam', lr: 0.02, sampleLength: 20, prefix: 'time traveller' });
  await runStages(config); // through the sample stage
  const saved = readCheckpoint<{ shape: ModelShape }>(runPaths(config.out).trainCheckpoint)!;
  const params = Object.fromEntries(Object.entries(saved.tensors).filter(([n]) => n.startsWith('param/')).map(([n, s]) => [n.slice(6), tf.tensor(s.values, s.shape)]));
  const db = openRunDatabase(join(config.out, 'lmpipe.sqlite'));
  t.teardown(() => db.close());
  const vocab = db.prepare('SELECT token FROM vocab ORDER BY id').all().map((r) => r.token as string);
  // The oracle recomputes every prediction from a zero state over the whole sequence so far.
  const outputs = [...'time traveller'].map((ch) => vocab.indexOf(ch));
  for (let i = 0; i < 20; i++) {
    const logits = referenceLogits(saved.record.shape, params, outputs);
    outputs.push(logits.indexOf(Math.max(...logits)));
  }
  const expected = outputs.map((id) => vocab[id]).join('');
  const stored = loadSamples(db);
  t.equal(stored.length, 1);
  t.match(stored[0], { prefix: 'time traveller', strategy: 'greedy', text: expected });
});

t.test('sample() joins word tokens with spaces and reports prefix words outside the vocabulary', { skip: corpusSkip }, async (t) => {
  const dir = t.testdir(); // removed when the test ends
  const config = tinyConfig(dir, smallText(3000), { tokenizer: 'd2l-word', epochs: 1, hidden: 16, until: 'train' });
  await runStages(config);
  const result = await sample(config.out, { prefix: 'The time zzzqx', length: 5, backend: 'cpu' });
  t.match(result.text, /^the time <unk>( \S+){5}$/);
  t.same(result.unknown, ['zzzqx']);
  t.equal(result.finished, true);
  await t.rejects(sample(config.out, { prefix: '!!!', length: 5, backend: 'cpu' }), { name: 'TypeError', message: /Expected `--prefix` to hold at least one token/ });
  const nowhere = join(dir, 'nowhere');
  await t.rejects(sample(nowhere, { prefix: 'x', length: 1, backend: 'cpu' }), {
    name: 'LmpipeError', code: 'STATE', stage: 'sample', file: join(nowhere, 'lmpipe.sqlite'),
    message: `Expected a run directory holding lmpipe.sqlite, got ${nowhere}; train a model there first (npm run pipeline -- --out ${nowhere})`,
  });
});
