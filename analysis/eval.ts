/**
 * The table every language-modelling course draws, from the run's own corpus: Laplace n-grams
 * (orders 1..5, d2l 8.3), interpolated modified Kneser-Ney (orders 2..5, as KenLM) and the trained
 * RNN, all scored on the same tokens of the validation split (or of a test file, --test).
 *
 * How the units are matched: every model sees what the RNN sees, the corpus as one stream of tokens.
 * - Every model is trained on the training split only (encoded/train.bin's tokens): the n-gram
 *   counts are taken here, in memory, from those tokens. Kneser-Ney reads the training stream as one
 *   sentence, `<s> .. </s>`, and scores the split as one sentence: the input's line breaks are not
 *   tokens of the stream (d2l-char even joins the last word of a line to the first of the next), so
 *   a model that started each line at <s> would know where lines begin, which the RNN is never told.
 * - Scored: each token of the split that the RNN predicts (all but the first of each RNN row; the
 *   RNN reads the split as rows of at most ROW tokens from a zero state), per token, as exp of the
 *   mean negative natural log. The closing </s> is scored by no model.
 * - OOV: a token the training split never shows, or one outside the vocabulary. `perplexity`
 *   leaves the OOV positions out for every model; `with OOV` scores them too (Kneser-Ney as <unk>,
 *   Laplace with count 0, the RNN as its vocabulary id), a figure less comparable across models.
 *
 *   const result = await evaluateRun('runs/timemachine', db);   // saved in table `evaluations`
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Database } from '../storage/driver.ts';
import { getMeta, loadStage } from '../storage/stages.ts';
import { queries } from '../storage/queries.ts';
import { readIds, vocabLookup } from '../storage/encoded.ts';
import { EVAL_UNITS, loadEvaluations, saveEvaluations, type EvaluationRow } from '../storage/evaluations.ts';
import { backend, initHidden, stepLogits, type BackendChoice, type Hidden, type ModelShape, type Params } from '../stages/train/index.ts';
import { loadModel } from '../stages/sample.ts';
import { runPaths } from '../storage/run-paths.ts';
import { LmpipeError } from '../lib/errors.ts';
import type { TokenizerName } from '../pipeline/types.ts';
import { ngramModel } from './ngram-model.ts';
import { BOS, EOS, estimateKneserNey, knSentence, type SentenceNgramSource } from './kn/index.ts';
import { tokenStream } from './_token-stream.ts';

/** The RNN scores a split as rows of at most this many tokens (its hidden state carried along a row). */
const ROW = 4096;
const LAPLACE_ORDERS = [1, 2, 3, 4, 5];
const KN_ORDERS = [2, 3, 4, 5];


export interface EvalOptions {
  /** Score this file (read and tokenized as the run's input) instead of the validation split. */
  test?: string;
  backend?: BackendChoice;
  log?: (line: string) => void;
}

export interface EvalResult {
  run: string;
  /** 'valid' or the test file's path. */
  split: string;
  tokens: number;
  oov: number;
  units: string;
  rows: EvaluationRow[];
}

/** One split as every model sees it: token ids, and which positions count. */
interface Split {
  /** Run token ids (tokens.id); -1 for a token the run never saw (test files). */
  ids: Int32Array;
  scored: Uint8Array;
  oov: Uint8Array;
}

