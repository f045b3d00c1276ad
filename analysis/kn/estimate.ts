/**
 * Interpolated modified Kneser-Ney, estimated exactly as KenLM's `lmplz` does (Heafield et al.
 * 2013; kpu/kenlm lm/builder/adjust_counts.cc, initial_probabilities.cc, interpolate.cc), from the
 * count stage's sentence n-grams (`<s> w1 .. wk </s>`, none crossing a sentence; stages/count/).
 *
 * - Adjusted counts a(g): the raw count for the top order and for n-grams that start with <s>;
 *   below the top order, the number of distinct words seen just before g (its continuation count).
 *   <unk> and <s> are unigrams with a = 0.
 * - Discounts per order from the counts of adjusted counts n_j (Chen & Goodman's eq. 26):
 *   Y = n1 / (n1 + 2 n2), D_j = j - (j + 1) Y n_{j+1} / n_j for j = 1, 2, 3+. lmplz refuses data where
 *   some n_j is 0 or a D_j falls outside [0, j]; `discountFallback` substitutes 0.5, 1, 1.5 and warns.
 * - For a context h: gamma(h) = sum_j D_j #{w : a(h w) = j} / sum_w a(h w), and
 *   p(w | h) = (a(h w) - D(a(h w))) / sum_w' a(h w') + gamma(h) p(w | h without its first word),
 *   down to the uniform 1 / |V|, V = every unigram but <s> (<unk> and </s> included). So <unk> gets
 *   gamma() / |V| (a word never seen), and <s> gets probability 1 (KenLM since 2015: log10 0).
 * - backoff(h) = gamma(h) for each n-gram below the top order that is a context, except those that
 *   end in </s> or <unk> (they never are): those get 1. No pruning.
 *
 * Ids are the run's token ids plus the negative specials below. Values are kept as log10, in
 * doubles; the ARPA writer (arpa.ts) rounds them to float32 as lmplz prints them.
 */
import { LmpipeError } from '../../lib/errors.ts';

/** The specials of the sentence view: ids no token has. */
export const BOS = -1;
export const EOS = -2;
export const UNK = -3;

export const KN_ORDERS = [2, 3, 4, 5] as const;

/** lmplz's --discount_fallback defaults: D1, D2, D3+. */
export const FALLBACK_DISCOUNTS: readonly number[] = [0.5, 1, 1.5];

/** The sentence n-gram counts the estimator reads: every row of order n (2 <= n <= order). */
export interface SentenceNgramSource {
  rows(n: number): Iterable<{ ids: readonly number[]; count: number }>;
}

export interface KnOptions {
  order: number;
  /** Use FALLBACK_DISCOUNTS (with a warning) for an order whose discounts cannot be estimated. */
  discountFallback?: boolean;
  warn?: (line: string) => void;
}

export interface KnEntry {
  /** log10 p(last word | the words before it). */
  prob: number;
  /** log10 backoff weight; 0 on the top order. */
  backoff: number;
}

export interface KnModel {
  order: number;
  /** grams[n - 1]: the n-grams of order n, keyed by their ids joined with ','. */
  grams: Map<string, KnEntry>[];
  /** discounts[n - 1] = [D1, D2, D3+] of order n. */
  discounts: number[][];
  /** |V|: the unigrams less <s>. */
  vocabularySize: number;
}

export const gramKey = (ids: readonly number[]): string => ids.join(',');
export const keyIds = (key: string): number[] => key.split(',').map(Number);
/** The key without its first id (the lower-order n-gram), and without its last (the context). */
const suffixOf = (key: string) => key.slice(key.indexOf(',') + 1);
const contextOf = (key: string) => key.slice(0, Math.max(0, key.lastIndexOf(',')));
const lastId = (key: string) => Number(key.slice(key.lastIndexOf(',') + 1));

