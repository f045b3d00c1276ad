import t from 'tap';
import * as tf from '@tensorflow/tfjs-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backend } from '../../../../stages/train/backend.ts';
import { readCheckpoint } from '../../../../lib/checkpoint.ts';
import type { Config } from '../../../../pipeline/config.ts';
import { Rng } from '../../../../lib/rng.ts';
import { loadMetrics } from '../../../../storage/metrics.ts';
import { openRunDatabase } from '../../../../storage/schema.ts';
import { loadStage } from '../../../../storage/stages.ts';
import { truncationWeights } from '../../../../stages/train/train.ts';
import { applyUpdate, clipGradients, createOptimizer } from '../../../../stages/train/optim.ts';
import { runPaths } from '../../../../storage/run-paths.ts';
import { corpusSkip, runStages, smallText, tinyConfig } from '../../../helpers/train-fixture.ts';

await backend('cpu');

async function trained(t: { teardown(fn: () => void): void }, settings: Partial<Config>, chars = 3000) {
  const base = mkdtempSync(join(tmpdir(), 'lmpipe-train-'));
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  const config = tinyConfig(base, smallText(chars), settings);
  const events = await runStages({ ...config, until: 'train' });
  const db = openRunDatabase(join(config.out, 'lmpipe.sqlite'));
  t.teardown(() => db.close());
  return { config, events, db };
}

t.test('train lowers perplexity and records metrics, the run and its backend', { skip: corpusSkip }, async (t) => {
  const { config, events, db } = await trained(t, { epochs: 4, hidden: 32, lr: 1, clip: 1 }, 5000);
  const stage = loadStage(db, 'train')!;
  t.equal(stage.state, 'done');
  const run = String(stage.checkpoint.run);
  const rows = loadMetrics(db, run);
  t.same(rows.map((r) => `${r.epoch}${r.split}`), ['1train', '1valid', '2train', '2valid', '3train', '3valid', '4train', '4valid']);
  for (const row of rows) {
    t.ok(Math.abs(row.perplexity - Math.exp(row.loss)) < 1e-9 * row.perplexity, 'perplexity = exp(loss)');
    t.equal(row.tokensPerSecond === null, row.split === 'valid');
  }
  const train = rows.filter((r) => r.split === 'train');
  t.ok(train[3].perplexity < train[0].perplexity, `train perplexity falls: ${train.map((r) => r.perplexity.toFixed(2))}`);
  // An untrained model guesses about uniformly: its perplexity is the vocabulary size.
  const vocabSize = Number(db.prepare('SELECT count(*) AS n FROM vocab').get()!.n);
  t.ok(train[0].perplexity < 0.9 * vocabSize, `epoch 1 (${train[0].perplexity.toFixed(2)}) is clearly below a uniform guess over the ${vocabSize} tokens`);
  t.ok(train[3].perplexity < 0.75 * vocabSize, `epoch 4 (${train[3].perplexity.toFixed(2)}) is well below it`);
  t.match(db.prepare('SELECT run, backend, config FROM runs').all(), [{ run, backend: 'cpu', config: /"hidden":32/ }]);
  const epochs = events.filter((e) => e.unit === 'epochs');
  t.equal(epochs.length, 4);
  t.match(epochs[3], { done: 4, total: 4, message: /^epoch 4\/4: train ppl \d+\.\d\d, valid ppl \d+\.\d\d, [\d,]+ tok\/s$/ });
  t.match(epochs[3].data, { epoch: 4, trainPerplexity: train[3].perplexity });
  t.equal(readCheckpoint<{ step: number }>(runPaths(config.out).trainCheckpoint)!.record.step, train[3].step);
});

t.test('train runs gru and lstm cells two layers deep with Adam', { skip: corpusSkip }, async (t) => {
  for (const cell of ['gru', 'lstm'] as const) {
    const { db } = await trained(t, { cell, layers: 2, optimizer: 'adam', lr: 0.01, epochs: 2, hidden: 16 });
    const rows = db.prepare("SELECT perplexity FROM metrics WHERE split = 'train' ORDER BY epoch").all();
    t.ok(rows[1].perplexity < rows[0].perplexity, `${cell}: ${rows.map((r) => r.perplexity.toFixed(2))}`);
  }
});

/** The lr a run should end with: ÷4 at each epoch whose validation loss is no better than the best, then × decay. */
async function finalLr(t: Parameters<typeof trained>[0], settings: Partial<Config>) {
  const { config } = await trained(t, settings);
  const { record } = readCheckpoint<{ lr: number; history: { split: string; loss: number }[] }>(runPaths(config.out).trainCheckpoint)!;
  let lr = config.lr;
  let best = Infinity;
  for (const row of record.history.filter((r) => r.split === 'valid')) {
    if (config.annealLr && best !== Infinity && row.loss >= best) lr /= 4;
    best = Math.min(best, row.loss);
    lr *= config.lrDecay;
  }
  return { actual: record.lr, expected: lr };
}

