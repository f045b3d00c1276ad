/**
 * Perplexity of a run's smoothed n-gram model on held-out input, read and tokenized exactly as the
 * run read its corpus (meta keys `tokenizer`, `lowercase`, `jsonField`): plain text, .gz, JSON and
 * JSON Lines all work, streaming, and n-gram histories never cross a document start.
 *
 *   const result = await heldOutPerplexity(q, 'valid.txt', { order: 3, eps: [1, 1, 1] });
 */
import { planShards, read } from '../../stages/ingest/index.ts';
import { Interner, tokenize, TOKENIZERS } from '../../stages/ingest/index.ts';
import { ngramModel, type ModelCounts, type PerplexityResult } from '../ngram-model.ts';
import { LmpipeError } from '../../lib/errors.ts';
import type { TokenizerName } from '../../pipeline/types.ts';
import type { Queries } from '../../storage/queries.ts';
import { sentencesOf } from '../../stages/count/index.ts';
import { knPerplexityScorer, type KnModel, type KnPerplexity } from '../kn/index.ts';

export interface HeldOutOptions {
  order: number;
  eps: readonly number[];
}

export interface HeldOutResult extends PerplexityResult {
  tokenizer: TokenizerName;
  /** Invalid UTF-8 sequences replaced with U+FFFD while reading. */
  invalidUtf8: number;
}

/** The run's counts as the model reads them, cached: perplexity asks for the same n-grams often. */
export function modelCounts(q: Queries): ModelCounts {
  const { total, distinct } = q.totals(1);
  const cache = new Map<string, number>();
  return {
    tokens: total,
    types: distinct,
    count(ids) {
      const key = ids.join(',');
      let count = cache.get(key);
      if (count === undefined) {
        // A bound on the cache keeps memory flat on a huge held-out file.
        if (cache.size >= 1_000_000) cache.clear();
        cache.set(key, (count = q.ngramCount(ids)));
      }
      return count;
    },
  };
}

export function runTokenizer(q: Queries): { tokenizer: TokenizerName; lowercase: boolean; jsonField: string } {
  const tokenizer = q.meta('tokenizer');
  if (!tokenizer || !(TOKENIZERS as readonly string[]).includes(tokenizer)) {
    throw new LmpipeError('STATE', `Expected the database to record its tokenizer (meta key \`tokenizer\`), got \`${tokenizer ?? 'nothing'}\`; rerun the count stage`);
  }
  return { tokenizer: tokenizer as TokenizerName, lowercase: q.meta('lowercase') === 'true', jsonField: q.meta('jsonField') ?? 'text' };
}

export async function heldOutPerplexity(q: Queries, file: string, options: HeldOutOptions): Promise<HeldOutResult> {
  const { tokenizer, lowercase, jsonField } = runTokenizer(q);
  const scorer = ngramModel(modelCounts(q), { order: options.order, eps: options.eps }).scorer();
  // One shard per file: the tokenizer then sees each document whole, with no cut to stitch.
  const shards = await planShards([file], { shardBytes: Number.MAX_SAFE_INTEGER });
  const report = { invalidUtf8: 0, skippedRecords: 0 };
  const interner = new Interner();
  const runIds: (number | undefined)[] = [];
  for await (const batch of tokenize(read(shards, { jsonField, report }), { tokenizer, lowercase, interner })) {
    const ids = Array.from(batch.ids, (local) => {
      // Local ids are dense from 0, so an array caches each distinct token's run id once.
      if (local >= runIds.length || !(local in runIds)) runIds[local] = q.tokenId(interner.token(local));
      return runIds[local];
    });
    scorer.add(ids, batch.documentStart);
  }
  return { ...scorer.result(), tokenizer, invalidUtf8: report.invalidUtf8 };
}

export interface HeldOutKnResult extends KnPerplexity {
  tokenizer: TokenizerName;
  invalidUtf8: number;
}

/**
 * Kneser-Ney perplexity of `file` as KenLM's `query` computes it: each line a sentence (as the
 * count stage splits and tokenizes them), its words and </s> scored, OOVs as <unk>.
 */
export async function heldOutKnPerplexity(q: Queries, file: string, model: KnModel): Promise<HeldOutKnResult> {
  const { tokenizer, lowercase, jsonField } = runTokenizer(q);
  const report = { invalidUtf8: 0, skippedRecords: 0 };
  const scorer = knPerplexityScorer(model);
  for await (const words of sentencesOf([file], { tokenizer, lowercase, jsonField, report })) {
    scorer.add(words.map((word) => q.tokenId(word)));
  }
  return { ...scorer.result(), tokenizer, invalidUtf8: report.invalidUtf8 };
}
