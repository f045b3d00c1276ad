/**
 * The train stage: the encoded corpus -> an RNN language model trained with truncated BPTT, its
 * per-epoch perplexities in the metrics table and its checkpoint in DIR/checkpoints/train.ckpt.
 *
 * The loop follows d2l's train_ch8: per minibatch, a fresh state (random sampler) or the carried,
 * detached one (sequential); mean cross-entropy; gradient clipping by global norm; an SGD or Adam
 * step. Each epoch ends with the validation perplexity. A checkpoint is written every
 * `checkpointEvery` steps and at each epoch end; a run that finds one continues from it and, on the
 * same backend, produces exactly the numbers of an uninterrupted run.
 *
 * The backend is not part of the stage's settings: `auto` resumes on the backend the checkpoint was
 * written on where it loads, and resuming on another continues the run (with a warning) rather than
 * training again, at the cost of bit-for-bit equality.
 *
 * With --train-workers N > 1 each step runs on N data-parallel replicas (_parallel.ts); the worker
 * count is part of the settings, since it changes the order in which gradients are summed.
 *
 * The loop never reads a tensor synchronously: a GPU backend (webgpu) can only `await data()`, and
 * each read waits for the GPU to finish everything queued. Step losses stay on the device and are
 * read together (_losses.ts) when there is something to report: a progress event, a checkpoint, an
 * abort or the epoch's end. Their sum is taken in step order, so the numbers are the same either way.
 */
import * as tf from '@tensorflow/tfjs-core';
import { rmSync } from 'node:fs';
import { backend, type BackendName } from './backend.ts';
import type { Config } from '../../pipeline/config.ts';
import type { Rng } from '../../lib/rng.ts';
import type { Stage, StageContext, StageEvent } from '../../pipeline/types.ts';
import { clearRuns, recordRun, saveMetrics, type MetricRow } from '../../storage/metrics.ts';
import { getMeta, markDone, saveCheckpoint } from '../../storage/stages.ts';
import { batches, checkCorpusLength, evalBatches, type Minibatch } from './batches.ts';
import { loadEncoded, splitSizes } from '../encode.ts';
import { initHidden as zeroHidden, lossAndGradients, windowLoss, type Hidden, type ModelShape, type Params } from './model.ts';
import { pendingLosses } from './_losses.ts';
import { applyUpdate, clipGradients } from './optim.ts';
import {
  checkpointBackend, disposeTraining, loadTraining, moreEpochs, saveTraining, startTraining, trainSettings, trainWorkerCount,
  type TrainState,
} from './state.ts';
import { parallelStepper, WORKER_BACKENDS, type Stepper } from './_parallel.ts';
import { runPaths } from '../../storage/run-paths.ts';
import { LmpipeError } from '../../lib/errors.ts';

export const trainStage: Stage = {
  name: 'train',
  consumes: 'DIR/encoded/ (encode)',
  produces: 'metrics and runs tables; DIR/checkpoints/train.ckpt (parameters, optimizer, sampler and generator state)',
  checkpoint: 'DIR/checkpoints/train.ckpt every --checkpoint-every steps and at each epoch end; step and epoch in the stages table',
  settings: trainSettings,
  continues: moreEpochs,
  check: async ({ config, db, current }) => {
    // An optional backend that is not installed fails now, not after counting and encoding.
    if (config.backend === 'tensorflow' || config.backend === 'tensorflow-gpu') await backend(config.backend);
    if (current('count')) {
      const { train } = splitSizes(Number(getMeta(db, 'total_1') ?? 0), config);
      checkCorpusLength(train, { sampler: config.sampler, batchSize: config.batch, steps: config.steps });
    }
  },
  run: train,
  reset: ({ dir, db }) => {
    rmSync(runPaths(dir).trainCheckpoint, { force: true });
    clearRuns(db);
  },
};

