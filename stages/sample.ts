/**
 * Generation from a trained model, as d2l's predict_ch8: warm the state up on the prefix (feeding
 * its tokens one at a time and ignoring the predictions), then extend it one token at a time,
 * greedily (temperature 0, d2l) or by sampling softmax(logits / temperature) from a seeded generator.
 * The text returned includes the prefix; char tokenizers join tokens with '', word tokenizers with ' '.
 *
 *   const { text } = await sample(dir, { prefix: 'time traveller', length: 50 });
 */
import * as tf from '@tensorflow/tfjs-core';
import { existsSync } from 'node:fs';
import { backend, type BackendChoice } from './train/index.ts';
import { readCheckpoint } from '../lib/checkpoint.ts';
import { LmpipeError } from '../lib/errors.ts';
import { Rng } from '../lib/rng.ts';
import type { Stage, StageContext, StageEvent, TokenizerName } from '../pipeline/types.ts';
import type { Database } from '../storage/driver.ts';
import { addSample, clearSamples } from '../storage/metrics.ts';
import { vocabTokens } from '../storage/vocab.ts';
import { openRunDatabase } from '../storage/schema.ts';
import { getMeta, loadStage, markDone } from '../storage/stages.ts';
import { tokenizeText } from './ingest/index.ts';
import { initHidden, paramSpecs, stepLogits, type Hidden, type ModelShape, type Params } from './train/index.ts';
import { checkpointPath } from './train/index.ts';
import { runPaths } from '../storage/run-paths.ts';

export interface SampleOptions {
  prefix: string;
  /** Tokens to generate after the prefix. */
  length: number;
  /** 0: greedy (argmax). Above 0: sample from softmax(logits / temperature). */
  temperature?: number;
  seed?: number;
  backend?: BackendChoice;
  /** An open run database; otherwise DIR/lmpipe.sqlite is opened read-only. */
  db?: Database;
}

export interface Sample {
  text: string;
  /** "greedy" or "temperature 0.8, seed 42". */
  strategy: string;
  /** The training run the model came from. */
  run: string;
  /** Prefix tokens that are not in the vocabulary (fed as <unk>). */
  unknown: string[];
  /** False when the model comes from a training run that has not finished (its latest checkpoint). */
  finished: boolean;
}

export const sampleStage: Stage = {
  name: 'sample',
  consumes: 'DIR/checkpoints/train.ckpt (train) and the vocab table',
  produces: 'a row in the samples table',
  checkpoint: 'none: generation takes well under a second and is repeated whole',
  settings: (config) => ({ prefix: config.prefix, sampleLength: config.sampleLength, temperature: config.temperature, seed: config.seed }),
  run: runSample,
  reset: ({ db }) => clearSamples(db),
};

async function* runSample(ctx: StageContext): AsyncGenerator<StageEvent> {
  const { config, db, dir, fingerprint } = ctx;
  const result = await sample(dir, { prefix: config.prefix, length: config.sampleLength, temperature: config.temperature, seed: config.seed, backend: config.backend, db });
  if (!result.finished) ctx.log('the train stage is not finished; generating from its latest checkpoint');
  if (result.unknown.length > 0) ctx.log(`prefix tokens not in the vocabulary, fed as <unk>: ${result.unknown.join(' ')}`);
  db.transaction(() => {
    addSample(db, { run: result.run, prefix: config.prefix, strategy: result.strategy, text: result.text });
    markDone(db, 'sample', fingerprint, { run: result.run });
  })();
  yield { done: config.sampleLength, total: config.sampleLength, unit: 'tokens', message: `${result.strategy}: ${JSON.stringify(result.text)}`, data: { ...result } };
}