export function estimateKneserNey(source: SentenceNgramSource, options: KnOptions): KnModel {
  const { order, discountFallback = false, warn = () => {} } = options;
  if (!(KN_ORDERS as readonly number[]).includes(order)) {
    throw new RangeError(`Expected a Kneser-Ney order from 2 to 5, got \`${order}\``);
  }
  const adjusted = adjustedCounts(source, order);
  const discounts = adjusted.map((counts, i) => discountsOf(counts, i + 1, { discountFallback, warn }));
  const gammas: Map<string, number>[] = [];
  const denominators: Map<string, number>[] = [];
  adjusted.forEach((counts, i) => {
    const { gamma, denominator } = contextSums(counts, discounts[i]);
    gammas.push(gamma);
    denominators.push(denominator);
  });
  const vocabularySize = adjusted[0].size - 1;
  const probabilities: Map<string, number>[] = [];
  for (let n = 1; n <= order; n++) {
    const probs = new Map<string, number>();
    const d = discounts[n - 1];
    for (const [key, a] of adjusted[n - 1]) {
      const context = contextOf(key);
      const lower = n === 1 ? 1 / vocabularySize : probabilities[n - 2].get(suffixOf(key))!;
      probs.set(key, (a - discountOf(d, a)) / denominators[n - 1].get(context)! + gammas[n - 1].get(context)! * lower);
    }
    probabilities.push(probs);
  }
  probabilities[0].set(String(BOS), 1);
  const grams = probabilities.map((probs, i) => {
    const entries = new Map<string, KnEntry>();
    const contexts = gammas[i + 1];
    for (const [key, p] of probs) {
      const last = lastId(key);
      const gamma = contexts !== undefined && last !== EOS && last !== UNK ? contexts.get(key) : undefined;
      entries.set(key, { prob: Math.min(0, Math.log10(p)), backoff: gamma === undefined ? 0 : Math.log10(gamma) });
    }
    return entries;
  });
  return { order, grams, discounts, vocabularySize };
}

/** a(g) for orders 1..order, from the raw counts of orders 2..order. */
function adjustedCounts(source: SentenceNgramSource, order: number): Map<string, number>[] {
  const adjusted: Map<string, number>[] = Array.from({ length: order }, () => new Map());
  for (let n = order; n >= 2; n--) {
    const own = adjusted[n - 1];
    const lower = adjusted[n - 2];
    for (const { ids, count } of source.rows(n)) {
      const key = gramKey(ids);
      // Raw counts on the top order and for <s> ...; every other n-gram's count comes from above.
      if (n === order || ids[0] === BOS) own.set(key, count);
      // Each distinct n-gram is one more distinct left extension of its suffix.
      const suffix = suffixOf(key);
      lower.set(suffix, (lower.get(suffix) ?? 0) + 1);
    }
  }
  adjusted[0].set(String(UNK), 0);
  adjusted[0].set(String(BOS), 0);
  return adjusted;
}

function discountOf(d: readonly number[], count: number): number {
  return count === 0 ? 0 : d[Math.min(count, 3) - 1];
}

function discountsOf(counts: Map<string, number>, n: number, options: { discountFallback: boolean; warn: (line: string) => void }): number[] {
  const countsOf = [0, 0, 0, 0, 0];
  for (const a of counts.values()) if (a > 0 && a < 5) countsOf[a]++;
  let problem: string | undefined;
  let d: number[] = [];
  const missing = [1, 2, 3].find((j) => countsOf[j] === 0);
  if (missing !== undefined) {
    problem = `Could not calculate Kneser-Ney discounts for ${n}-grams with adjusted count ${missing + 1} because no ${n}-gram has adjusted count ${missing}`;
  } else {
    const y = countsOf[1] / (countsOf[1] + 2 * countsOf[2]);
    d = [1, 2, 3].map((j) => j - ((j + 1) * y * countsOf[j + 1]) / countsOf[j]);
    const bad = d.findIndex((value, i) => !(value >= 0 && value <= i + 1));
    if (bad >= 0) problem = `The ${n}-gram discount for adjusted count ${bad + 1} is out of range: ${d[bad]}`;
  }
  if (problem === undefined) return d;
  if (!options.discountFallback) {
    throw new LmpipeError('INPUT', `${problem}; is this small or artificial data? (--discount-fallback uses D = ${FALLBACK_DISCOUNTS.join(', ')})`);
  }
  options.warn(`${problem}; substituting fallback discounts for order ${n}: D1=${FALLBACK_DISCOUNTS[0]} D2=${FALLBACK_DISCOUNTS[1]} D3+=${FALLBACK_DISCOUNTS[2]}`);
  return [...FALLBACK_DISCOUNTS];
}

/** Per context: the denominator sum_w a(h w) and gamma(h). */
function contextSums(counts: Map<string, number>, d: readonly number[]) {
  const denominator = new Map<string, number>();
  const mass = new Map<string, number>();
  for (const [key, a] of counts) {
    const context = contextOf(key);
    denominator.set(context, (denominator.get(context) ?? 0) + a);
    mass.set(context, (mass.get(context) ?? 0) + discountOf(d, a));
  }
  const gamma = new Map<string, number>();
  for (const [context, total] of denominator) gamma.set(context, mass.get(context)! / total);
  return { gamma, denominator };
}
