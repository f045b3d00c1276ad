/**
 * The recurrent language model: parameters, initialisation and the loss with its gradients over one
 * BPTT window, for d2l's rnn, gru and lstm cells (stages/train/_cells.ts) stacked `layers` deep.
 *
 * Input is d2l's one-hot X_t times W_xh. For small vocabularies it is exactly that (a matMul, which
 * XNNPACK runs fast); above 512 tokens it is a row gather of W_x, the same numbers without the
 * [batch, vocab] one-hot, whose gradient is a scatterND that sums the rows of repeated ids. (tf.gather's
 * own gradient needs UnsortedSegmentSum, which wasm lacks and cpu runs once per vocabulary entry.)
 * Everything is computed per time step: see stages/train/_cells.ts.
 *
 *   const params = initParams(shape, new Rng(42).fork('init'));
 *   const { loss, gradients, hidden } = lossAndGradients(params, shape, minibatch, initHidden(shape, 32));
 */
import * as tf from '@tensorflow/tfjs-core';
import { backwardLayer, forwardLayer, GATES, STATE_TENSORS, type Cell, type LayerTape } from './_cells.ts';

export type { Cell } from './_cells.ts';
type T2 = tf.Tensor;

export interface ModelShape {
  cell: Cell;
  vocabSize: number;
  hidden: number;
  layers: number;
}

/** Parameters by name; `paramSpecs(shape)` gives the fixed order. */
export type Params = Record<string, tf.Tensor>;
/** Per layer: [h] (rnn, gru) or [h, c] (lstm), each [batch, hidden]. */
export type Hidden = T2[][];

/** A window of token ids, row-major [batchSize, steps] (row b is one stream). */
export interface Window {
  inputs: Int32Array;
  targets: Int32Array;
  batchSize: number;
  steps: number;
}

export interface ParamSpec {
  name: string;
  shape: number[];
  /** d2l: weights normal × 0.01, biases zero. */
  init: 'normal' | 'zeros';
}

/**
 * The parameters of a model, in order, named as in d2l: for each layer l and each gate g of the cell
 * (stages/train/_cells.ts), layer{l}.W_x{g} [in, H], layer{l}.W_h{g} [H, H], layer{l}.b_{g} [H]; then
 * output.W_q [H, vocab] and output.b_q [vocab]. The first layer's input is the one-hot token.
 */
export function paramSpecs(shape: ModelShape): ParamSpec[] {
  const { cell, vocabSize, hidden, layers } = shape;
  const specs: ParamSpec[] = [];
  for (let l = 0; l < layers; l++) {
    for (const g of GATES[cell]) {
      specs.push(
        { name: `layer${l}.W_x${g}`, shape: [l === 0 ? vocabSize : hidden, hidden], init: 'normal' },
        { name: `layer${l}.W_h${g}`, shape: [hidden, hidden], init: 'normal' },
        { name: `layer${l}.b_${g}`, shape: [hidden], init: 'zeros' },
      );
    }
  }
  specs.push(
    { name: 'output.W_q', shape: [hidden, vocabSize], init: 'normal' },
    { name: 'output.b_q', shape: [vocabSize], init: 'zeros' },
  );
  return specs;
}

/** d2l's initialisation, drawn from `rng` (values made as a Float32Array, so runs are reproducible). */
export function initParams(shape: ModelShape, rng: { normal(): number }): Params {
  const params: Params = {};
  for (const spec of paramSpecs(shape)) {
    const values = new Float32Array(spec.shape.reduce((a, b) => a * b, 1));
    if (spec.init === 'normal') for (let i = 0; i < values.length; i++) values[i] = rng.normal() * 0.01;
    params[spec.name] = tf.tensor(values, spec.shape, 'float32');
  }
  return params;
}

/** A zero state for `batchSize` streams. */
export function initHidden(shape: ModelShape, batchSize: number): Hidden {
  return Array.from({ length: shape.layers }, () =>
    Array.from({ length: STATE_TENSORS[shape.cell] }, () => tf.zeros([batchSize, shape.hidden]) as T2));
}

