/**
 * The webgpu parity runs: 20 steps of the trainer's own trainStep on tiny models (rnn, gru, lstm ×
 * one-hot and gather input × 1 and 2 layers) on the active backend, with every loss, the final
 * parameters, tf.memory().numTensors after each step and the number of synchronous reads (which a
 * GPU backend must never see). test/unit/stages/train/webgpu.test.ts runs it in-process on Node
 * and, as a script, under Deno:
 *
 *   deno run -A test/helpers/webgpu-parity.ts 0,5 wasm webgpu   # cases 0 and 5; prints {wasm, webgpu}
 */
import * as tf from '@tensorflow/tfjs-core';
import { resolveConfig } from '../../pipeline/config.ts';
import { Rng } from '../../lib/rng.ts';
import { backend, batches, initHidden, startTraining, type BackendChoice, type Cell } from '../../stages/train/index.ts';
import { trainStep } from '../../stages/train/train.ts';

export interface ParityCase {
  cell: Cell;
  layers: number;
  /** The model picks one-hot rows up to 512 tokens and a row gather above: the vocabulary decides. */
  input: 'one-hot' | 'gather';
}

export interface ParityRun {
  losses: number[];
  params: Record<string, number[]>;
  tensorCounts: number[];
  syncReads: number;
}

export const PARITY_STEPS = 20;

export const PARITY_CASES: ParityCase[] = (['rnn', 'gru', 'lstm'] as const).flatMap((cell) =>
  [1, 2].flatMap((layers) => (['one-hot', 'gather'] as const).map((input) => ({ cell, layers, input }))));

/** PARITY_STEPS training steps of `c` (SGD, clipping, random sampler) on the active backend. */
export async function parityRun(c: ParityCase): Promise<ParityRun> {
  const vocabSize = c.input === 'one-hot' ? 11 : 520;
  const config = resolveConfig({ cell: c.cell, layers: c.layers, hidden: 4, batch: 2, steps: 3, lr: 1, clip: 1, optimizer: 'sgd', sampler: 'random', seed: 11 });
  const rng = new Rng(5);
  const corpus = Int32Array.from({ length: 200 }, () => rng.int(0, vocabSize - 1));
  const sampler = batches(corpus, { sampler: 'random', batchSize: config.batch, steps: config.steps, seed: config.seed });
  const data = { vocabSize, vocabHash: '', trainTokens: corpus.length, validTokens: 0 };
  const s = startTraining(config, data, sampler.initialState());
  const gpu = tf.backend() as unknown as { readSync(...args: unknown[]): unknown };
  const readSync = gpu.readSync;
  let syncReads = 0;
  gpu.readSync = (...args) => (syncReads++, readSync.apply(gpu, args));
  const losses: tf.Scalar[] = [];
  const tensorCounts: number[] = [];
  try {
    for (const batch of sampler.epoch(s.sampler)) {
      if (losses.length === PARITY_STEPS) break;
      s.hidden = initHidden(s.shape, batch.batchSize); // the random sampler: a fresh state per minibatch
      losses.push(trainStep(s, batch, config));
      tf.dispose(s.hidden.flat());
      s.hidden = undefined;
      tensorCounts.push(tf.memory().numTensors - losses.length);
    }
  } finally {
    gpu.readSync = readSync;
  }
  const read = await Promise.all([tf.stack(losses), ...Object.values(s.params)].map((t) => t.data()));
  const params = Object.fromEntries(Object.keys(s.params).map((name, i) => [name, Array.from(read[i + 1])]));
  tf.dispose([...losses, ...Object.values(s.params)]);
  return { losses: Array.from(read[0]), params, tensorCounts, syncReads };
}

if (typeof (globalThis as { Deno?: unknown }).Deno !== 'undefined') {
  const [cases, ...names] = (globalThis as unknown as { Deno: { args: string[] } }).Deno.args;
  const results: Record<string, unknown> = {};
  for (const name of names) {
    const info = await backend(name as BackendChoice);
    const runs: ParityRun[] = [];
    for (const i of cases.split(',').map(Number)) runs.push(await parityRun(PARITY_CASES[i]));
    results[name] = { detail: info.detail, runs };
  }
  console.log(JSON.stringify(results));
}