/** Trains (or resumes training) the model of `ctx.dir`; yields a progress event per epoch and checkpoint. */
export async function* train(ctx: StageContext): AsyncGenerator<StageEvent> {
  const { db, dir, config, fingerprint, signal } = ctx;
  const checkpointFile = runPaths(dir).trainCheckpoint;
  const used = await backend(config.backend, { prefer: checkpointBackend(checkpointFile) }); // auto resumes where it started
  ctx.log(`backend ${used.detail}`);
  const encoded = loadEncoded(db, { dir });
  const data = { vocabSize: encoded.vocabSize, vocabHash: encoded.vocabHash, trainTokens: encoded.train.length, validTokens: encoded.valid.length };
  const sampler = batches(encoded.train, { sampler: config.sampler, batchSize: config.batch, steps: config.steps, seed: config.seed });
  const resumed = loadTraining(checkpointFile, { config, data, backend: used.name, log: ctx.log });
  const run = resumed?.run ?? fingerprint;
  const s = resumed?.state ?? startTraining(config, data, sampler.initialState());
  if (resumed) ctx.log(`resuming at epoch ${s.sampler.epoch + 1}, step ${s.step}`);
  const save = async () => {
    stepper.sync();
    await saveTraining(checkpointFile, s, { run, config, data, backend: used.name });
    db.transaction(() => {
      saveMetrics(db, run, s.history);
      saveCheckpoint(db, 'train', fingerprint, { run, step: s.step, epoch: s.sampler.epoch, cursor: s.sampler.cursor });
    })();
  };
  recordRun(db, { run, backend: used.name, config: { ...trainSettings(config), backend: used.detail } });
  db.transaction(() => saveMetrics(db, run, s.history))(); // a run killed between checkpoint and commit
  const losses = pendingLosses(s);
  const stepper = await trainStepper(s, config, used.name, ctx.log);
  try {
    let lastEvent = 0;
    while (s.sampler.epoch < config.epochs) {
      const epoch = sampler.epoch(s.sampler);
      for (const batch of epoch) {
        const started = performance.now();
        losses.add(await stepper.step(batch, batch.index === 0 || !sampler.carriesState), batch.inputs.length);
        s.epochSeconds += (performance.now() - started) / 1000;
        s.sampler = { ...s.sampler, cursor: batch.index + 1 };
        s.step++;
        await breathe(); // lets Ctrl-C (a timer or signal handler) set `signal` between steps
        const checkpoint = s.step % config.checkpointEvery === 0 && batch.index + 1 < epoch.size;
        if (!signal.aborted && !checkpoint && performance.now() - lastEvent <= 1000 && !losses.full) continue;
        const loss = await losses.read();
        if (signal.aborted) {
          await save();
          return;
        }
        if (checkpoint) {
          await save();
          yield { done: s.step, unit: 'steps', message: `checkpoint at step ${s.step} (epoch ${s.sampler.epoch + 1}, loss ${loss.toFixed(3)})` };
        } else if (performance.now() - lastEvent > 1000) {
          lastEvent = performance.now();
          // Steps of the whole stage: this epoch's end, plus the epochs after it at this epoch's size.
          const total = s.step + (epoch.size - batch.index - 1) + (config.epochs - s.sampler.epoch - 1) * epoch.size;
          const detail = `epoch ${s.sampler.epoch + 1}/${config.epochs}  loss ${loss.toFixed(3)}`;
          yield { done: s.step, total, unit: 'steps', detail, data: { epoch: s.sampler.epoch + 1, step: s.step, loss } };
        }
      }
      await losses.read();
      stepper.sync();
      const rows = await finishEpoch(s, encoded.valid, config);
      s.sampler = sampler.nextEpoch(s.sampler);
      await save();
      yield epochEvent(s, rows, config.epochs);
    }
    db.transaction(() => markDone(db, 'train', fingerprint, { run, step: s.step, epoch: s.sampler.epoch, backend: used.name }))();
  } finally {
    stepper.close();
    losses.dispose();
    disposeTraining(s);
  }
}

