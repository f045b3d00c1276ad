/**
 * Generation from a trained model, as d2l's predict_ch8: warm the state up on the prefix (feeding
 * its tokens one at a time and ignoring the predictions), then extend it one token at a time,
 * greedily (temperature 0, d2l) or by sampling softmax(logits / temperature) from a seeded generator,
 * optionally cut to the k most likely tokens (top-k) and then to the smallest set holding p of the
 * probability (top-p, nucleus; both as Hugging Face's warpers). The vocabulary's reserved tokens are
 * not text: <pad> and <bos> are never emitted, <unk> only with `allowUnk`, and <eos> ends the text.
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
import { readFirstIds, vocabHash } from '../storage/encoded.ts';
import { openRunDatabase } from '../storage/schema.ts';
import { getMeta, loadStage, markDone } from '../storage/stages.ts';
import { tokenizeText } from './ingest/index.ts';
import { initHidden, paramSpecs, stepLogits, type Hidden, type ModelShape, type Params } from './train/index.ts';
import { runPaths } from '../storage/run-paths.ts';

export interface SampleOptions {
  prefix: string;
  /** Tokens to generate after the prefix. */
  length: number;
  /** 0: greedy (argmax). Above 0: sample from softmax(logits / temperature). */
  temperature?: number;
  /** Sample only among the k most likely tokens; 0: all. */
  topK?: number;
  /** Sample only among the most likely tokens holding this much probability; 1: all. */
  topP?: number;
  /** Let generation emit <unk> (the prefix's unknown tokens are fed as <unk> either way). */
  allowUnk?: boolean;
  seed?: number;
  backend?: BackendChoice;
  /** An open run database; otherwise DIR/lmpipe.sqlite is opened read-only. */
  db?: Database;
}

export interface Sample {
  text: string;
  /** The prefix warmed up on: the one asked for, or the corpus's when none was. */
  prefix: string;
  /** "greedy" or "temperature 0.8, top-k 40, seed 42". */
  strategy: string;
  /** The training run the model came from. */
  run: string;
  /** Prefix tokens that are not in the vocabulary (fed as <unk>). */
  unknown: string[];
  /** False when the model comes from a training run that has not finished (its latest checkpoint). */
  finished: boolean;
  /** True when generation stopped at <eos> before `length` tokens. */
  endOfText: boolean;
}

/** Reserved tokens that are never text (d2l's reserved_tokens); <eos> ends generation instead. */
const NEVER_EMITTED = ['<pad>', '<bos>'];
const END_OF_TEXT = '<eos>';

export const sampleStage: Stage = {
  name: 'sample',
  consumes: 'DIR/checkpoints/train.ckpt (train) and the vocab table',
  produces: 'a row in the samples table',
  checkpoint: 'none: generation takes well under a second and is repeated whole',
  settings: ({ prefix, sampleLength, temperature, topK, topP, allowUnk, seed }) => ({ prefix, sampleLength, temperature, topK, topP, allowUnk, seed }),
  check: ({ config }) => {
    if (config.prefix === '' || tokenizeText(config.prefix, { tokenizer: config.tokenizer, lowercase: config.lowercase }).length > 0) return;
    throw new TypeError(`Expected \`--prefix\` to hold at least one token of --tokenizer ${config.tokenizer}, got \`${config.prefix}\``);
  },
  run: runSample,
  reset: ({ db }) => clearSamples(db),
};

async function* runSample(ctx: StageContext): AsyncGenerator<StageEvent> {
  const { config, db, dir, fingerprint } = ctx;
  const { prefix, temperature, topK, topP, allowUnk, seed, backend } = config;
  const result = await sample(dir, { prefix, length: config.sampleLength, temperature, topK, topP, allowUnk, seed, backend, db });
  if (!result.finished) ctx.log('the train stage is not finished; generating from its latest checkpoint');
  if (result.unknown.length > 0) ctx.log(`prefix tokens not in the vocabulary, fed as <unk>: ${result.unknown.join(' ')}`);
  db.transaction(() => {
    addSample(db, { run: result.run, prefix: result.prefix, strategy: result.strategy, text: result.text });
    markDone(db, 'sample', fingerprint, { run: result.run });
  })();
  yield { done: config.sampleLength, total: config.sampleLength, unit: 'tokens', message: `${result.strategy}: ${JSON.stringify(result.text)}`, data: { ...result } };
}

