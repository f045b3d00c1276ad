/**
 * Vocab stage: unigram counts -> the `vocab(id, token, count)` table, with d2l's (0.17) semantics:
 *   id 0            `<unk>`, counting every occurrence of a token not kept,
 *   ids 1..r        the reserved tokens (`--reserved`, default `<pad> <bos> <eos>`), each counting
 *                   its own occurrences (0 unless the corpus holds it; it is not listed twice),
 *   then            the other tokens by descending count, ties in first-occurrence order, down to
 *                   `--min-freq`, and at most `--max-vocab` entries in all (0: no limit).
 * So the counts add up to the corpus's token count, and every token in tokens.bin has an id.
 * One transaction writes the table and marks the stage done, so there is nothing to resume.
 */
import type { Config } from '../pipeline/config.ts';
import { LmpipeError } from '../lib/errors.ts';
import type { Stage, StageContext, StageEvent } from '../pipeline/types.ts';
import { forgetStage } from '../storage/stages.ts';
import { clearVocab, saveVocab, tokensByCount, type VocabEntry } from '../storage/vocab.ts';

export const UNK = '<unk>';

export interface VocabOptions {
  reserved: readonly string[];
  minFreq: number;
  maxVocab: number;
}

/**
 * The vocabulary for `tokens` (every distinct token with its count, by descending count, ties by
 * first occurrence), as an array whose index is the id.
 */
export function vocab(tokens: Iterable<VocabEntry>, options: VocabOptions): VocabEntry[] {
  const { reserved, minFreq, maxVocab } = options;
  _checkOptions(options);
  const entries: VocabEntry[] = [{ token: UNK, count: 0 }, ...reserved.map((token) => ({ token, count: 0 }))];
  const ids = new Map(entries.map((entry, id) => [entry.token, id]));
  const limit = maxVocab > 0 ? maxVocab : Infinity;
  let dropped = 0;
  for (const { token, count } of tokens) {
    const id = ids.get(token);
    if (id !== undefined) entries[id].count += count;
    else if (count >= minFreq && entries.length < limit) {
      ids.set(token, entries.length);
      entries.push({ token, count });
    } else dropped += count;
  }
  entries[0].count += dropped;
  return entries;
}

function _checkOptions({ reserved, maxVocab }: VocabOptions): void {
  const seen = new Set<string>([UNK]);
  for (const token of reserved) {
    if (seen.has(token)) throw new LmpipeError('USAGE', `Expected \`--reserved\` to hold distinct tokens other than ${UNK}, got \`${token}\` twice`, { stage: 'vocab' });
    seen.add(token);
  }
  if (maxVocab > 0 && maxVocab < 1 + reserved.length) {
    throw new LmpipeError('USAGE', `Expected \`--max-vocab\` to be 0 or at least ${1 + reserved.length} (<unk> and the reserved tokens), got \`${maxVocab}\``, { stage: 'vocab' });
  }
}

async function* runVocab(ctx: StageContext): AsyncGenerator<StageEvent> {
  const { db, config, fingerprint } = ctx;
  const entries = vocab(tokensByCount(db), config);
  saveVocab(db, entries, { fingerprint, checkpoint: { size: entries.length } });
  const unknown = entries[0].count;
  ctx.log(`Vocabulary of ${entries.length} tokens${unknown > 0 ? `; ${unknown} occurrences map to ${UNK}` : ''}`);
  yield { done: entries.length, total: entries.length, unit: 'rows' };
}

export const vocabStage: Stage = {
  name: 'vocab',
  consumes: 'tables tokens and ngram1',
  produces: 'table vocab',
  checkpoint: 'none: one transaction writes the whole table',
  settings: (config: Config) => ({ reserved: config.reserved, minFreq: config.minFreq, maxVocab: config.maxVocab }),
  run: runVocab,
  reset: ({ db }) => {
    clearVocab(db);
    forgetStage(db, 'vocab');
  },
};
