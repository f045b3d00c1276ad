/**
 * Data-parallel training on worker threads (--train-workers N): N replicas of the model, the main
 * thread's (replica 0) and one per worker thread (_worker.ts, started through lib/workers.ts), each
 * owning a fixed, contiguous slice of the minibatch's rows, so the sequential sampler's carried
 * hidden state stays with its rows. Per step:
 *
 *   1. every replica computes the mean loss and gradients of its rows (_replica.ts) and writes the
 *      gradients to its row of a shared buffer;
 *   2. the main thread sums them in replica order, each weighted by its share of the rows (that is
 *      the gradient of the whole batch's mean loss), then clips by the global norm and applies the
 *      optimizer in one fused pass over the flat parameters in shared memory (_flat.ts);
 *   3. the replicas read the new parameters at their next step.
 *
 * The update runs once, on the main thread, and reaches the workers through shared memory: with
 * the parameters already shared there is nothing to broadcast, and applying it in every replica
 * would repeat the same pass N times. The sum's fixed order makes a run bit-reproducible for a
 * given N; a different N changes only the order of float additions (equal within 1e-5 relative),
 * which is why the worker count is part of the train stage's fingerprint (state.ts).
 *
 * The TrainState's tensors (parameters, Adam's slots, the hidden state) are brought up to date by
 * sync() only when they are needed: before a checkpoint, a validation pass, and at the end.
 */
import * as tf from '@tensorflow/tfjs-core';
import { LmpipeError } from '../../lib/errors.ts';
import { startThread, type WorkerThread } from '../../lib/workers.ts';
import type { BackendName } from './backend.ts';
import type { Minibatch } from './batches.ts';
import type { Hidden } from './model.ts';
import type { TrainState } from './state.ts';
import { flatLayout, flatten, fusedUpdate, unflatten, type FlatOptimizer } from './_flat.ts';
import { replica, sharedSizes, type ReplicaStep, type SharedBuffers } from './_replica.ts';
import { STATE_TENSORS } from './_cells.ts';

/** How the training loop takes a step: on this thread alone (train.ts) or on N replicas (here). */
export interface Stepper {
  /** One optimizer step on `batch`, from a zero state when `reset`; its mean loss, as a tensor the caller disposes. */
  step(batch: Minibatch, reset: boolean): Promise<tf.Scalar> | tf.Scalar;
  /** Makes the TrainState's tensors current (parameters, optimizer slots, hidden state). */
  sync(): void;
  close(): void;
}

const WORKER = new URL('./_worker.ts', import.meta.url);

/** The backends a worker thread can load (the native ones bind to the process, WebGPU to a device). */
export const WORKER_BACKENDS: readonly BackendName[] = ['wasm', 'cpu'];

/** Contiguous row slices [start, end) for `workers` replicas; sizes differ by at most one. */
export function splitRows(batchSize: number, workers: number): [number, number][] {
  return Array.from({ length: workers }, (_, i) => [Math.floor((i * batchSize) / workers), Math.floor(((i + 1) * batchSize) / workers)]);
}

