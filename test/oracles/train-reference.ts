/**
 * An independent oracle for the trainer's hand-written BPTT: d2l's models written the naive way
 * (one-hot X_t @ W_x, one time step at a time, cross-entropy from logSoftmax) and differentiated by
 * tfjs's own autodiff (tf.grads). Truncation is a customGrad that scales the gradient passing into
 * h_{t−1} by ξ_t and leaves the value alone. Slow, cpu only: for tests on tiny models.
 */
import * as tf from '@tensorflow/tfjs-core';
// The union package registers every op's gradient (tfjs-core alone registers none) for tf.grads.
import '@tensorflow/tfjs';
import type { ModelShape, Params, Window } from '../../stages/train/index.ts';

/** Identity forward; gradient times `scale` (0 stops it). */
const scaleGradient = (x: tf.Tensor, scale: number) =>
  tf.customGrad(((input: tf.Tensor) => ({ value: tf.clone(input), gradFunc: (dy: tf.Tensor) => tf.mul(dy, scale) })) as unknown as Parameters<typeof tf.customGrad>[0])(x);

function cellStep(cell: ModelShape['cell'], x: tf.Tensor, state: tf.Tensor[], p: Record<string, tf.Tensor>, l: number) {
  const [h, c] = state;
  // d2l's scratch code, gate by gate: X W_xg + H W_hg + b_g.
  const gate = (g: string, hIn: tf.Tensor = h) =>
    tf.add(tf.add(tf.matMul(x, p[`layer${l}.W_x${g}`]), tf.matMul(hIn, p[`layer${l}.W_h${g}`])), p[`layer${l}.b_${g}`]);
  if (cell === 'rnn') return [tf.tanh(gate('h'))];
  if (cell === 'gru') {
    const z = tf.sigmoid(gate('z'));
    const r = tf.sigmoid(gate('r'));
    const candidate = tf.tanh(gate('h', tf.mul(r, h)));
    return [tf.add(tf.mul(z, h), tf.mul(tf.sub(1, z), candidate))];
  }
  const i = tf.sigmoid(gate('i')), f = tf.sigmoid(gate('f')), o = tf.sigmoid(gate('o')), candidate = tf.tanh(gate('c'));
  const cNew = tf.add(tf.mul(f, c), tf.mul(i, candidate));
  return [tf.mul(o, tf.tanh(cNew)), cNew];
}

/**
 * Mean cross-entropy of the window, computed naively. `xi[t]` scales the gradient into step t−1;
 * `masks[l]` (row-major [batch, steps, hidden]) multiplies layer l's output where it goes up, the
 * recurrence keeping it whole (dropout).
 */
export function referenceLoss(shape: ModelShape, p: Record<string, tf.Tensor>, window: Window, xi?: Float32Array, masks?: Float32Array[]): tf.Scalar {
  const { batchSize, steps } = window;
  let states: tf.Tensor[][] = Array.from({ length: shape.layers }, () =>
    Array.from({ length: shape.cell === 'lstm' ? 2 : 1 }, () => tf.zeros([batchSize, shape.hidden])));
  const losses: tf.Tensor[] = [];
  for (let t = 0; t < steps; t++) {
    if (t > 0 && xi && xi[t] !== 1) states = states.map((s) => s.map((x) => scaleGradient(x, xi[t])));
    const column = (ids: Int32Array) => tf.tensor1d(Array.from({ length: batchSize }, (_, b) => ids[b * steps + t]), 'int32');
    let x = tf.cast(tf.oneHot(column(window.inputs), shape.vocabSize), 'float32');
    for (let l = 0; l < shape.layers; l++) {
      states[l] = cellStep(shape.cell, x, states[l], p, l);
      x = states[l][0];
      const mask = masks?.[l];
      if (mask) {
        const rows = Array.from({ length: batchSize }, (_, b) => Array.from(mask.subarray((b * steps + t) * shape.hidden, (b * steps + t + 1) * shape.hidden)));
        x = tf.mul(x, tf.tensor2d(rows));
      }
    }
    const logits = tf.add(tf.matMul(x, p['output.W_q']), p['output.b_q']);
    const targets = tf.cast(tf.oneHot(column(window.targets), shape.vocabSize), 'float32');
    losses.push(tf.neg(tf.sum(tf.mul(tf.logSoftmax(logits), targets))));
  }
  return tf.div(tf.addN(losses), batchSize * steps) as tf.Scalar;
}

/** Gradients of referenceLoss by tfjs autodiff, in the order of `params`. */
export function referenceGradients(shape: ModelShape, params: Params, window: Window, xi?: Float32Array, masks?: Float32Array[]): Params {
  const names = Object.keys(params);
  return tf.tidy(() => {
    const f = (...tensors: tf.Tensor[]) => referenceLoss(shape, Object.fromEntries(names.map((n, i) => [n, tensors[i]])), window, xi, masks);
    const grads = tf.grads(f)(names.map((n) => params[n]));
    return Object.fromEntries(names.map((n, i) => [n, grads[i]]));
  });
}

/** Logits [1, vocab] after feeding each of `ids` in turn from a zero state, computed naively. */
export function referenceLogitsEach(shape: ModelShape, p: Record<string, tf.Tensor>, ids: number[]): Float32Array[] {
  return tf.tidy(() => {
    let states: tf.Tensor[][] = Array.from({ length: shape.layers }, () =>
      Array.from({ length: shape.cell === 'lstm' ? 2 : 1 }, () => tf.zeros([1, shape.hidden])));
    const out: Float32Array[] = [];
    for (const id of ids) {
      let x = tf.cast(tf.oneHot(tf.tensor1d([id], 'int32'), shape.vocabSize), 'float32');
      for (let l = 0; l < shape.layers; l++) {
        states[l] = cellStep(shape.cell, x, states[l], p, l);
        x = states[l][0];
      }
      states = [...states];
      out.push(tf.add(tf.matMul(x, p['output.W_q']), p['output.b_q']).dataSync() as Float32Array);
    }
    return out;
  });
}

/** Logits [1, vocab] after feeding `ids` one at a time from a zero state, computed naively. */
export function referenceLogits(shape: ModelShape, p: Record<string, tf.Tensor>, ids: number[]): Float32Array {
  return referenceLogitsEach(shape, p, ids).at(-1) ?? new Float32Array(shape.vocabSize);
}
