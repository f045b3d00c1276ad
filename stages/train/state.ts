/**
 * Everything a training run is at one moment, and its checkpoint: parameters, optimizer slots, the
 * carried hidden state, the sampler's state, the truncation and dropout generators, step, lr, the best validation
 * loss, the current epoch's running sums and every epoch's metrics so far. Saved as ONE file
 * (lib/checkpoint.ts), so a resumed run continues with exactly the numbers it stopped with and,
 * on the same backend, reproduces an uninterrupted run bit for bit.
 */
import * as tf from '@tensorflow/tfjs-core';
import { availableParallelism } from 'node:os';
import type { Config } from '../../pipeline/config.ts';
import { readCheckpoint, readCheckpointRecord, writeCheckpoint, type StoredTensor } from '../../lib/checkpoint.ts';
import { LmpipeError } from '../../lib/errors.ts';
import { Rng, type RngState } from '../../lib/rng.ts';
import type { MetricRow } from '../../storage/metrics.ts';
import type { SamplerState } from './batches.ts';
import { initParams, paramSpecs, type Hidden, type ModelShape, type Params } from './model.ts';
import { createOptimizer, type OptimizerState } from './optim.ts';


/** The settings that decide a training's numbers (the train stage's fingerprint). Not the backend. */
export function trainSettings(config: Config) {
  const { cell, hidden, layers, epochs, lr, optimizer, annealLr, clip, truncate, truncatePi, seed, sampler, batch, steps, dropout, lrDecay } = config;
  return {
    cell, hidden, layers, epochs, lr, optimizer, annealLr, clip, truncate, truncatePi, seed, sampler, batch, steps, trainWorkers: trainWorkerCount(config),
    // Only when on: the runs trained before these settings existed keep their fingerprints.
    ...(dropout > 0 ? { dropout } : {}),
    ...(lrDecay !== 1 ? { lrDecay } : {}),
  };
}

/**
 * Multiply-adds of one minibatch's recurrence (batch · steps · hidden²) below which a model trains
 * on one thread when --train-workers is 0 (auto). A heuristic: each replica pays every op's fixed
 * cost (about 10-20 µs on wasm, some 350 ops a step for one rnn layer), so a model whose step is a
 * few milliseconds of arithmetic gains little from a second core. d2l's setting is 2^28.
 */
const PARALLEL_MIN_WORK = 2 ** 23;

/** --train-workers resolved: 0 (auto) is one per core, at most one per 8 rows, 1 for small models. */
export function trainWorkerCount(config: Pick<Config, 'trainWorkers' | 'batch' | 'steps' | 'hidden'>): number {
  if (config.trainWorkers > 0) return Math.min(config.trainWorkers, config.batch);
  if (config.batch * config.steps * config.hidden ** 2 < PARALLEL_MIN_WORK) return 1;
  return Math.max(1, Math.min(availableParallelism(), Math.floor(config.batch / 8)));
}

type TrainSettings = ReturnType<typeof trainSettings>;

/**
 * "More of the same": a finished or stopped run continues from its checkpoint when --epochs alone
 * was raised, as every trainer does (the epochs already done are exactly those of the longer run:
 * each epoch's minibatches come from the generator state saved with it). Returns "epochs 30 -> 40",
 * or undefined when anything else changed and training starts over.
 */
export function moreEpochs(before: unknown, now: unknown): string | undefined {
  const [old, next] = [before as TrainSettings, now as TrainSettings];
  if (!(next.epochs > old?.epochs)) return undefined;
  return _differences({ ...old, epochs: 0 }, { ...next, epochs: 0 }).length === 0 ? `epochs ${old.epochs} -> ${next.epochs}` : undefined;
}

/** What the data must be for a checkpoint to apply. */
export interface DataIdentity {
  vocabSize: number;
  vocabHash: string;
  trainTokens: number;
  validTokens: number;
}

