/**
 * The model's parameters (and gradients, and Adam's slots) as ONE flat Float32Array, in
 * paramSpecs order: what the data-parallel trainer (stages/train/_parallel.ts) keeps in shared
 * memory, sums across workers and updates in a single fused pass, instead of a handful of small
 * tensor ops per parameter.
 *
 *   const layout = flatLayout(shape);                  // names, shapes, offsets, size
 *   const flat = flatten(layout, params);              // Float32Array(layout.size)
 *   fusedUpdate(flat, [gradients0, gradients1], [0.5, 0.5], scratch, optimizer, { lr: 1, clip: 1 });
 *
 * The arithmetic is optim.ts's (clipping by global norm, SGD, Adam with the same constants) on
 * plain numbers, rounded to float32 where a tensor would be: equal to the tensor path within float
 * rounding, not bit for bit.
 */
import * as tf from '@tensorflow/tfjs-core';
import { paramSpecs, type ModelShape, type Params } from './model.ts';
import { ADAM } from './optim.ts';
import type { OptimizerName } from '../../pipeline/config.ts';

export interface FlatLayout {
  names: string[];
  shapes: number[][];
  /** Where each parameter starts in the flat vector; offsets[i + 1] - offsets[i] is its size. */
  offsets: number[];
  size: number;
}

export function flatLayout(shape: ModelShape): FlatLayout {
  const specs = paramSpecs(shape);
  const offsets = [0];
  for (const spec of specs) offsets.push(offsets[offsets.length - 1] + spec.shape.reduce((a, b) => a * b, 1));
  return { names: specs.map((s) => s.name), shapes: specs.map((s) => s.shape), offsets, size: offsets[specs.length] };
}

/** Copies named tensors (`${name}${suffix}`) into `into` (a fresh array by default). */
export function flatten<B extends ArrayBufferLike = ArrayBuffer>(layout: FlatLayout, tensors: Params, into: Float32Array<B> = new Float32Array(layout.size) as Float32Array<B>, suffix = ''): Float32Array<B> {
  layout.names.forEach((name, i) => into.set(tensors[name + suffix].dataSync() as Float32Array, layout.offsets[i]));
  return into;
}

/** Fresh tensors from `flat`, named `${name}${suffix}`. Values are copied: `flat` may be shared memory that changes. */
export function unflatten(layout: FlatLayout, flat: Float32Array, suffix = ''): Params {
  const tensors: Params = {};
  layout.names.forEach((name, i) => {
    tensors[name + suffix] = tf.tensor(flat.slice(layout.offsets[i], layout.offsets[i + 1]), layout.shapes[i], 'float32');
  });
  return tensors;
}

/** Adam's moments as flat vectors; SGD has none. */
export interface FlatOptimizer {
  name: OptimizerName;
  updates: number;
  m?: Float32Array;
  v?: Float32Array;
}

/**
 * g = Σ_i weights[i]·gradients[i] (rows added in order: reproducible), written to `summed`; then
 * g ← min(1, θ/‖g‖)·g (θ = clip; 0 leaves g alone) and one SGD or Adam step on `params`, in place.
 * Two passes over the vectors: the weighted sum with the norm, then the update. Returns ‖g‖.
 */
export function fusedUpdate(params: Float32Array, gradients: Float32Array[], weights: number[], summed: Float32Array, optimizer: FlatOptimizer, options: { lr: number; clip: number }): number {
  const norm = Math.sqrt(weightedSum(gradients, weights, summed));
  // Math.fround: the tensor path computes the factor in float32 too.
  const factor = options.clip === 0 ? 1 : Math.min(1, Math.fround(options.clip / Math.fround(norm)));
  const { lr } = options;
  optimizer.updates++;
  if (optimizer.name === 'sgd') {
    for (let i = 0; i < params.length; i++) params[i] -= Math.fround(summed[i] * factor) * lr;
    return norm;
  }
  const { beta1, beta2, epsilon } = ADAM;
  const correction1 = 1 - beta1 ** optimizer.updates;
  const correction2 = 1 - beta2 ** optimizer.updates;
  const m = optimizer.m!;
  const v = optimizer.v!;
  for (let i = 0; i < params.length; i++) {
    const g = Math.fround(summed[i] * factor);
    m[i] = m[i] * beta1 + g * (1 - beta1);
    v[i] = v[i] * beta2 + g * g * (1 - beta2);
    params[i] -= (m[i] / correction1 / (Math.sqrt(v[i] / correction2) + epsilon)) * lr;
  }
  return norm;
}

/** summed = Σ_i weights[i]·rows[i], rounded to float32 once per element; returns Σ summed². */
function weightedSum(rows: Float32Array[], weights: number[], summed: Float32Array): number {
  let squares = 0;
  if (rows.length === 2) {
    // Two replicas (two cores) is the common case, and this loop runs about twice as fast.
    const [a, b] = rows;
    const [wa, wb] = weights;
    for (let j = 0; j < summed.length; j++) {
      const g = Math.fround(wa * a[j] + wb * b[j]);
      summed[j] = g;
      squares += g * g;
    }
    return squares;
  }
  for (let j = 0; j < summed.length; j++) {
    let g = 0;
    for (let i = 0; i < rows.length; i++) g += weights[i] * rows[i][j];
    summed[j] = g;
    squares += summed[j] * summed[j];
  }
  return squares;
}