/**
 * Row-major [batch, steps, width] to time-major [steps·batch, width] (row t·batch + b is stream b at
 * step t); width 1 for token ids.
 */
export function timeMajor<A extends Int32Array | Float32Array>(values: A, batchSize: number, steps: number, width = 1): A {
  const out = new (values.constructor as new (length: number) => A)(values.length);
  for (let b = 0; b < batchSize; b++) {
    for (let t = 0; t < steps; t++) out.set(values.subarray((b * steps + t) * width, (b * steps + t + 1) * width), (t * batchSize + b) * width);
  }
  return out;
}

/** Vocabularies up to this size feed one-hot rows through a matMul (XNNPACK); larger ones gather rows. */
const ONE_HOT_MAX_VOCAB = 512;

export interface GradientOptions {
  /** `xi[t]` scales the gradient from step t into step t−1 (0 truncates); length `steps`. */
  xi?: Float32Array;
  /** How X_t W_x is computed; by default one-hot up to 512 tokens, gather above. Same numbers. */
  input?: 'one-hot' | 'gather';
  /**
   * Dropout: per layer, the factor of each unit of its output h_t where it feeds the layer above or
   * the output layer (0 or 1/(1−p); the recurrence keeps h_t whole), row-major [batch, steps, hidden]
   * like the window's ids.
   */
  masks?: Float32Array[];
}

interface Forward {
  tapes: LayerTape[];
  hidden: Hidden;
  /** Each layer's input above the first, all steps: [steps·batch, H] (the left factor of dW_x). */
  inputs: T2[];
  /** h_t of the top layer per step, [batch, H]. */
  top: T2[];
}

/**
 * Runs the layers over the window. Each layer's input projection X W_x + b is ONE matMul (or gather)
 * over all steps, cut into steps afterwards; only the recurrence runs step by step.
 */
function _forward(params: Params, shape: ModelShape, ids: Int32Array, hidden: Hidden, steps: number, input: 'one-hot' | 'gather', masks?: T2[]): Forward {
  const result: Forward = { tapes: [], hidden: [], inputs: [], top: [] };
  const n = ids.length;
  const gates = GATES[shape.cell];
  for (let l = 0; l < shape.layers; l++) {
    const weight = (kind: string) => gates.map((g) => params[`layer${l}.${kind}${g}`]);
    let project: (wx: T2, b: T2) => T2; // X W_x + b for all steps: [steps·batch, H]
    if (l > 0) {
      const below = _drop(tf.concat(result.top, 0), masks?.[l - 1]);
      result.inputs.push(below);
      project = (wx, b) => tf.fused.matMul({ a: below as tf.Tensor2D, b: wx as tf.Tensor2D, bias: b });
    } else if (input === 'one-hot') {
      const oneHot = tf.tensor2d(_oneHotRows(ids, shape.vocabSize), [n, shape.vocabSize]);
      project = (wx, b) => tf.fused.matMul({ a: oneHot, b: wx as tf.Tensor2D, bias: b });
    } else {
      const rows = tf.tensor1d(ids, 'int32');
      project = (wx, b) => tf.add(tf.gather(wx, rows), b);
    }
    const bias = weight('b_');
    const xw = weight('W_x').map((wx, g) => _splitSteps(project(wx, bias[g]), steps)); // [gate][t]
    const layer = forwardLayer(shape.cell, (t) => xw.map((x) => x[t]), hidden[l], weight('W_h'), steps);
    result.tapes.push(layer.tape);
    result.hidden.push(layer.state);
    result.top = layer.tape.outputs;
  }
  return result;
}

/** [n, vocab] one-hot rows of ids. */
function _oneHotRows(ids: Int32Array, vocabSize: number): Float32Array {
  const rows = new Float32Array(ids.length * vocabSize);
  for (let i = 0; i < ids.length; i++) rows[i * vocabSize + ids[i]] = 1;
  return rows;
}