export async function evaluateRun(dir: string, db: Database, options: EvalOptions = {}): Promise<EvalResult> {
  const log = options.log ?? (() => {});
  const encode = loadStage<{ train: number; used: number }>(db, 'encode');
  if (loadStage(db, 'train')?.state !== 'done' || encode?.state !== 'done') {
    throw new LmpipeError('STATE', `Expected a finished train stage in ${dir}; run \`npm run pipeline -- --out ${dir}\` first`);
  }
  const q = queries(db);
  const tokens = q.tokens();
  const tokenIds = new Map(tokens.map((token, id) => [token, id]));
  const reading = {
    tokenizer: getMeta(db, 'tokenizer') as TokenizerName, lowercase: getMeta(db, 'lowercase') === 'true', jsonField: getMeta(db, 'jsonField') ?? 'text',
  };
  const stream = readIds(runPaths(dir).tokens, Number(getMeta(db, 'total_1')));
  const { train: trainLength, used } = encode.checkpoint;
  const trainIds = stream.subarray(0, trainLength);
  let splitIds = stream.subarray(trainLength, used);
  if (options.test !== undefined) {
    const ids: number[] = [];
    for await (const token of tokenStream([options.test], reading)) ids.push(tokenIds.get(token) ?? -1);
    splitIds = Int32Array.from(ids);
  }
  const { lookup } = vocabLookup(db);
  const vocabIds = Int32Array.from(splitIds, (id) => (id >= 0 ? lookup[id] : 0));
  const seen = new Uint8Array(tokens.length);
  for (const id of trainIds) seen[id] = 1;
  const split: Split = {
    ids: splitIds,
    scored: Uint8Array.from(splitIds, (_, t) => (t % ROW !== 0 ? 1 : 0)),
    oov: Uint8Array.from(splitIds, (id, t) => (id < 0 || seen[id] === 0 || vocabIds[t] === 0 ? 1 : 0)),
  };

  const rows: EvaluationRow[] = [];
  const counts = streamNgrams(trainIds, Math.max(...LAPLACE_ORDERS));
  for (const order of LAPLACE_ORDERS) rows.push(summarize(`laplace-${order}`, split, laplaceLogProbs(counts, trainIds, split, order)));
  const sentenceCounts = sentenceNgrams(trainIds, Math.max(...KN_ORDERS));
  // Each KN order re-estimates the lower ones: say each fallback once.
  const warned = new Set<string>();
  const warn = (line: string) => warned.has(line) || (warned.add(line), log(`kn: ${line}`));
  for (const order of KN_ORDERS) {
    const model = estimateKneserNey(sentenceCounts, { order, discountFallback: true, warn });
    rows.push(summarize(`kn-${order}`, split, knLogProbs(model, split)));
  }
  await backend(options.backend ?? 'auto');
  const { params, shape, run } = loadModel(dir, db);
  try {
    rows.push(summarize(shape.cell, split, rnnLogProbs(params, shape, vocabIds)));
  } finally {
    tf.dispose(Object.values(params));
  }
  const splitName = options.test ?? 'valid';
  saveEvaluations(db, run, splitName, rows);
  const scored = split.scored.reduce((sum, value) => sum + value, 0);
  const oov = split.scored.reduce((sum, value, t) => sum + (value & split.oov[t]), 0);
  return { run, split: splitName, tokens: scored, oov, units: EVAL_UNITS, rows };
}

/**
 * The comparison at the end of a pipeline run: evaluates when the train stage finished after the
 * last evaluation of the validation split (else returns that one); undefined when there is no
 * finished training.
 */
export async function evaluateAfterTraining(dir: string, db: Database, options: EvalOptions = {}): Promise<EvalResult | undefined> {
  const train = loadStage(db, 'train');
  if (train?.state !== 'done') return undefined;
  const latest = db.prepare("SELECT run, max(created_at) AS at FROM evaluations WHERE split = 'valid'").get();
  const stored = loadEvaluations(db).find((e) => e.split === 'valid' && e.run === latest?.run);
  if (stored && latest!.at > train.updatedAt) {
    const first = stored.rows[0];
    return { run: stored.run, split: 'valid', tokens: first.tokens, oov: first.oov, units: EVAL_UNITS, rows: stored.rows };
  }
  return evaluateRun(dir, db, options);
}

/** Perplexities of one model from its natural-log probability at each position (NaN where unscored). */
function summarize(model: string, split: Split, logProbs: Float64Array): EvaluationRow {
  let tokens = 0, oov = 0, all = 0, known = 0;
  for (let t = 0; t < logProbs.length; t++) {
    if (!split.scored[t]) continue;
    tokens++;
    all += logProbs[t];
    if (split.oov[t]) oov++;
    else known += logProbs[t];
  }
  return { model, tokens, oov, perplexity: Math.exp(-known / (tokens - oov)), perplexityWithOov: Math.exp(-all / tokens) };
}

