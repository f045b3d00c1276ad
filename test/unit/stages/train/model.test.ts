import t from 'tap';
import * as tf from '@tensorflow/tfjs-core';
import { backend } from '../../../../stages/train/backend.ts';
import { Rng } from '../../../../lib/rng.ts';
import { dropoutMasks, truncationWeights } from '../../../../stages/train/train.ts';
import {
  initHidden, initParams, lossAndGradients, paramSpecs, stepLogits, windowLoss, type ModelShape, type Params, type Window,
} from '../../../../stages/train/model.ts';
import { referenceGradients, referenceLoss } from '../../../oracles/train-reference.ts';

await backend('cpu');

const CELLS = ['rnn', 'gru', 'lstm'] as const;

/** A tiny model with weights large enough (normal × 0.5) that every path carries gradient. */
function tiny(cell: ModelShape['cell'], layers = 1, seed = 1) {
  const shape: ModelShape = { cell, vocabSize: 5, hidden: 4, layers };
  const rng = new Rng(seed);
  const params = initParams(shape, { normal: () => rng.normal() * 50 });
  const batchSize = 3;
  const steps = 6;
  // Repeated ids on purpose: the input gradient must add their rows.
  const window: Window = {
    inputs: Int32Array.from({ length: batchSize * steps }, () => rng.int(0, 2)),
    targets: Int32Array.from({ length: batchSize * steps }, () => rng.int(0, 4)),
    batchSize, steps,
  };
  return { shape, params, window };
}

const flat = (grads: Params) => Float64Array.from(Object.values(grads).flatMap((g) => Array.from(g.dataSync())));
function relativeError(a: Float64Array, b: Float64Array): number {
  let diff = 0, norm = 0;
  for (let i = 0; i < a.length; i++) [diff, norm] = [diff + (a[i] - b[i]) ** 2, norm + b[i] ** 2];
  return Math.sqrt(diff / norm);
}

function gradients(shape: ModelShape, params: Params, window: Window, options: Parameters<typeof lossAndGradients>[4] = {}) {
  const hidden = initHidden(shape, window.batchSize);
  const result = lossAndGradients(params, shape, window, hidden, options);
  const values = { loss: result.loss.dataSync()[0], grads: flat(result.gradients) };
  tf.dispose([result.loss, Object.values(result.gradients), hidden.flat(), result.hidden.flat()]);
  return values;
}

t.test('lossAndGradients equals tfjs autodiff of the naive d2l model (one-hot @ W, per-gate matrices)', async (t) => {
  for (const cell of CELLS) {
    for (const layers of [1, 2]) {
      for (const input of ['one-hot', 'gather'] as const) {
        const { shape, params, window } = tiny(cell, layers);
        const mine = gradients(shape, params, window, { input });
        const reference = referenceGradients(shape, params, window);
        const expectedLoss = referenceLoss(shape, params, window).dataSync()[0];
        t.ok(Math.abs(mine.loss - expectedLoss) < 1e-5, `${cell} ×${layers} loss ${mine.loss} vs ${expectedLoss}`);
        const error = relativeError(mine.grads, flat(reference));
        t.ok(error < 1e-5, `${cell} ×${layers} ${input}: relative error ${error.toExponential(2)}`);
      }
    }
  }
});

t.test('lossAndGradients with truncation weights ξ equals autodiff with the gradient into h_{t-1} scaled by ξ_t', async (t) => {
  const xi = Float32Array.of(1, 2.5, 0, 1, 0.5, 1.25);
  for (const cell of CELLS) {
    const { shape, params, window } = tiny(cell, 2);
    const mine = gradients(shape, params, window, { xi });
    const full = gradients(shape, params, window);
    const error = relativeError(mine.grads, flat(referenceGradients(shape, params, window, xi)));
    t.ok(error < 1e-5, `${cell}: relative error ${error.toExponential(2)}`);
    t.ok(relativeError(mine.grads, full.grads) > 1e-3, `${cell}: ξ changes the gradient`);
  }
});

t.test('lossAndGradients with dropout masks equals autodiff of the naive model with each layer\'s output masked on its way up', async (t) => {
  for (const cell of CELLS) {
    for (const input of ['one-hot', 'gather'] as const) {
      const { shape, params, window } = tiny(cell, 2);
      const masks = dropoutMasks(window, shape, 0.5, new Rng(7));
      t.ok(masks!.every((mask) => mask.some((v) => v === 0) && mask.some((v) => v === 2) && mask.every((v) => v === 0 || v === 2)), 'masks hold 0 and 1/(1-p) only');
      const mine = gradients(shape, params, window, { input, masks });
      const expectedLoss = referenceLoss(shape, params, window, undefined, masks).dataSync()[0];
      t.ok(Math.abs(mine.loss - expectedLoss) < 1e-5, `${cell} ${input}: loss ${mine.loss} vs ${expectedLoss}`);
      const error = relativeError(mine.grads, flat(referenceGradients(shape, params, window, undefined, masks)));
      t.ok(error < 1e-5, `${cell} ${input}: relative error ${error.toExponential(2)}`);
      t.ok(relativeError(mine.grads, gradients(shape, params, window, { input }).grads) > 1e-3, `${cell}: the masks change the gradient`);
    }
  }
  t.equal(dropoutMasks({ batchSize: 2, steps: 3 }, tiny('rnn').shape, 0, new Rng(7)), undefined, 'p = 0: no masks');
});