/** `x` times a dropout mask, or `x` when there is none. */
const _drop = (x: T2, mask: T2 | undefined) => (mask ? tf.mul(x, mask) : x);

/** Softmax of the output layer over all steps, each target's probability and the mean cross-entropy. */
function _softmax(top: T2[], params: Params, targets: Int32Array, mask?: T2) {
  const vocabSize = params['output.W_q'].shape[1]!;
  const hs = _drop(tf.concat(top, 0), mask); // [N, H], time-major
  // wasm runs Softmax in XNNPACK; its Exp kernel is about 7× slower than the whole softmax.
  const logits = tf.fused.matMul({ a: hs as tf.Tensor2D, b: params['output.W_q'] as tf.Tensor2D, bias: params['output.b_q'] });
  const probs = tf.softmax(logits); // [N, V]
  const flat = new Int32Array(targets.length);
  for (let i = 0; i < targets.length; i++) flat[i] = i * vocabSize + targets[i];
  const pTarget = tf.gather(tf.reshape(probs, [-1]), tf.tensor1d(flat, 'int32')); // [N]
  // A probability that underflows float32 would give an infinite loss; 1e-30 caps one token at 69 nats.
  const loss = tf.neg(tf.mean(tf.log(tf.maximum(pTarget, 1e-30)))) as tf.Scalar;
  return { hs, probs, pTarget, loss };
}

/** Mean cross-entropy over the window, and the final state; no gradients (evaluation). */
export function windowLoss(params: Params, shape: ModelShape, window: Window, hidden: Hidden): { loss: tf.Scalar; hidden: Hidden } {
  const { batchSize, steps } = window;
  return tf.tidy(() => {
    const forward = _forward(params, shape, timeMajor(window.inputs, batchSize, steps), hidden, steps, _inputMode(shape));
    const { loss } = _softmax(forward.top, params, timeMajor(window.targets, batchSize, steps));
    return { loss, hidden: forward.hidden };
  });
}

export interface LossAndGradients {
  loss: tf.Scalar;
  gradients: Params;
  /** The final state, to carry into the next window (already detached: no graph is kept). */
  hidden: Hidden;
}

/**
 * Mean cross-entropy over the window and its exact gradient for every parameter, by BPTT through
 * the window. The caller disposes `loss`, `gradients` and the old `hidden`.
 */