/** Today's single-thread steps for one worker; data-parallel replicas (_parallel.ts) for more. */
export async function trainStepper(s: TrainState, config: Config, backendName: BackendName, log: (message: string) => void): Promise<Stepper> {
  let workers = trainWorkerCount(config);
  if (workers > 1 && !WORKER_BACKENDS.includes(backendName)) {
    if (config.trainWorkers > 0) {
      throw new LmpipeError('USAGE', `Expected \`--train-workers 1\` on the ${backendName} backend (workers run ${WORKER_BACKENDS.join(' and ')}), got \`${workers}\``);
    }
    log(`${backendName} trains on one thread (training workers run ${WORKER_BACKENDS.join(' and ')})`);
    workers = 1;
  }
  if (workers > 1) {
    log(`${workers} training workers (this thread and ${workers - 1} more), ${Math.floor(config.batch / workers)}+ rows of each minibatch apiece`);
    const xi = (steps: number) => truncationWeights(steps, config, s.truncation);
    const masks = (window: Minibatch) => dropoutMasks(window, s.shape, config.dropout, s.dropout);
    return parallelStepper(s, { workers, batchSize: config.batch, backend: backendName, clip: config.clip, xi, masks });
  }
  return {
    step: (batch, reset) => {
      if (reset) s.hidden = repackageHidden(s.hidden, initHidden(s.shape, batch.batchSize));
      return trainStep(s, batch, config);
    },
    sync: () => {},
    close: () => {},
  };
}

/** One optimizer step on one minibatch; returns its mean loss, still on the device. */
export function trainStep(s: TrainState, batch: Minibatch, config: Config): tf.Scalar {
  const xi = truncationWeights(batch.steps, config, s.truncation);
  const masks = dropoutMasks(batch, s.shape, config.dropout, s.dropout);
  const { loss, gradients, hidden } = lossAndGradients(s.params, s.shape, batch, s.hidden!, { xi, masks });
  const clipped = clipGradients(gradients, config.clip);
  s.params = applyUpdate(s.params, clipped.gradients, s.optimizer, s.lr);
  s.hidden = repackageHidden(s.hidden, hidden);
  tf.dispose([clipped.norm, Object.values(gradients), Object.values(clipped.gradients)]);
  return loss;
}

/**
 * ξ_t per step: 0 where the gradient from step t into t−1 is cut (every `truncate` steps), and with
 * `truncatePi` π < 1, 1/π with probability π and 0 otherwise (unbiased randomized truncation).
 */
export function truncationWeights(steps: number, config: Pick<Config, 'truncate' | 'truncatePi'>, rng: Rng): Float32Array | undefined {
  const { truncate, truncatePi: pi } = config;
  if (truncate === 0 && pi === 1) return undefined;
  const xi = new Float32Array(steps).fill(1);
  for (let t = 1; t < steps; t++) {
    if (pi < 1) xi[t] = rng.nextFloat() < pi ? 1 / pi : 0;
    if (truncate > 0 && t % truncate === 0) xi[t] = 0;
  }
  return xi;
}

/**
 * With --dropout p > 0, the minibatch's masks (model.ts's GradientOptions.masks): per layer, row-major
 * [batch, steps, hidden], each unit kept with probability 1 − p and then scaled by 1/(1 − p), so
 * that the expected output is the undropped one (inverted dropout; evaluation uses no mask).
 */
export function dropoutMasks(window: { batchSize: number; steps: number }, shape: ModelShape, p: number, rng: Rng): Float32Array[] | undefined {
  if (p === 0) return undefined;
  const keep = 1 / (1 - p);
  return Array.from({ length: shape.layers }, () =>
    Float32Array.from({ length: window.batchSize * window.steps * shape.hidden }, () => (rng.nextFloat() < p ? 0 : keep)));
}

let lastBreath = 0;

