import t from 'tap';
import * as tf from '@tensorflow/tfjs-core';
import { backend } from '../../../../stages/train/backend.ts';
import { Rng } from '../../../../lib/rng.ts';
import { initParams, type ModelShape, type Params } from '../../../../stages/train/model.ts';
import { applyUpdate, clipGradients, createOptimizer } from '../../../../stages/train/optim.ts';
import { flatLayout, flatten, fusedUpdate, unflatten, type FlatOptimizer } from '../../../../stages/train/_flat.ts';

await backend('cpu');

const shape: ModelShape = { cell: 'lstm', vocabSize: 6, hidden: 5, layers: 2 };
const layout = flatLayout(shape);
const random = (rng: Rng, scale: number): Params => initParams(shape, { normal: () => rng.normal() * scale });

t.test('flatLayout() places every parameter once, in paramSpecs order; unflatten(flatten(x)) is x', async (t) => {
  const params = random(new Rng(1), 100);
  t.same(layout.names, Object.keys(params));
  t.equal(layout.size, Object.values(params).reduce((n, p) => n + p.size, 0));
  const back = unflatten(layout, flatten(layout, params));
  for (const name of layout.names) t.same(Array.from(back[name].dataSync()), Array.from(params[name].dataSync()), name);
  t.same(back['layer1.W_xi'].shape, [5, 5]);
});

t.test('fusedUpdate() sums weighted gradient rows, clips and steps like clipGradients + applyUpdate', async (t) => {
  for (const name of ['sgd', 'adam'] as const) {
    for (const clip of [0, 1, 1e6]) {
      const rng = new Rng(2);
      let params = random(rng, 100);
      const [a, b] = [random(rng, 10), random(rng, 10)];
      const state = createOptimizer(name, params);
      const flat = flatten(layout, params);
      const optimizer: FlatOptimizer = { name, updates: 0, m: new Float32Array(layout.size), v: new Float32Array(layout.size) };
      const summed = new Float32Array(layout.size);
      const lr = name === 'sgd' ? 0.5 : 0.01;
      for (let step = 0; step < 3; step++) {
        // The oracle: the tensor path on the gradient of the whole batch, 0.25·a + 0.75·b.
        const whole: Params = {};
        for (const key of layout.names) whole[key] = tf.add(tf.mul(a[key], 0.25), tf.mul(b[key], 0.75));
        const clipped = clipGradients(whole, clip);
        const norm = clipped.norm.dataSync()[0];
        params = applyUpdate(params, clipped.gradients, state, lr);
        const fusedNorm = fusedUpdate(flat, [flatten(layout, a), flatten(layout, b)], [0.25, 0.75], summed, optimizer, { lr, clip });
        t.ok(Math.abs(fusedNorm - norm) <= 1e-5 * norm, `${name} clip ${clip}: norm ${fusedNorm} vs ${norm}`);
      }
      const expected = flatten(layout, params);
      const worst = expected.reduce((max, x, i) => Math.max(max, Math.abs(x - flat[i]) / Math.max(Math.abs(x), 1e-3)), 0);
      t.ok(worst < 1e-5, `${name} clip ${clip}: parameters after 3 steps agree (worst relative ${worst.toExponential(2)})`);
      t.equal(optimizer.updates, state.updates);
      if (name === 'adam') {
        const m = flatten(layout, state.slots, undefined, '.m');
        t.ok(m.every((x, i) => Math.abs(x - optimizer.m![i]) <= 1e-5 * Math.max(Math.abs(x), 1e-3)), 'Adam first moments agree');
      }
    }
  }
});