/** Generates from the model trained in `dir`. */
export async function sample(dir: string, options: SampleOptions): Promise<Sample> {
  const { prefix, length, temperature = 0, seed = 42 } = options;
  const file = runPaths(dir).database;
  if (!options.db && !existsSync(file)) {
    throw new LmpipeError('STATE', `Expected a run directory holding lmpipe.sqlite, got ${dir}; train a model there first (npm run pipeline -- --out ${dir})`, { stage: 'sample', file });
  }
  await backend(options.backend ?? 'auto');
  const db = options.db ?? openRunDatabase(file, { readonly: true });
  try {
    const { params, shape, run } = loadTrainedModel(dir, db);
    const vocab = vocabTokens(db);
    const tokenizer = (getMeta(db, 'tokenizer') ?? 'd2l-char') as TokenizerName;
    const ids = new Map(vocab.map((token, id) => [token, id]));
    const tokens = tokenizeText(prefix, { tokenizer, lowercase: getMeta(db, 'lowercase') === 'true' });
    if (tokens.length === 0) throw new TypeError(`Expected \`--prefix\` to hold at least one token, got \`${prefix}\``);
    const outputs = tokens.map((token) => ids.get(token) ?? 0);
    const generated = await _generate(params, shape, outputs, { length, temperature, rng: new Rng(seed).fork('sample') });
    tf.dispose(Object.values(params));
    const separator = tokenizer.endsWith('char') ? '' : ' ';
    return {
      text: generated.map((id) => vocab[id]).join(separator),
      strategy: temperature === 0 ? 'greedy' : `temperature ${temperature}, seed ${seed}`,
      run,
      unknown: tokens.filter((token) => !ids.has(token)),
      finished: loadStage(db, 'train')?.state === 'done',
    };
  } finally {
    if (!options.db) db.close();
  }
}

/** predict_ch8: warm-up on prefix[0..n−1], then `length` predictions. Returns prefix and predictions. */
async function _generate(params: Params, shape: ModelShape, prefix: number[], options: { length: number; temperature: number; rng: Rng }): Promise<number[]> {
  const outputs = [prefix[0]];
  let hidden: Hidden = initHidden(shape, 1);
  // The logits after `id`, left on the device: the warm-up never reads them, and a GPU reads only with `await data()`.
  const feed = (id: number) => {
    const next = stepLogits(params, shape, Int32Array.of(id), hidden);
    tf.dispose(hidden.flat());
    hidden = next.hidden;
    return next.logits;
  };
  for (const id of prefix.slice(1)) {
    feed(outputs[outputs.length - 1]).dispose();
    outputs.push(id);
  }
  for (let i = 0; i < options.length; i++) {
    const logits = feed(outputs[outputs.length - 1]);
    const values = (await logits.data()) as Float32Array;
    logits.dispose();
    outputs.push(_pick(values, options));
  }
  tf.dispose(hidden.flat());
  return outputs;
}

/** argmax (first maximum, like torch.argmax) or a draw from softmax(logits / temperature). */
function _pick(logits: Float32Array, options: { temperature: number; rng: Rng }): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  if (options.temperature === 0) return best;
  const weights = Array.from(logits, (logit) => Math.exp((logit - logits[best]) / options.temperature));
  let u = options.rng.nextFloat() * weights.reduce((a, b) => a + b, 0);
  for (let i = 0; i < weights.length; i++) if ((u -= weights[i]) < 0) return i;
  return best;
}

/** The parameters and shape of the model trained in `dir` (its checkpoint), and the run that trained it. */
export function loadTrainedModel(dir: string, db: Database): { params: Params; shape: ModelShape; run: string } {
  const path = checkpointPath(dir);
  const saved = readCheckpoint<{ shape: ModelShape; run: string }>(path);
  if (!saved) {
    throw new LmpipeError('STATE', `Expected a trained model in ${path}, got no such file; run the train stage first`, { stage: 'sample', file: path });
  }
  const { shape, run } = saved.record;
  const params: Params = {};
  for (const spec of paramSpecs(shape)) {
    const stored = saved.tensors[`param/${spec.name}`];
    params[spec.name] = tf.tensor(stored.values, stored.shape, 'float32');
  }
  return { params, shape, run };
}