export interface TrainState {
  shape: ModelShape;
  params: Params;
  optimizer: OptimizerState;
  /** Carried across sequential minibatches; undefined until an epoch's first minibatch. */
  hidden: Hidden | undefined;
  sampler: SamplerState;
  truncation: Rng;
  /** Draws the dropout masks (--dropout). */
  dropout: Rng;
  lr: number;
  step: number;
  bestValidLoss: number | null;
  /** The current epoch so far: Σ loss·tokens, tokens, seconds spent training. */
  epochLossSum: number;
  epochTokens: number;
  epochSeconds: number;
  history: MetricRow[];
}

interface TrainRecord {
  version: 1;
  run: string;
  settings: TrainSettings;
  shape: ModelShape;
  data: DataIdentity;
  backend: string;
  step: number;
  sampler: SamplerState;
  /** dropout is absent from checkpoints written before --dropout existed (none drew from it). */
  rng: { truncation: RngState; dropout?: RngState };
  lr: number;
  bestValidLoss: number | null;
  epochProgress: { lossSum: number; tokens: number; seconds: number };
  history: MetricRow[];
  optimizer: { name: OptimizerState['name']; updates: number };
}

/** A fresh run: d2l's initialisation from the seed's 'init' fork. */
export function startTraining(config: Config, data: DataIdentity, samplerState: SamplerState): TrainState {
  const shape: ModelShape = { cell: config.cell, vocabSize: data.vocabSize, hidden: config.hidden, layers: config.layers };
  const root = new Rng(config.seed);
  const params = initParams(shape, root.fork('init'));
  return {
    shape, params, optimizer: createOptimizer(config.optimizer, params), hidden: undefined,
    sampler: samplerState, truncation: root.fork('truncation'), dropout: root.fork('dropout'), lr: config.lr, step: 0, bestValidLoss: null,
    epochLossSum: 0, epochTokens: 0, epochSeconds: 0, history: [],
  };
}

/** Writes the state to `path` atomically. Async: GPU backends read tensors back only with `data()`. */
export async function saveTraining(path: string, state: TrainState, meta: { run: string; config: Config; data: DataIdentity; backend: string }): Promise<void> {
  const record: TrainRecord = {
    version: 1, run: meta.run, settings: trainSettings(meta.config), shape: state.shape, data: meta.data,
    backend: meta.backend, step: state.step, sampler: state.sampler, rng: { truncation: state.truncation.state(), dropout: state.dropout.state() },
    lr: state.lr, bestValidLoss: state.bestValidLoss,
    epochProgress: { lossSum: state.epochLossSum, tokens: state.epochTokens, seconds: state.epochSeconds },
    history: state.history, optimizer: { name: state.optimizer.name, updates: state.optimizer.updates },
  };
  const named: [string, tf.Tensor][] = [
    ...Object.entries(state.params).map(([name, tensor]): [string, tf.Tensor] => [`param/${name}`, tensor]),
    ...Object.entries(state.optimizer.slots).map(([name, tensor]): [string, tf.Tensor] => [`slot/${name}`, tensor]),
    ...(state.hidden ?? []).flatMap((layer, l) => layer.map((tensor, k): [string, tf.Tensor] => [`hidden/${l}/${k}`, tensor])),
  ];
  const values = await Promise.all(named.map(([, tensor]) => tensor.data() as Promise<Float32Array>));
  const tensors: Record<string, StoredTensor> = {};
  named.forEach(([name, tensor], i) => (tensors[name] = { shape: tensor.shape, values: values[i] }));
  writeCheckpoint(path, record, tensors);
}

/** The backend the checkpoint at `path` was written on (read from its header), if there is one. */
export function checkpointBackend(path: string): string | undefined {
  return readCheckpointRecord<TrainRecord>(path)?.backend;
}

/**
 * The state saved at `path`, or undefined when there is none. Refuses (LmpipeError 'STATE') a
 * checkpoint of another vocabulary, data, model shape or training settings.
 */