t.test('--anneal-lr divides lr by 4 at each epoch whose validation loss does not improve on the best', { skip: corpusSkip }, async (t) => {
  const { actual, expected } = await finalLr(t, { annealLr: true, lr: 40, epochs: 5, clip: 0 });
  t.equal(actual, expected);
  t.ok(expected < 40, `a too-large lr gets annealed (to ${expected})`);
});

t.test('--lr-decay multiplies lr by its factor at each epoch end, after --anneal-lr', { skip: corpusSkip }, async (t) => {
  const { actual, expected } = await finalLr(t, { annealLr: true, lrDecay: 0.5, lr: 40, epochs: 3, clip: 0 });
  t.equal(actual, expected);
  t.ok(expected <= 40 / 8, `three epochs halve it three times at least (${expected})`);
});

t.test('truncationWeights: zeros every k steps, and 1/π with probability π', async (t) => {
  t.same(Array.from(truncationWeights(7, { truncate: 3, truncatePi: 1 }, new Rng(1))!), [1, 1, 1, 0, 1, 1, 0]);
  t.equal(truncationWeights(7, { truncate: 0, truncatePi: 1 }, new Rng(1)), undefined);
  const rng = new Rng(2);
  let kept = 0, total = 0, sum = 0, odd = 0;
  for (let i = 0; i < 2000; i++) {
    const xi = truncationWeights(6, { truncate: 0, truncatePi: 0.25 }, rng)!;
    odd += xi[0] === 1 && xi.subarray(1).every((v) => v === 0 || v === 4) ? 0 : 1;
    for (const v of xi.subarray(1)) [kept, total, sum] = [kept + (v !== 0 ? 1 : 0), total + 1, sum + v];
  }
  t.equal(odd, 0, 'ξ_0 is 1, the others 0 or 1/π');
  t.ok(Math.abs(kept / total - 0.25) < 0.02, `kept ${kept / total}`);
  t.ok(Math.abs(sum / total - 1) < 0.08, `mean ξ ${sum / total}`);
  const both = truncationWeights(6, { truncate: 2, truncatePi: 0.5 }, new Rng(3))!;
  t.ok(both[2] === 0 && both[4] === 0, 'truncate wins over the draw');
});

t.test('clipGradients scales by min(1, θ/‖g‖) over all gradients together', async (t) => {
  const g = { a: tf.tensor1d([3, 0]), b: tf.tensor2d([[0, 4]]) }; // ‖g‖ = 5
  const clipped = clipGradients(g, 1);
  t.equal(clipped.norm.dataSync()[0], 5);
  t.same(Array.from(clipped.gradients.a.dataSync()), [Math.fround(3 / 5), 0]);
  t.same(Array.from(clipped.gradients.b.dataSync()), [0, Math.fround(4 / 5)]);
  t.same(Array.from(clipGradients(g, 10).gradients.a.dataSync()), [3, 0], 'below θ: unchanged');
  t.same(Array.from(clipGradients(g, 0).gradients.b.dataSync()), [0, 4], 'θ = 0: off');
  t.same(Array.from(clipGradients({ a: tf.zeros([2]) }, 1).gradients.a.dataSync()), [0, 0], 'a zero gradient stays zero');
});

t.test('applyUpdate: SGD is p − lr·g; Adam follows PyTorch (bias-corrected moments)', async (t) => {
  const p0 = [0.5, -1, 2];
  const grads = [[0.1, -0.2, 0.3], [0.3, 0.1, -0.5], [-0.2, 0.4, 0.05]];
  let sgd = { w: tf.tensor1d(p0) } as Record<string, tf.Tensor>;
  const sgdState = createOptimizer('sgd', sgd);
  sgd = applyUpdate(sgd, { w: tf.tensor1d(grads[0]) }, sgdState, 0.5);
  t.same(Array.from(sgd.w.dataSync()), p0.map((p, i) => Math.fround(p - Math.fround(0.5 * grads[0][i]))));

  let adam = { w: tf.tensor1d(p0) } as Record<string, tf.Tensor>;
  const adamState = createOptimizer('adam', adam);
  const expected = [...p0];
  const m = [0, 0, 0], v = [0, 0, 0];
  grads.forEach((g, step) => {
    adam = applyUpdate(adam, { w: tf.tensor1d(g) }, adamState, 0.01);
    for (let i = 0; i < 3; i++) {
      m[i] = 0.9 * m[i] + 0.1 * g[i];
      v[i] = 0.999 * v[i] + 0.001 * g[i] ** 2;
      expected[i] -= (0.01 * (m[i] / (1 - 0.9 ** (step + 1)))) / (Math.sqrt(v[i] / (1 - 0.999 ** (step + 1))) + 1e-8);
    }
  });
  const got = Array.from(adam.w.dataSync());
  t.ok(got.every((x, i) => Math.abs(x - expected[i]) < 1e-6), `${got} vs ${expected}`);
  t.equal(adamState.updates, 3);
  t.same(Object.keys(adamState.slots), ['w.m', 'w.v']);
});