/** Yields to the event loop every 50 ms: training is synchronous, and timers and signals need a turn. */
async function breathe(): Promise<void> {
  if (performance.now() - lastBreath < 50) return;
  await new Promise((resolve) => setTimeout(resolve, 0));
  lastBreath = performance.now();
}

/** A zero state for `batchSize` streams (word_language_model's model.init_hidden). */
function initHidden(shape: ModelShape, batchSize: number): Hidden {
  return zeroHidden(shape, batchSize);
}

/** Swaps in the new state and frees the old one. The state holds no graph, so it is already detached. */
function repackageHidden(old: Hidden | undefined, next: Hidden): Hidden {
  if (old && old !== next) tf.dispose(old.flat());
  return next;
}

/** Closes an epoch: metric rows, validation, lr annealing and decay; resets the epoch's sums. */
async function finishEpoch(s: TrainState, valid: Int32Array, config: Config): Promise<MetricRow[]> {
  const epoch = s.sampler.epoch + 1;
  const trainLoss = s.epochLossSum / Math.max(1, s.epochTokens);
  const tokensPerSecond = s.epochTokens / Math.max(s.epochSeconds, 1e-9);
  const rows: MetricRow[] = [{ epoch, step: s.step, split: 'train', loss: trainLoss, perplexity: Math.exp(trainLoss), tokensPerSecond }];
  const validLoss = await evaluate(s.params, s.shape, valid, config);
  if (validLoss !== undefined) {
    rows.push({ epoch, step: s.step, split: 'valid', loss: validLoss, perplexity: Math.exp(validLoss), tokensPerSecond: null });
    if (config.annealLr && s.bestValidLoss !== null && validLoss >= s.bestValidLoss) s.lr /= 4;
    if (s.bestValidLoss === null || validLoss < s.bestValidLoss) s.bestValidLoss = validLoss;
  }
  s.lr *= config.lrDecay;
  s.history.push(...rows);
  if (s.hidden) tf.dispose(s.hidden.flat());
  s.hidden = undefined;
  [s.epochLossSum, s.epochTokens, s.epochSeconds] = [0, 0, 0];
  return rows;
}

/** Mean cross-entropy over the validation split, read sequentially with the state carried; undefined when empty. */
export async function evaluate(params: Params, shape: ModelShape, corpus: Int32Array, config: Pick<Config, 'batch' | 'steps'>): Promise<number | undefined> {
  let hidden: Hidden | undefined;
  const sums = { epochLossSum: 0, epochTokens: 0 }; // over the validation split
  const losses = pendingLosses(sums);
  try {
    for (const batch of evalBatches(corpus, { batchSize: config.batch, steps: config.steps })) {
      hidden ??= zeroHidden(shape, batch.batchSize);
      const result = windowLoss(params, shape, batch, hidden);
      losses.add(result.loss, batch.inputs.length);
      hidden = repackageHidden(hidden, result.hidden);
      if (losses.full) await losses.read();
    }
    await losses.read();
  } finally {
    losses.dispose();
    if (hidden) tf.dispose(hidden.flat());
  }
  return sums.epochTokens > 0 ? sums.epochLossSum / sums.epochTokens : undefined;
}

function epochEvent(s: TrainState, rows: MetricRow[], epochs: number): StageEvent {
  const [trainRow, validRow] = rows;
  const epoch = s.sampler.epoch;
  const valid = validRow ? `, valid ppl ${validRow.perplexity.toFixed(2)}` : '';
  return {
    done: epoch, total: epochs, unit: 'epochs',
    message: `epoch ${epoch}/${epochs}: train ppl ${trainRow.perplexity.toFixed(2)}${valid}, ${Math.round(trainRow.tokensPerSecond ?? 0).toLocaleString('en-US')} tok/s`,
    data: {
      epoch, step: s.step, lr: s.lr, trainLoss: trainRow.loss, trainPerplexity: trainRow.perplexity,
      validLoss: validRow?.loss, validPerplexity: validRow?.perplexity, tokensPerSecond: trainRow.tokensPerSecond,
    },
  };
}
