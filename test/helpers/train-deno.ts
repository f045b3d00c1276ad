/**
 * Three training steps of a tiny GRU on each backend that loads, and a few steps of a GRU with 2
 * training workers (`workers`: wasm, worker threads), printed as JSON: run under Deno by
 * test/unit/stages/train/backend.test.ts (`deno run -A test/helpers/train-deno.ts cpu wasm workers`)
 * and compared with Node.
 */
import * as tf from '@tensorflow/tfjs-core';
import { backend, type BackendChoice } from '../../stages/train/index.ts';
import { Rng } from '../../lib/rng.ts';
import { initHidden, initParams, lossAndGradients, type ModelShape } from '../../stages/train/index.ts';
import { applyUpdate, clipGradients, createOptimizer } from '../../stages/train/index.ts';
import { batches, disposeTraining, startTraining, trainStepper } from '../../stages/train/index.ts';
import { DEFAULTS, type Config } from '../../pipeline/config.ts';

/** Losses of three SGD steps and the sum of the final weights, on the active backend. */
export function threeSteps(): { losses: number[]; checksum: number } {
  const shape: ModelShape = { cell: 'gru', vocabSize: 7, hidden: 8, layers: 2 };
  const rng = new Rng(3);
  let params = initParams(shape, rng);
  const optimizer = createOptimizer('sgd', params);
  const window = {
    inputs: Int32Array.from({ length: 12 }, () => rng.int(0, 6)),
    targets: Int32Array.from({ length: 12 }, () => rng.int(0, 6)),
    batchSize: 2, steps: 6,
  };
  const losses: number[] = [];
  for (let i = 0; i < 3; i++) {
    const hidden = initHidden(shape, 2);
    const result = lossAndGradients(params, shape, window, hidden);
    const clipped = clipGradients(result.gradients, 1);
    params = applyUpdate(params, clipped.gradients, optimizer, 1);
    losses.push(result.loss.dataSync()[0]);
    tf.dispose([result.loss, clipped.norm, hidden.flat(), result.hidden.flat(), Object.values(result.gradients), Object.values(clipped.gradients)]);
  }
  const checksum = Object.values(params).reduce((sum, p) => sum + (p.dataSync() as Float32Array).reduce((a, b) => a + b, 0), 0);
  tf.dispose(Object.values(params));
  return { losses, checksum };
}

/** Losses of one epoch of a small GRU trained by 2 data-parallel workers (this thread and one more). */
export async function parallelSteps(backendName: 'cpu' | 'wasm'): Promise<number[]> {
  const rng = new Rng(9);
  const corpus = Int32Array.from({ length: 300 }, () => rng.int(0, 9));
  const config: Config = { ...DEFAULTS, cell: 'gru', hidden: 12, batch: 4, steps: 6, seed: 5, trainWorkers: 2 };
  const sampler = batches(corpus, { sampler: 'sequential', batchSize: config.batch, steps: config.steps, seed: config.seed });
  const s = startTraining(config, { vocabSize: 10, vocabHash: '', trainTokens: corpus.length, validTokens: 0 }, sampler.initialState());
  const stepper = await trainStepper(s, config, backendName, () => {});
  const losses: number[] = [];
  try {
    for (const batch of sampler.epoch(s.sampler)) {
      const loss = await stepper.step(batch, batch.index === 0);
      losses.push(loss.dataSync()[0]);
      loss.dispose();
    }
  } finally {
    stepper.close();
    disposeTraining(s);
  }
  return losses;
}

if (typeof (globalThis as { Deno?: unknown }).Deno !== 'undefined') {
  const args = (globalThis as unknown as { Deno: { args: string[] } }).Deno.args;
  const results: Record<string, unknown> = {};
  for (const name of args) {
    if (name === 'workers') {
      await backend('wasm');
      results.workers = await parallelSteps('wasm');
      continue;
    }
    const info = await backend(name as BackendChoice);
    results[name] = { detail: info.detail, ...threeSteps() };
  }
  console.log(JSON.stringify(results));
}
