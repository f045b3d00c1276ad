/**
 * Scoring text with a Kneser-Ney model the way KenLM's `query` does (kpu/kenlm lm/ngram_query.hh):
 * each sentence starts in the <s> context, and each of its words and then </s> is scored by the
 * ARPA back-off rule
 *
 *   log p(w | h) = log p(h w)                       when h w is in the model,
 *                = log b(h) + log p(w | h minus its first word)   otherwise (log b(h) = 0 when h is not),
 *
 * with a word the model does not know (an OOV) scored as <unk>. Perplexity including OOVs is
 * 10^(-sum / tokens) over every word and </s>; excluding OOVs, the OOV words leave the sum and the
 * count (KenLM's two summary lines).
 */
import { BOS, EOS, UNK, gramKey, type KnModel } from './estimate.ts';

/**
 * log10 p(word | context) and the length of the n-gram found: `context` holds the ids before
 * `word`, <s> first; only its last order-1 count.
 */
export function knScore(model: KnModel, context: readonly number[], word: number): { logProb: number; ngramLength: number } {
  let backoff = 0;
  for (let start = Math.max(0, context.length - (model.order - 1)); start <= context.length; start++) {
    const history = context.slice(start);
    const entry = model.grams[history.length].get(gramKey([...history, word]));
    if (entry !== undefined) return { logProb: backoff + entry.prob, ngramLength: history.length + 1 };
    if (history.length > 0) backoff += model.grams[history.length - 1].get(gramKey(history))?.backoff ?? 0;
  }
  throw new RangeError(`Expected a word of the model or <unk>, got id ${word}`);
}

export const knLogProb = (model: KnModel, context: readonly number[], word: number): number => knScore(model, context, word).logProb;

/** Whether the model has a unigram for `id` (else it is scored as <unk>). */
export const knKnows = (model: KnModel, id: number | undefined): id is number =>
  id !== undefined && id !== UNK && model.grams[0].has(String(id));

/**
 * One sentence's scores: log10 p of each word, then of </s>. `words` are token ids, undefined for a
 * token the run never saw; `oov[i]` says whether word i was scored as <unk>.
 */
export function knSentence(model: KnModel, words: readonly (number | undefined)[]): { logProbs: number[]; oov: boolean[] } {
  const context = [BOS];
  const logProbs: number[] = [];
  const oov: boolean[] = [];
  for (const id of [...words, EOS]) {
    const known = id === EOS || knKnows(model, id);
    const word = known ? (id as number) : UNK;
    logProbs.push(knLogProb(model, context, word));
    oov.push(!known);
    context.push(word);
    if (context.length >= model.order) context.shift();
  }
  oov.pop();
  return { logProbs, oov };
}

export interface KnPerplexity {
  sentences: number;
  /** Words and </s> scored. */
  tokens: number;
  oovs: number;
  /** Sum of log10 p over all tokens, and over the OOVs alone. */
  log10Prob: number;
  log10ProbOov: number;
  includingOovs: number;
  excludingOovs: number;
}

/** Accumulates KenLM query's summary over sentences. */
export function knPerplexityScorer(model: KnModel) {
  const totals = { sentences: 0, tokens: 0, oovs: 0, log10Prob: 0, log10ProbOov: 0 };
  return {
    add(words: readonly (number | undefined)[]): void {
      const { logProbs, oov } = knSentence(model, words);
      totals.sentences++;
      totals.tokens += logProbs.length;
      logProbs.forEach((logProb, i) => {
        totals.log10Prob += logProb;
        if (oov[i]) {
          totals.oovs++;
          totals.log10ProbOov += logProb;
        }
      });
    },
    result(): KnPerplexity {
      const { tokens, oovs, log10Prob, log10ProbOov } = totals;
      return {
        ...totals,
        includingOovs: 10 ** (-log10Prob / tokens),
        excludingOovs: 10 ** (-(log10Prob - log10ProbOov) / (tokens - oovs)),
      };
    },
  };
}