/** Counts of every n-gram (orders 1..order) of the training stream, keyed by ids joined with ','. */
function streamNgrams(trainIds: Int32Array, order: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let n = 1; n <= order; n++) {
    for (let t = n - 1; t < trainIds.length; t++) {
      const key = trainIds.subarray(t - n + 1, t + 1).join(',');
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  return counts;
}

/** d2l's Laplace model of `order` over the training stream; histories stay inside the split. */
function laplaceLogProbs(counts: Map<string, number>, trainIds: Int32Array, split: Split, order: number): Float64Array {
  const types = new Set(trainIds).size;
  const model = ngramModel({ tokens: trainIds.length, types, count: (ids) => counts.get(ids.join(',')) ?? 0 }, { order });
  const known = (t: number) => (split.ids[t] >= 0 && !split.oov[t] ? split.ids[t] : undefined);
  return Float64Array.from(split.ids, (_, t) => {
    if (!split.scored[t]) return NaN;
    const history = [];
    for (let h = Math.max(0, t - order + 1); h < t; h++) history.push(known(h));
    return Math.log(model.probability(known(t), history));
  });
}

/** Kneser-Ney over the split as one sentence, as KenLM's query scores a line (without the </s>). */
function knLogProbs(model: ReturnType<typeof estimateKneserNey>, split: Split): Float64Array {
  const { logProbs } = knSentence(model, Array.from(split.ids, (id) => (id >= 0 ? id : undefined)));
  return Float64Array.from(split.ids, (_, t) => (split.scored[t] ? logProbs[t] * Math.LN10 : NaN));
}

/** The RNN's log p of each position given the ones before it in its row (rows of ROW tokens). */
function rnnLogProbs(params: Params, shape: ModelShape, vocabIds: Int32Array): Float64Array {
  const out = new Float64Array(vocabIds.length).fill(NaN);
  const rows = Math.ceil(vocabIds.length / ROW);
  let hidden: Hidden = initHidden(shape, rows);
  for (let step = 0; step + 1 < ROW; step++) {
    // Row r feeds its token at `step` and predicts the next; rows past their end feed 0 (ignored).
    const inputs = Int32Array.from({ length: rows }, (_, r) => vocabIds[r * ROW + step] ?? 0);
    if (!inputs.some((_, r) => r * ROW + step + 1 < vocabIds.length)) break;
    const next = stepLogits(params, shape, inputs, hidden);
    tf.dispose(hidden.flat());
    hidden = next.hidden;
    const logProbs = tf.tidy(() => tf.logSoftmax(next.logits));
    const values = logProbs.dataSync();
    tf.dispose([logProbs, next.logits]);
    for (let r = 0; r < rows; r++) {
      const target = r * ROW + step + 1;
      if (target < vocabIds.length && target < (r + 1) * ROW) out[target] = values[r * shape.vocabSize + vocabIds[target]];
    }
  }
  tf.dispose(hidden.flat());
  return out;
}

/** Sentence n-gram counts (orders 2..order) of the training stream read as one sentence, for the Kneser-Ney estimator. */
function sentenceNgrams(ids: Int32Array, order: number): SentenceNgramSource {
  const counts: Map<string, number>[] = Array.from({ length: order + 1 }, () => new Map());
  const padded = Int32Array.from([BOS, ...ids, EOS]);
  for (let n = 2; n <= order; n++) {
    for (let start = 0; start + n <= padded.length; start++) {
      const key = padded.subarray(start, start + n).join(',');
      counts[n].set(key, (counts[n].get(key) ?? 0) + 1);
    }
  }
  return { *rows(n) { for (const [key, count] of counts[n]) yield { ids: key.split(',').map(Number), count }; } };
}

/** The comparison as a text table, with how the units were matched. */
export function formatEval(result: EvalResult, dir: string): string {
  const where = result.split === 'valid' ? `the validation split of ${dir}` : result.split;
  const width = Math.max(5, ...result.rows.map((row) => row.model.length));
  const number = (value: number) => value.toFixed(2).padStart(11);
  return [
    `n-gram vs RNN on ${where}: ${result.tokens.toLocaleString('en-US')} tokens scored, ${result.oov.toLocaleString('en-US')} OOV`,
    `${'model'.padEnd(width)}  ${'perplexity'.padStart(11)}  ${'with OOV'.padStart(11)}`,
    ...result.rows.map((row) => `${row.model.padEnd(width)}  ${number(row.perplexity)}  ${number(row.perplexityWithOov)}`),
    `units: ${result.units}`,
  ].join('\n');
}