/** Generates from the model trained in `dir`. */
export async function sample(dir: string, options: SampleOptions): Promise<Sample> {
  const { prefix, length, temperature = 0, topK = 0, topP = 1, seed = 42 } = options;
  const file = runPaths(dir).database;
  if (!options.db && !existsSync(file)) {
    throw new LmpipeError('STATE', `Expected a run directory holding lmpipe.sqlite, got ${dir}; train a model there first (npm run pipeline -- --out ${dir})`, { stage: 'sample', file });
  }
  await backend(options.backend ?? 'auto');
  const db = options.db ?? openRunDatabase(file, { readonly: true });
  try {
    const { params, shape, run } = loadModel(dir, db);
    const vocab = vocabTokens(db);
    const tokenizer = (getMeta(db, 'tokenizer') ?? 'd2l-char') as TokenizerName;
    const ids = new Map(vocab.map((token, id) => [token, id]));
    const separator = tokenizer.endsWith('char') ? '' : ' ';
    const warmUp = prefix !== '' ? prefix : _corpusPrefix(dir, vocab, separator);
    const tokens = tokenizeText(warmUp, { tokenizer, lowercase: getMeta(db, 'lowercase') === 'true' });
    if (tokens.length === 0) throw new TypeError(`Expected \`--prefix\` to hold at least one token, got \`${prefix}\``);
    const outputs = tokens.map((token) => ids.get(token) ?? 0);
    const allowed = new Uint8Array(vocab.length).fill(1);
    for (const token of NEVER_EMITTED) if (ids.has(token)) allowed[ids.get(token)!] = 0;
    if (!options.allowUnk) allowed[0] = 0; // <unk> is id 0
    const pick = { temperature, topK, topP, allowed, rng: new Rng(seed).fork('sample') };
    const generated = await _generate(params, shape, outputs, { length, pick, end: ids.get(END_OF_TEXT) ?? -1 });
    tf.dispose(Object.values(params));
    const cuts = [topK > 0 ? `top-k ${topK}` : '', topP < 1 ? `top-p ${topP}` : ''].filter(Boolean);
    return {
      text: generated.map((id) => vocab[id]).join(separator),
      prefix: warmUp,
      strategy: temperature === 0 ? 'greedy' : [`temperature ${temperature}`, ...cuts, `seed ${seed}`].join(', '),
      run,
      unknown: tokens.filter((token) => !ids.has(token)),
      finished: loadStage(db, 'train')?.state === 'done',
      endOfText: generated.length < outputs.length + length,
    };
  } finally {
    if (!options.db) db.close();
  }
}

interface Pick {
  temperature: number;
  topK: number;
  topP: number;
  /** 1 for each id generation may emit. */
  allowed: Uint8Array;
  rng: Rng;
}

/**
 * predict_ch8: warm-up on prefix[0..n−1], then up to `length` predictions, stopping before the
 * `end` id (<eos>; -1 for none). Returns prefix and predictions.
 */
async function _generate(params: Params, shape: ModelShape, prefix: number[], options: { length: number; pick: Pick; end: number }): Promise<number[]> {
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
    const next = _pick(values, options.pick);
    if (next === options.end || next < 0) break;
    outputs.push(next);
  }
  tf.dispose(hidden.flat());
  return outputs;
}

/**
 * Among the allowed ids: the argmax (first maximum, like torch.argmax) or a draw from
 * softmax(logits / temperature) cut to top-k, then top-p. -1 when no id is allowed.
 */