/** Starts `workers` - 1 threads beside this one, loaded with the state `s`; close() stops them. */
export async function parallelStepper(
  s: TrainState,
  options: {
    workers: number; batchSize: number; backend: BackendName; clip: number;
    xi(steps: number): Float32Array | undefined;
    /** The whole minibatch's dropout masks (train.ts dropoutMasks); each replica gets its rows. */
    masks?(batch: Minibatch): Float32Array[] | undefined;
  },
): Promise<Stepper> {
  const { workers, batchSize } = options;
  const { shape } = s;
  const layout = flatLayout(shape);
  const sizes = sharedSizes(shape, batchSize, workers);
  const buffers: SharedBuffers = {
    params: new SharedArrayBuffer(sizes.params), gradients: new SharedArrayBuffer(sizes.gradients), hidden: new SharedArrayBuffer(sizes.hidden),
  };
  const params = flatten(layout, s.params, new Float32Array(buffers.params));
  const gradientRows = Array.from({ length: workers }, (_, i) => new Float32Array(buffers.gradients, 4 * i * layout.size, layout.size));
  const hidden = new Float32Array(buffers.hidden);
  const summed = new Float32Array(layout.size);
  const optimizer: FlatOptimizer = { name: s.optimizer.name, updates: s.optimizer.updates };
  if (optimizer.name === 'adam') {
    optimizer.m = flatten(layout, s.optimizer.slots, undefined, '.m');
    optimizer.v = flatten(layout, s.optimizer.slots, undefined, '.v');
  }
  let load = s.hidden !== undefined; // a checkpoint's state goes to the replicas on the first step
  if (s.hidden) s.hidden.flat().forEach((state, i) => hidden.set(state.dataSync() as Float32Array, i * batchSize * shape.hidden));
  const rows = splitRows(batchSize, workers);
  const share = rows.map(([start, end]) => (end - start) / batchSize);
  const setup = (index: number) => ({ shape, batchSize, index, rows: rows[index], buffers });
  const local = replica(setup(0));
  const threads: WorkerThread[] = [];
  try {
    for (let i = 1; i < workers; i++) threads.push(await startThread(WORKER));
    await Promise.all(threads.map((thread, i) => thread.run({ type: 'init', setup: setup(i + 1), backend: options.backend })));
  } catch (error) {
    threads.forEach((thread) => thread.terminate());
    throw error;
  }
  let dirty = false;
  return {
    async step(batch, reset) {
      const xi = options.xi(batch.steps);
      const masks = options.masks?.(batch);
      if (batch.batchSize !== batchSize) throw new RangeError(`Expected minibatches of ${batchSize} rows, got ${batch.batchSize}`);
      const mode: ReplicaStep['hidden'] = reset ? 'reset' : load ? 'load' : 'carry';
      load = false;
      const message = (i: number): ReplicaStep => {
        const [start, end] = rows[i];
        const cut = (ids: Int32Array) => ids.slice(start * batch.steps, end * batch.steps);
        const width = batch.steps * s.shape.hidden;
        const rowsOf = masks?.map((mask) => mask.slice(start * width, end * width));
        return { inputs: cut(batch.inputs), targets: cut(batch.targets), steps: batch.steps, xi, masks: rowsOf, hidden: mode };
      };
      const replies = threads.map((thread, i) => (thread.run({ type: 'step', ...message(i + 1) }) as Promise<number>).catch((error) => {
        if (error instanceof LmpipeError) throw error;
        throw new LmpipeError('INTERNAL', `Training worker ${i + 1} failed (${error instanceof Error ? error.message.split('\n')[0] : error}); run again to resume from the last checkpoint`, { stage: 'train' });
      }));
      replies.forEach((reply) => reply.catch(() => {})); // awaited below; this only keeps a failure during local.step from going unhandled
      const losses = [local.step(message(0)), ...(await Promise.all(replies))];
      fusedUpdate(params, gradientRows, share, summed, optimizer, { lr: s.lr, clip: options.clip });
      dirty = true;
      return tf.scalar(losses.reduce((total, loss, i) => total + loss * share[i], 0));
    },
    sync() {
      if (!dirty) return;
      dirty = false;
      tf.dispose([...Object.values(s.params), ...Object.values(s.optimizer.slots), ...(s.hidden ?? []).flat()]);
      s.params = unflatten(layout, params);
      s.optimizer.updates = optimizer.updates;
      s.optimizer.slots = {};
      if (optimizer.m && optimizer.v) {
        const [m, v] = [unflatten(layout, optimizer.m, '.m'), unflatten(layout, optimizer.v, '.v')];
        for (const name of layout.names) Object.assign(s.optimizer.slots, { [`${name}.m`]: m[`${name}.m`], [`${name}.v`]: v[`${name}.v`] });
      }
      s.hidden = sharedHidden(hidden, shape.layers, STATE_TENSORS[shape.cell], batchSize, shape.hidden);
    },
    close() {
      threads.forEach((thread) => thread.terminate());
      local.dispose();
    },
  };
}

/** The whole batch's state from shared memory, as tensors [batch, H] per layer and state. */
function sharedHidden(hidden: Float32Array, layers: number, states: number, batchSize: number, width: number): Hidden {
  const size = batchSize * width;
  return Array.from({ length: layers }, (_, l) => Array.from({ length: states }, (_, k) =>
    tf.tensor2d(hidden.slice((l * states + k) * size, (l * states + k + 1) * size), [batchSize, width])));
}