export function lossAndGradients(params: Params, shape: ModelShape, window: Window, hidden: Hidden, options: GradientOptions = {}): LossAndGradients {
  const { batchSize, steps } = window;
  const n = batchSize * steps;
  const ids = timeMajor(window.inputs, batchSize, steps);
  const targets = timeMajor(window.targets, batchSize, steps);
  const input = options.input ?? _inputMode(shape);
  return tf.tidy(() => {
    const masks = options.masks?.map((mask) => tf.tensor2d(timeMajor(mask, batchSize, steps, shape.hidden), [n, shape.hidden]));
    const forward = _forward(params, shape, ids, hidden, steps, input, masks);
    const { hs, probs, pTarget, loss } = _softmax(forward.top, params, targets, masks?.[shape.layers - 1]);
    // d loss / d logits = (softmax − onehot) / n; the 1/n goes on the smaller products below.
    const pairs = new Int32Array(2 * n);
    for (let i = 0; i < n; i++) [pairs[2 * i], pairs[2 * i + 1]] = [i, targets[i]];
    const dLogits = tf.tensorScatterUpdate(probs, tf.tensor2d(pairs, [n, 2], 'int32'), tf.sub(pTarget, 1));
    // Column sums as a matMul with a row of ones: wasm's Sum over axis 0 is a strided scalar loop.
    const onesRow = tf.ones([1, n]);
    const columnSums = (x: T2) => tf.reshape(tf.matMul(onesRow, x), [-1]);
    const gradients: Params = {};
    gradients['output.W_q'] = tf.mul(tf.matMul(tf.transpose(hs), dLogits), 1 / n);
    gradients['output.b_q'] = tf.mul(columnSums(dLogits), 1 / n);
    let dOutputs = _splitSteps(_drop(tf.mul(tf.matMul(dLogits, tf.transpose(params['output.W_q'])), 1 / n), masks?.[shape.layers - 1]), steps);
    for (let l = shape.layers - 1; l >= 0; l--) {
      const gates = GATES[shape.cell];
      const name = (kind: string, g: string) => `layer${l}.${kind}${g}`;
      const { dGates, dWh } = backwardLayer(forward.tapes[l], dOutputs, gates.map((g) => params[name('W_h', g)]), options.xi);
      const dGatesAll = dGates.map((d) => tf.concat(d, 0)); // per gate [N, H], time-major like ids
      const belowT = l > 0 ? tf.transpose(forward.inputs[l - 1]) : undefined;
      const oneHotT = l === 0 && input === 'one-hot' ? tf.tensor2d(_oneHotColumns(ids, shape.vocabSize), [shape.vocabSize, n]) : undefined;
      gates.forEach((g, k) => {
        gradients[name('W_h', g)] = dWh[k];
        gradients[name('b_', g)] = columnSums(dGatesAll[k]);
        gradients[name('W_x', g)] = belowT ? tf.matMul(belowT, dGatesAll[k])
          : oneHotT ? tf.matMul(oneHotT, dGatesAll[k])
          // The gradient of a row gather: scatterND adds the rows of repeated ids together.
          : tf.scatterND(tf.tensor2d(ids, [n, 1], 'int32'), dGatesAll[k], params[name('W_x', g)].shape);
      });
      if (l > 0) {
        const dBelow = tf.addN(gates.map((g, k) => tf.matMul(dGatesAll[k], tf.transpose(params[name('W_x', g)]))));
        dOutputs = _splitSteps(_drop(dBelow, masks?.[l - 1]), steps);
      }
    }
    const ordered: Params = {};
    for (const name of Object.keys(params)) ordered[name] = gradients[name];
    return { loss, gradients: ordered, hidden: forward.hidden };
  });
}

/** [vocab, n] with a one in row ids[j] of column j: the transposed one-hot input of the whole window. */
function _oneHotColumns(ids: Int32Array, vocabSize: number): Float32Array {
  const columns = new Float32Array(vocabSize * ids.length);
  for (let j = 0; j < ids.length; j++) columns[ids[j] * ids.length + j] = 1;
  return columns;
}

/**
 * Cuts time-major [steps·batch, W] into per-step [batch, W] tensors. On wasm through one download
 * and per-step uploads, linear in the size: its slice copies the whole input for every piece.
 */
function _splitSteps(x: T2, steps: number): T2[] {
  if (tf.getBackend() !== 'wasm') return tf.split(x, steps, 0);
  const [rows, width] = x.shape;
  const values = x.dataSync() as Float32Array;
  const size = (rows / steps) * width;
  return Array.from({ length: steps }, (_, t) => tf.tensor2d(values.subarray(t * size, (t + 1) * size), [rows / steps, width]));
}

function _inputMode(shape: ModelShape): 'one-hot' | 'gather' {
  return shape.vocabSize <= ONE_HOT_MAX_VOCAB ? 'one-hot' : 'gather';
}

/**
 * One time step for generation: feeds token `ids` [batch] and returns the logits [batch, vocab] and
 * the new state. The caller disposes both and the old state.
 */
export function stepLogits(params: Params, shape: ModelShape, ids: Int32Array, hidden: Hidden): { logits: T2; hidden: Hidden } {
  return tf.tidy(() => {
    const forward = _forward(params, shape, ids, hidden, 1, _inputMode(shape));
    const logits = tf.add(tf.matMul(forward.top[0], params['output.W_q']), params['output.b_q']);
    return { logits, hidden: forward.hidden };
  });
}