/** Mean loss of `window` cut into pieces of k steps, each started from the state the unperturbed model reached. */
function truncatedLoss(shape: ModelShape, params: Params, frozen: Params, window: Window, k: number): number {
  let hidden = initHidden(shape, window.batchSize);
  let total = 0;
  for (let start = 0; start < window.steps; start += k) {
    const steps = Math.min(k, window.steps - start);
    const columns = (ids: Int32Array) =>
      Int32Array.from({ length: window.batchSize * steps }, (_, i) => ids[Math.floor(i / steps) * window.steps + start + (i % steps)]);
    const piece = { inputs: columns(window.inputs), targets: columns(window.targets), batchSize: window.batchSize, steps };
    const { loss } = windowLoss(params, shape, piece, hidden);
    total += loss.dataSync()[0] * steps;
    const next = windowLoss(frozen, shape, piece, hidden); // the boundary state does not depend on `params`
    tf.dispose([loss, next.loss, hidden.flat()]);
    hidden = next.hidden;
  }
  tf.dispose(hidden.flat());
  return total / window.steps;
}

t.test('lossAndGradients matches central finite differences, full and with --truncate k', async (t) => {
  // float32: with ε = 1e-2 the O(ε²) error and the rounding error (~1e-7 / ε) are both ~1e-4 of the
  // loss; directional derivatives along random unit directions keep the signal well above that.
  const epsilon = 1e-2;
  for (const cell of CELLS) {
    for (const k of [0, 2]) {
      const { shape, params, window } = tiny(cell, 1, 3);
      const xi = k > 0 ? truncationWeights(window.steps, { truncate: k, truncatePi: 1 }, new Rng(0)) : undefined;
      const { grads } = gradients(shape, params, window, { xi });
      const untruncated = gradients(shape, params, window).grads;
      const rng = new Rng(11);
      let separation = 0;
      for (let trial = 0; trial < 3; trial++) {
        const direction = Object.fromEntries(Object.entries(params).map(([name, p]) => [name, Float32Array.from({ length: p.size }, () => rng.normal())]));
        const norm = Math.sqrt(Object.values(direction).reduce((sum, d) => sum + d.reduce((s, x) => s + x * x, 0), 0));
        const moved = (sign: number) => Object.fromEntries(Object.entries(params).map(([name, p]) => {
          const values = Float32Array.from(p.dataSync(), (x, i) => x + (sign * epsilon * direction[name][i]) / norm);
          return [name, tf.tensor(values, p.shape)];
        }));
        const loss = (shifted: Params) => {
          if (k > 0) return truncatedLoss(shape, shifted, params, window, k);
          const hidden = initHidden(shape, window.batchSize);
          const result = windowLoss(shifted, shape, window, hidden);
          const value = result.loss.dataSync()[0];
          tf.dispose([result.loss, hidden.flat(), result.hidden.flat()]);
          return value;
        };
        const [plus, minus] = [moved(1), moved(-1)];
        const numeric = (loss(plus) - loss(minus)) / (2 * epsilon);
        tf.dispose([Object.values(plus), Object.values(minus)]);
        const along = (g: Float64Array) => {
          let sum = 0;
          let offset = 0;
          for (const d of Object.values(direction)) {
            for (let i = 0; i < d.length; i++) sum += (g[offset + i] * d[i]) / norm;
            offset += d.length;
          }
          return sum;
        };
        const analytic = along(grads);
        t.ok(Math.abs(numeric - analytic) <= 1e-4, `${cell} truncate ${k}: finite difference ${numeric.toFixed(6)} vs ${analytic.toFixed(6)}`);
        separation = Math.max(separation, Math.abs(numeric - along(untruncated)));
      }
      if (k > 0) t.ok(separation > 4e-4, `${cell}: the untruncated gradient would fail (off by ${separation.toExponential(1)})`);
    }
  }
});

