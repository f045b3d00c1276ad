/**
 * Gradient clipping by global norm and the two optimizers, as pure functions from tensors to new
 * tensors (no tf.Variable), so that parameters and slots are plain named tensors that go into a
 * checkpoint as they are.
 *
 *   const optimizer = createOptimizer('adam', params);
 *   const { gradients: clipped } = clipGradients(gradients, 1);
 *   params = applyUpdate(params, clipped, optimizer, 0.001);   // disposes the old params
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from './model.ts';

import type { OptimizerName } from '../../pipeline/config.ts';
export type { OptimizerName };

export interface OptimizerState {
  name: OptimizerName;
  /** Updates applied so far (Adam's bias correction uses it). */
  updates: number;
  /** Adam: `${param}.m` and `${param}.v`; SGD: none. */
  slots: Params;
}

export const ADAM = { beta1: 0.9, beta2: 0.999, epsilon: 1e-8 };

export function createOptimizer(name: OptimizerName, params: Params): OptimizerState {
  const slots: Params = {};
  if (name === 'adam') {
    for (const [key, value] of Object.entries(params)) {
      slots[`${key}.m`] = tf.zerosLike(value);
      slots[`${key}.v`] = tf.zerosLike(value);
    }
  }
  return { name, updates: 0, slots };
}

/**
 * g ← min(1, θ/‖g‖)·g over all gradients together (d2l's grad_clipping); θ = 0 leaves them alone.
 * Returns new tensors (the caller disposes the inputs) and the norm before clipping.
 */
export function clipGradients(gradients: Params, theta: number): { gradients: Params; norm: tf.Scalar } {
  return tf.tidy(() => {
    const squares = Object.values(gradients).map((g) => tf.sum(tf.square(g)));
    const norm = tf.sqrt(_addAll(squares)) as tf.Scalar;
    if (theta === 0) return { gradients: _map(gradients, (g) => tf.clone(g)), norm };
    // θ/0 is Infinity, so a zero gradient keeps a factor of 1.
    const factor = tf.minimum(1, tf.div(theta, norm));
    return { gradients: _map(gradients, (g) => tf.mul(g, factor)), norm };
  });
}

/** One optimizer step with learning rate `lr`. Disposes the old params and slots; returns the new params. */
export function applyUpdate(params: Params, gradients: Params, state: OptimizerState, lr: number): Params {
  state.updates++;
  const old = [...Object.values(params), ...Object.values(state.slots)];
  const next = tf.tidy(() => {
    if (state.name === 'sgd') return { params: _map(params, (p, key) => tf.sub(p, tf.mul(gradients[key], lr))), slots: {} };
    const { beta1, beta2, epsilon } = ADAM;
    const slots: Params = {};
    const correction1 = 1 - beta1 ** state.updates;
    const correction2 = 1 - beta2 ** state.updates;
    const updated = _map(params, (p, key) => {
      const g = gradients[key];
      const m = tf.add(tf.mul(state.slots[`${key}.m`], beta1), tf.mul(g, 1 - beta1));
      const v = tf.add(tf.mul(state.slots[`${key}.v`], beta2), tf.mul(tf.square(g), 1 - beta2));
      slots[`${key}.m`] = m;
      slots[`${key}.v`] = v;
      const step = tf.div(tf.div(m, correction1), tf.add(tf.sqrt(tf.div(v, correction2)), epsilon));
      return tf.sub(p, tf.mul(step, lr));
    });
    return { params: updated, slots };
  });
  tf.dispose(old);
  state.slots = next.slots;
  return next.params;
}

/**
 * Σ tensors, left to right, in AddN calls of at most 7 inputs: webgpu's AddN binds a storage buffer
 * per input and one for its output, and WebGPU guarantees only 8 per shader stage (a 2-layer LSTM has
 * 26 parameters). In order, so cpu and wasm, whose AddN adds left to right, give the numbers of one AddN.
 */
function _addAll(tensors: tf.Tensor[]): tf.Tensor {
  let total = tf.addN(tensors.slice(0, 7));
  for (let i = 7; i < tensors.length; i += 6) total = tf.addN([total, ...tensors.slice(i, i + 6)]);
  return total;
}

function _map(params: Params, fn: (tensor: tf.Tensor, key: string) => tf.Tensor): Params {
  const out: Params = {};
  for (const [key, value] of Object.entries(params)) out[key] = fn(value, key);
  return out;
}