function _pick(logits: Float32Array, options: Pick): number {
  const { allowed } = options;
  let best = -1;
  for (let i = 0; i < logits.length; i++) if (allowed[i] && (best < 0 || logits[i] > logits[best])) best = i;
  if (best < 0 || options.temperature === 0) return best;
  const weights = Array.from(logits, (logit, i) => (allowed[i] ? Math.exp((logit - logits[best]) / options.temperature) : 0));
  _keepMostLikely(weights, options);
  let u = options.rng.nextFloat() * weights.reduce((a, b) => a + b, 0);
  for (let i = 0; i < weights.length; i++) if ((u -= weights[i]) < 0) return i;
  return best;
}

/** Zeroes every weight outside the k largest, then outside the smallest set of them holding p of their sum. */
function _keepMostLikely(weights: number[], options: Pick): void {
  const { topK, topP } = options;
  if (topK === 0 && topP >= 1) return;
  const order = weights.map((_, i) => i).filter((i) => weights[i] > 0).sort((a, b) => weights[b] - weights[a] || a - b);
  let keep = topK > 0 ? Math.min(topK, order.length) : order.length;
  if (topP < 1) {
    const total = order.slice(0, keep).reduce((sum, i) => sum + weights[i], 0);
    let mass = 0;
    for (let k = 0; k < keep; k++) {
      mass += weights[order[k]];
      if (mass >= topP * total) {
        keep = k + 1;
        break;
      }
    }
  }
  for (const i of order.slice(keep)) weights[i] = 0;
}

/**
 * A prefix from the corpus when none is given: the first tokens of the validation split (else of the
 * training split) that are text, as many as make a few words (d2l's "time traveller" is 2 words,
 * 14 characters).
 */
function _corpusPrefix(dir: string, vocab: string[], separator: string): string {
  const wanted = separator === '' ? 14 : 3;
  const specials = new Set(['<unk>', END_OF_TEXT, ...NEVER_EMITTED]);
  const paths = runPaths(dir);
  for (const path of [paths.encodedValid, paths.encodedTrain]) {
    const tokens = Array.from(readFirstIds(path, 4 * wanted), (id) => vocab[id]).filter((token) => token !== undefined && !specials.has(token));
    if (tokens.length > 0) return tokens.slice(0, wanted).join(separator).trim();
  }
  throw new LmpipeError('STATE', `Expected an encoded corpus in ${paths.encodedDir} to take a prefix from, got none; give --prefix`, { stage: 'sample' });
}

/** The trained model of `dir` (its latest checkpoint), refused when the vocab table is not the one it learnt. */
export function loadModel(dir: string, db: Database): { params: Params; shape: ModelShape; run: string; settings: { batch: number; steps: number } } {
  const path = runPaths(dir).trainCheckpoint;
  const saved = readCheckpoint<{ shape: ModelShape; run: string; data: { vocabHash: string }; settings: { batch: number; steps: number } }>(path);
  if (!saved) {
    throw new LmpipeError('STATE', `Expected a trained model in ${path}, got no such file; run the train stage first`, { stage: 'sample', file: path });
  }
  // The model's ids mean the tokens of the vocabulary it was trained on, and no other.
  const current = vocabHash(db);
  if (saved.record.data.vocabHash !== current) {
    throw new LmpipeError('STATE', `Expected the model's vocabulary (hash ${saved.record.data.vocabHash.slice(0, 12)}), got ` +
      `${current.slice(0, 12)} in the vocab table; train again (npm run pipeline -- --out ${dir})`, { stage: 'sample', file: path });
  }
  const { shape, run, settings } = saved.record;
  const params: Params = {};
  for (const spec of paramSpecs(shape)) {
    const stored = saved.tensors[`param/${spec.name}`];
    params[spec.name] = tf.tensor(stored.values, stored.shape, 'float32');
  }
  return { params, shape, run, settings };
}