export function loadTraining(path: string, expected: { config: Config; data: DataIdentity; backend: string; log(message: string): void }): { state: TrainState; run: string } | undefined {
  const saved = readCheckpoint<TrainRecord>(path);
  if (!saved) return undefined;
  const { record, tensors } = saved;
  const { config, data } = expected;
  const shape: ModelShape = { cell: config.cell, vocabSize: data.vocabSize, hidden: config.hidden, layers: config.layers };
  const refuse = (what: string) =>
    new LmpipeError('STATE', `Expected the checkpoint ${path} to match this run, got ${what}; run with --from train to train from scratch`, { stage: 'train', file: path });
  if (record.version !== 1) throw refuse(`format version ${record.version}`);
  if (record.data.vocabHash !== data.vocabHash || record.data.vocabSize !== data.vocabSize) {
    throw refuse(`a different vocabulary (${record.data.vocabSize} tokens, hash ${record.data.vocabHash.slice(0, 12)}; now ${data.vocabSize}, ${data.vocabHash.slice(0, 12)})`);
  }
  const shapeChanges = _differences(record.shape, shape);
  if (shapeChanges.length > 0) throw refuse(`a different model shape (${shapeChanges.join(', ')})`);
  const dataChanges = _differences(record.data, data);
  if (dataChanges.length > 0) throw refuse(`different training data (${dataChanges.join(', ')})`);
  // --epochs may have been raised since (moreEpochs); every other setting must be the same.
  const settingChanges = _differences({ ...record.settings, epochs: 0 }, { ...trainSettings(config), epochs: 0 });
  if (settingChanges.length > 0) throw refuse(`different settings (${settingChanges.join(', ')})`);
  if (record.sampler.epoch > config.epochs) throw refuse(`${record.sampler.epoch} epochs already trained, more than --epochs ${config.epochs}`);
  if (record.backend !== expected.backend) {
    expected.log(`the checkpoint was written on ${record.backend} and continues on ${expected.backend}: ` +
      'the run stays valid but will not match an uninterrupted one bit for bit');
  }
  const tensor = (name: string) => tf.tensor(tensors[name].values, tensors[name].shape, 'float32');
  const params: Params = {};
  for (const spec of paramSpecs(shape)) {
    if (!tensors[`param/${spec.name}`]) throw refuse(`no values for ${spec.name}`);
    params[spec.name] = tensor(`param/${spec.name}`);
  }
  const slots: Params = {};
  for (const name of Object.keys(tensors)) if (name.startsWith('slot/')) slots[name.slice(5)] = tensor(name);
  let hidden: Hidden | undefined;
  for (let l = 0; tensors[`hidden/${l}/0`]; l++) {
    hidden ??= [];
    hidden.push(Object.keys(tensors).filter((n) => n.startsWith(`hidden/${l}/`)).map((n) => tensor(n)));
  }
  const state: TrainState = {
    shape, params, optimizer: { ...record.optimizer, slots }, hidden, sampler: record.sampler,
    truncation: new Rng(record.rng.truncation), dropout: record.rng.dropout ? new Rng(record.rng.dropout) : new Rng(config.seed).fork('dropout'), lr: record.lr, step: record.step, bestValidLoss: record.bestValidLoss,
    epochLossSum: record.epochProgress.lossSum, epochTokens: record.epochProgress.tokens,
    epochSeconds: record.epochProgress.seconds, history: record.history,
  };
  return { state, run: record.run };
}

export function disposeTraining(state: TrainState): void {
  tf.dispose([...Object.values(state.params), ...Object.values(state.optimizer.slots), ...(state.hidden ?? []).flat()]);
}

/** "hidden 512 -> 256" for each key whose value differs. */
function _differences(before: object, now: object): string[] {
  const a = before as Record<string, unknown>;
  const b = now as Record<string, unknown>;
  return [...new Set([...Object.keys(a), ...Object.keys(b)])]
    .filter((key) => JSON.stringify(a[key]) !== JSON.stringify(b[key]))
    .map((key) => `${key} ${JSON.stringify(a[key])} -> ${JSON.stringify(b[key])}`);
}
