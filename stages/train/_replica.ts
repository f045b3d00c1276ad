/**
 * One data-parallel replica of the model: it owns a fixed slice of the minibatch's rows [start, end)
 * and, per step, computes the loss and the gradients of those rows against the parameters in
 * shared memory. The main thread runs replica 0 itself and each worker thread (_worker.ts) one more.
 *
 * Shared memory (SharedArrayBuffers made by _parallel.ts), all float32:
 *   params     [P]                            the flat parameters (_flat.ts), read at each step
 *   gradients  [workers, P]                   replica i writes the gradient of its rows' mean loss to row i
 *   hidden     [layers, states, batch, H]     replica i writes its rows' final state after each step
 * Only the main thread writes params, and only while every replica is idle (between steps).
 *
 * A replica keeps its rows' hidden state between steps (the sequential sampler's carried state stays
 * with its rows); `hidden: 'load'` takes it from shared memory instead (a resumed checkpoint).
 */
import * as tf from '@tensorflow/tfjs-core';
import { initHidden, lossAndGradients, type Hidden, type ModelShape, type Params } from './model.ts';
import { STATE_TENSORS } from './_cells.ts';
import { flatLayout, flatten, unflatten } from './_flat.ts';

export interface SharedBuffers {
  params: SharedArrayBuffer;
  gradients: SharedArrayBuffer;
  hidden: SharedArrayBuffer;
}

export interface ReplicaSetup {
  shape: ModelShape;
  /** Rows of a whole minibatch (all replicas). */
  batchSize: number;
  /** This replica's place: its row of the gradient buffer. */
  index: number;
  /** Its rows of the minibatch: [start, end). */
  rows: [number, number];
  buffers: SharedBuffers;
}

export interface ReplicaStep {
  /** Its rows only: [end - start, steps] row-major token ids, as in a Minibatch. */
  inputs: Int32Array;
  targets: Int32Array;
  steps: number;
  xi?: Float32Array;
  /** Its rows of the dropout masks (model.ts GradientOptions.masks). */
  masks?: Float32Array[];
  /** carry: the state this replica left; reset: zeros (a new epoch, the random sampler); load: from shared memory. */
  hidden: 'carry' | 'reset' | 'load';
}

/** Bytes of each shared buffer for `workers` replicas. */
export function sharedSizes(shape: ModelShape, batchSize: number, workers: number) {
  const size = flatLayout(shape).size;
  return { params: 4 * size, gradients: 4 * size * workers, hidden: 4 * shape.layers * STATE_TENSORS[shape.cell] * batchSize * shape.hidden };
}

export function replica(setup: ReplicaSetup): { step(message: ReplicaStep): number; dispose(): void } {
  const { shape, batchSize, index, buffers } = setup;
  const [start, end] = setup.rows;
  const layout = flatLayout(shape);
  const params = new Float32Array(buffers.params);
  const gradients = new Float32Array(buffers.gradients, 4 * index * layout.size, layout.size);
  const hiddenShared = new Float32Array(buffers.hidden);
  const states = STATE_TENSORS[shape.cell];
  // Layer l, state k, row r starts at ((l·states + k)·batch + r)·H.
  const hiddenView = (l: number, k: number) => hiddenShared.subarray(((l * states + k) * batchSize + start) * shape.hidden, ((l * states + k) * batchSize + end) * shape.hidden);
  let hidden: Hidden | undefined;
  const loadHidden = (): Hidden => Array.from({ length: shape.layers }, (_, l) =>
    Array.from({ length: states }, (_, k) => tf.tensor2d(hiddenView(l, k).slice(), [end - start, shape.hidden])));
  return {
    step(message) {
      const weights: Params = unflatten(layout, params);
      const previous = message.hidden === 'carry' && hidden ? hidden : message.hidden === 'load' ? loadHidden() : initHidden(shape, end - start);
      if (hidden && hidden !== previous) tf.dispose(hidden.flat());
      const window = { inputs: message.inputs, targets: message.targets, batchSize: end - start, steps: message.steps };
      const result = lossAndGradients(weights, shape, window, previous, { xi: message.xi, masks: message.masks });
      flatten(layout, result.gradients, gradients);
      result.hidden.forEach((layer, l) => layer.forEach((state, k) => hiddenView(l, k).set(state.dataSync() as Float32Array)));
      const loss = result.loss.dataSync()[0];
      tf.dispose([result.loss, Object.values(result.gradients), Object.values(weights), previous.flat()]);
      hidden = result.hidden;
      return loss;
    },
    dispose() {
      if (hidden) tf.dispose(hidden.flat());
      hidden = undefined;
    },
  };
}