t.test('randomized truncation is unbiased: the ξ-weighted mean of gradients over all draws is the full gradient', async (t) => {
  const pi = 0.4;
  for (const cell of CELLS) {
    const { shape, params, window } = tiny(cell, 1, 5);
    const short = { ...window, steps: 4, inputs: window.inputs.subarray(0, 12), targets: window.targets.subarray(0, 12), batchSize: 3 };
    const full = gradients(shape, params, short).grads;
    const expectation = new Float64Array(full.length);
    // ξ_1..ξ_3 each 0 (probability 1 − π) or 1/π (probability π): 8 outcomes, weighted exactly.
    for (let mask = 0; mask < 8; mask++) {
      const xi = Float32Array.of(1, ...[0, 1, 2].map((bit) => ((mask >> bit) & 1 ? 1 / pi : 0)));
      const probability = [0, 1, 2].reduce((p, bit) => p * ((mask >> bit) & 1 ? pi : 1 - pi), 1);
      const { grads } = gradients(shape, params, short, { xi });
      for (let i = 0; i < grads.length; i++) expectation[i] += probability * grads[i];
    }
    const error = relativeError(expectation, full);
    t.ok(error < 1e-5, `${cell}: exact expectation vs full BPTT, relative error ${error.toExponential(2)}`);
  }
});

t.test('randomized truncation as the trainer draws it: mean over many draws matches full BPTT', async (t) => {
  const { shape, params, window } = tiny('rnn', 1, 9);
  const full = gradients(shape, params, window).grads;
  const rng = new Rng(123);
  const draws = 300;
  const sum = new Float64Array(full.length);
  const squares = new Float64Array(full.length);
  for (let n = 0; n < draws; n++) {
    const xi = truncationWeights(window.steps, { truncate: 0, truncatePi: 0.5 }, rng)!;
    const { grads } = gradients(shape, params, window, { xi });
    for (let i = 0; i < grads.length; i++) [sum[i], squares[i]] = [sum[i] + grads[i], squares[i] + grads[i] ** 2];
  }
  // ‖mean − full‖² against its expectation Σ var_i / n: a 5σ-style bound on the whole vector.
  let distance = 0, variance = 0;
  for (let i = 0; i < full.length; i++) {
    const mean = sum[i] / draws;
    distance += (mean - full[i]) ** 2;
    variance += (squares[i] / draws - mean ** 2) / draws;
  }
  t.ok(variance > 0, 'draws differ');
  t.ok(distance < 5 * variance, `squared distance ${distance.toExponential(2)} vs expected ${variance.toExponential(2)}`);
});

t.test('initParams follows d2l: weights normal × 0.01, biases zero, reproducible from the seed', async (t) => {
  const shape: ModelShape = { cell: 'lstm', vocabSize: 30, hidden: 64, layers: 2 };
  const a = initParams(shape, new Rng(42));
  const b = initParams(shape, new Rng(42));
  t.same(Object.keys(a), paramSpecs(shape).map((s) => s.name));
  t.same(Object.keys(a).slice(0, 4), ['layer0.W_xi', 'layer0.W_hi', 'layer0.b_i', 'layer0.W_xf'], "d2l's names, gate by gate");
  t.same(a['layer0.W_xc'].shape, [30, 64]);
  t.same(a['layer1.W_xi'].shape, [64, 64]);
  t.same(a['layer1.W_hc'].shape, [64, 64]);
  t.same(a['output.W_q'].shape, [64, 30]);
  for (const spec of paramSpecs(shape)) {
    const values = a[spec.name].dataSync() as Float32Array;
    t.same(Array.from(values), Array.from(b[spec.name].dataSync()), `${spec.name} reproducible`);
    if (spec.init === 'zeros') {
      t.ok(values.every((v) => v === 0), `${spec.name} zero`);
    } else {
      const mean = values.reduce((s, v) => s + v, 0) / values.length;
      const std = Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / values.length);
      t.ok(Math.abs(mean) < 5 * 0.01 / Math.sqrt(values.length) && Math.abs(std - 0.01) < 0.001, `${spec.name} mean ${mean.toExponential(1)}, std ${std.toFixed(5)}`);
    }
  }
});

t.test('stepLogits one token at a time reaches the state of windowLoss over the whole window', async (t) => {
  for (const cell of CELLS) {
    const { shape, params, window } = tiny(cell, 2);
    const one = { ...window, batchSize: 1, inputs: window.inputs.subarray(0, window.steps), targets: window.targets.subarray(0, window.steps) };
    const whole = windowLoss(params, shape, one, initHidden(shape, 1));
    let hidden = initHidden(shape, 1);
    for (const id of one.inputs) {
      const next = stepLogits(params, shape, Int32Array.of(id), hidden);
      tf.dispose([next.logits, hidden.flat()]);
      hidden = next.hidden;
    }
    const a = Array.from(whole.hidden.flat().flatMap((h) => Array.from(h.dataSync())));
    const b = Array.from(hidden.flat().flatMap((h) => Array.from(h.dataSync())));
    t.ok(a.every((v, i) => Math.abs(v - b[i]) < 1e-6), `${cell}: same final state`);
  }
});
