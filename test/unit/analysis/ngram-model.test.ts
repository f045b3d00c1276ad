import t from 'tap';
import { ngramModel, type ModelCounts } from '../../../analysis/ngram-model.ts';

// Two documents: "a b a c" and "b a". Ids: a=0, b=1, c=2. Counted by hand:
// unigrams a 3, b 2, c 1 (n = 6, m = 3); bigrams ab 1, ba 2, ac 1; trigrams aba 1, bac 1.
const table: Record<string, number> = { '0': 3, '1': 2, '2': 1, '0,1': 1, '1,0': 2, '0,2': 1, '0,1,0': 1, '1,0,2': 1 };
const counts: ModelCounts = { tokens: 6, types: 3, count: (ids) => table[ids.join(',')] ?? 0 };
const [a, b, c] = [0, 1, 2];
const close = (actual: number, expected: number) => Math.abs(actual - expected) < 1e-15;

t.test('ngramModel() follows the d2l Laplace formulas', async (t) => {
  const model = ngramModel(counts, { eps: [0.5, 2, 3], order: 3 });
  const pc = (1 + 0.5 / 3) / (6 + 0.5);
  const pcGivenA = (1 + 2 * pc) / (3 + 2);
  const pcGivenBA = (1 + 3 * pcGivenA) / (2 + 3);
  t.ok(close(model.probability(c, []), pc), 'P(c)');
  t.ok(close(model.probability(c, [a]), pcGivenA), 'P(c | a)');
  t.ok(close(model.probability(c, [b, a]), pcGivenBA), 'P(c | b a)');
  t.ok(close(model.probability(c, [c, b, a]), pcGivenBA), 'a history longer than order - 1 is cut to its last tokens');
  const levels = model.estimates(c, [b, a]);
  t.same(levels.map((level) => [level.history, level.count, level.historyCount, level.mle]), [
    [0, 1, 6, 1 / 6],
    [1, 1, 3, 1 / 3],
    [2, 1, 2, 1 / 2],
  ]);
});

t.test('ngramModel() backs off past unseen histories and unknown tokens', async (t) => {
  const model = ngramModel(counts, { order: 3 });
  const pb = (2 + 1 / 3) / 7;
  t.not(model.probability(b, [c]), pb);
  t.ok(close(model.probability(b, [c]), (0 + pb) / (1 + 1)), 'P(b | c) = (0 + ε2 P(b)) / (n(c) + ε2)');
  t.ok(close(model.probability(b, [undefined]), pb), 'an unknown history token backs off to P(b)');
  t.equal(model.estimates(b, [undefined])[1].mle, null, 'MLE is undefined for an unseen history');
  t.ok(close(model.probability(undefined, []), (1 / 3) / 7), 'an unknown word gets ε1/m of the unigram mass');
});

t.test('ngramModel() probabilities sum to 1 over the vocabulary when the history never ends a document', async (t) => {
  const model = ngramModel(counts, { eps: [0.7, 1.3, 0.2], order: 3 });
  const sum = (history: number[]) => [a, b, c].reduce((total, word) => total + model.probability(word, history), 0);
  t.ok(Math.abs(sum([]) - 1) < 1e-12, 'unigram');
  t.ok(Math.abs(sum([b]) - 1) < 1e-12, 'given b (always followed by a)');
  t.ok(Math.abs(sum([a, b]) - 1) < 1e-12, 'given a b');
  t.ok(sum([a]) < 1, 'given a, which ends a document once: the d2l denominator n(a) leaves mass out');
});

t.test('perplexity() scores each token given its own document only, skipping unknown tokens', async (t) => {
  const model = ngramModel(counts, { order: 2 });
  // Document "a c ? b" with ? unknown: P(a), P(c | a), skip ?, P(b | ?) = P(b).
  const pa = (3 + 1 / 3) / 7;
  const pc = (1 + 1 / 3) / 7;
  const pb = (2 + 1 / 3) / 7;
  const logProb = Math.log(pa) + Math.log((1 + pc) / (3 + 1)) + Math.log(pb);
  const result = model.perplexity([a, c, undefined, b]);
  t.same([result.tokens, result.oov, result.evaluated], [4, 1, 3]);
  t.ok(close(result.logProb, logProb));
  t.ok(close(result.crossEntropy, -logProb / 3));
  t.ok(Math.abs(result.perplexity - Math.exp(-logProb / 3)) < 1e-12);

  const scorer = model.scorer();
  scorer.add([a, c], true);
  scorer.add([undefined], false);
  scorer.add([b], false);
  scorer.add([c], true);
  const streamed = scorer.result();
  t.same([streamed.tokens, streamed.evaluated], [5, 4], 'batches of one document continue its history');
  t.ok(close(streamed.logProb, logProb + Math.log(pc)), 'a new document starts from the unigram');
});

t.test('ngramModel() with ε = 0 is the MLE, and an unseen event gives infinite perplexity', async (t) => {
  const model = ngramModel(counts, { eps: [0, 0], order: 2 });
  t.equal(model.probability(a, [b]), 1, 'n(b a) / n(b) = 2 / 2');
  t.equal(model.probability(c, []), 1 / 6);
  t.equal(model.perplexity([b, c]).perplexity, Infinity);
  t.throws(() => ngramModel(counts, { eps: [1, -1] }), { message: 'Expected `--eps2` to be a number of at least 0, got `-1`' });
});
