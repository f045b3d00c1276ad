/**
 * The Kneser-Ney family's face: the estimator (lmplz's interpolated modified Kneser-Ney), the ARPA
 * writer and KenLM-query scoring, plus the model of a run's stored sentence counts.
 *
 *   const model = storedKneserNey(q, { order: 3 });
 *   for (const chunk of arpaChunks(model, (id) => tokens[id])) out.write(chunk);
 */
import type { Queries } from '../../storage/queries.ts';
import { LmpipeError } from '../../lib/errors.ts';
import { estimateKneserNey, type KnModel, type KnOptions } from './estimate.ts';

export * from './estimate.ts';
export { arpaChunks, shortestFloat32 } from './arpa.ts';
export { knKnows, knLogProb, knPerplexityScorer, knScore, knSentence, type KnPerplexity } from './score.ts';

/** The model of the run's sentence counts (the count stage's sentence2..5 tables). */
export function storedKneserNey(q: Pick<Queries, 'sentenceOrder' | 'sentenceRows'>, options: KnOptions): KnModel {
  const counted = q.sentenceOrder();
  if (counted < options.order) {
    throw new LmpipeError('STATE', counted === 0
      ? 'The database holds no sentence counts (Kneser-Ney needs them); count again with this lmpipe (--from count) and --order 2 or more'
      : `Expected sentence counts of order ${options.order}, got up to ${counted}; count with --order ${options.order} (--from count)`);
  }
  return estimateKneserNey({ rows: (n) => q.sentenceRows(n) }, options);
}
