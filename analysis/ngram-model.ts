/**
 * The Laplace-smoothed n-gram model of the d2l book (section 8.3, "Laplace smoothing"), generalized
 * recursively to histories of any length up to the counted order:
 *
 *   P(x)          = (n(x) + ε1/m) / (n + ε1)
 *   P(x' | x)     = (n(x, x') + ε2·P(x')) / (n(x) + ε2)
 *   P(w | h)      = (n(h, w) + εk·P(w | h without its first token)) / (n(h) + εk),   k = |h| + 1
 *
 * with n the number of tokens and m the number of distinct tokens (types). Pure functions over a
 * count lookup, so the same code serves the query tool (SQLite counts) and tests (brute force).
 *
 * Two choices the book leaves open, made here:
 * - The denominator n(h) is the count of h as an n-gram, as in the book, not the number of times h
 *   is followed by something; an h that ends a document makes Σ_w P(w|h) slightly below 1.
 * - An unseen history (n(h) = 0) backs off: P(w|h) = P(w|shorter h). That is the formula's value
 *   for every ε > 0, and it keeps ε = 0 (pure maximum likelihood inside the smoothing) defined.
 */

/** Counts the model reads. Ids are the caller's token ids; `undefined` marks an unknown token. */
export interface ModelCounts {
  /** Count of the n-gram with these ids (1 ≤ length ≤ order); 0 when unseen. */
  count(ids: readonly number[]): number;
  /** n: number of tokens. */
  tokens: number;
  /** m: number of distinct tokens. */
  types: number;
}

export interface NgramModelOptions {
  /** ε1..ε5: smoothing constants by n-gram order (ε[0] is ε1). Missing entries are 1. */
  eps?: readonly number[];
  /** Longest n-gram used: histories are cut to their last order - 1 tokens. */
  order?: number;
}

/** One level of the recursion: the estimate of P(word | history) for a history of `history` tokens. */
export interface Estimate {
  /** Length of the history used at this level (0 for the unigram). */
  history: number;
  /** n(h, w): count of the history followed by the word (n(w) for the unigram). */
  count: number;
  /** n(h): count of the history (n, the number of tokens, for the unigram). */
  historyCount: number;
  /** n(h, w) / n(h); null when n(h) is 0. */
  mle: number | null;
  smoothed: number;
}

export interface PerplexityResult {
  /** Tokens in the text. */
  tokens: number;
  /** Tokens the counts never saw; they are not scored (SRILM's convention) but still serve as history. */
  oov: number;
  /** Tokens scored: tokens - oov. */
  evaluated: number;
  /** Σ ln P over the scored tokens. */
  logProb: number;
  /** -logProb / evaluated, in nats per token. */
  crossEntropy: number;
  /** exp(crossEntropy); Infinity when some token has probability 0 (possible only with an ε of 0). */
  perplexity: number;
}

/** Scores a stream of documents token by token; histories never reach before a document's start. */
export interface PerplexityScorer {
  /** Adds the next tokens; `documentStart` cuts the history first. */
  add(ids: ArrayLike<number | undefined>, documentStart: boolean): void;
  result(): PerplexityResult;
}

export interface NgramModel {
  order: number;
  /** Every level of the recursion, from the unigram up to the (cut) history. */
  estimates(word: number | undefined, history: readonly (number | undefined)[]): Estimate[];
  /** The smoothed P(word | history). */
  probability(word: number | undefined, history: readonly (number | undefined)[]): number;
  scorer(): PerplexityScorer;
  /** Perplexity of one document. */
  perplexity(ids: readonly (number | undefined)[]): PerplexityResult;
}

export function ngramModel(counts: ModelCounts, options: NgramModelOptions = {}): NgramModel {
  const { eps = [], order = 5 } = { ...options };
  if (!Number.isInteger(order) || order < 1) throw new RangeError(`Expected \`order\` to be an integer of at least 1, got \`${order}\``);
  const epsilon = (k: number) => eps[k - 1] ?? 1;
  for (let k = 1; k <= order; k++) {
    if (!(epsilon(k) >= 0 && Number.isFinite(epsilon(k)))) {
      throw new RangeError(`Expected \`--eps${k}\` to be a number of at least 0, got \`${epsilon(k)}\``);
    }
  }
  if (counts.types < 1 || counts.tokens < 1) throw new RangeError('Expected counts of at least one token, got none');

  const known = (ids: readonly (number | undefined)[]): ids is readonly number[] => ids.every((id) => id !== undefined);
  const countOf = (ids: readonly (number | undefined)[]) => (known(ids) ? counts.count(ids) : 0);

  function estimates(word: number | undefined, history: readonly (number | undefined)[]): Estimate[] {
    const cut = history.slice(Math.max(0, history.length - (order - 1)));
    const unigram = countOf([word]);
    const levels: Estimate[] = [{
      history: 0,
      count: unigram,
      historyCount: counts.tokens,
      mle: unigram / counts.tokens,
      smoothed: (unigram + epsilon(1) / counts.types) / (counts.tokens + epsilon(1)),
    }];
    for (let length = 1; length <= cut.length; length++) {
      const h = cut.slice(cut.length - length);
      const historyCount = countOf(h);
      const count = historyCount === 0 ? 0 : countOf([...h, word]);
      const lower = levels[length - 1].smoothed;
      const eps = epsilon(length + 1);
      levels.push({
        history: length,
        count,
        historyCount,
        mle: historyCount === 0 ? null : count / historyCount,
        smoothed: historyCount === 0 ? lower : (count + eps * lower) / (historyCount + eps),
      });
    }
    return levels;
  }

  const probability = (word: number | undefined, history: readonly (number | undefined)[]) =>
    estimates(word, history).at(-1)!.smoothed;

  function scorer(): PerplexityScorer {
    let tokens = 0, oov = 0, logProb = 0;
    let history: (number | undefined)[] = [];
    return {
      add(ids, documentStart) {
        if (documentStart) history = [];
        for (let t = 0; t < ids.length; t++) {
          const id = ids[t];
          tokens++;
          if (id === undefined) oov++;
          else logProb += Math.log(probability(id, history));
          history.push(id);
          if (history.length >= order) history.shift();
        }
      },
      result() {
        const evaluated = tokens - oov;
        const crossEntropy = evaluated === 0 ? NaN : -logProb / evaluated;
        return { tokens, oov, evaluated, logProb, crossEntropy, perplexity: Math.exp(crossEntropy) };
      },
    };
  }

  function perplexity(ids: readonly (number | undefined)[]): PerplexityResult {
    const one = scorer();
    one.add(ids, true);
    return one.result();
  }

  return { order, estimates, probability, scorer, perplexity };
}
