/**
 * Files read and tokenized exactly as a run's corpus was (its tokenizer, --lowercase and
 * --json-field), as one stream of tokens in the order the count stage writes tokens.bin: what the
 * RNN reads. Shared by the held-out scorers (eval.ts, rnn-perplexity.ts).
 */
import type { TokenizerName } from '../pipeline/types.ts';
import { Interner, planShards, read, tokenize } from '../stages/ingest/index.ts';

export interface Reading {
  tokenizer: TokenizerName;
  lowercase: boolean;
  jsonField: string;
}

/** Each token of `paths`, documents concatenated. */
export async function* tokenStream(paths: string[], reading: Reading): AsyncGenerator<string> {
  const interner = new Interner();
  const chunks = read(await planShards(paths), { jsonField: reading.jsonField });
  for await (const batch of tokenize(chunks, { tokenizer: reading.tokenizer, lowercase: reading.lowercase, interner })) {
    for (const local of batch.ids) yield interner.token(local);
  }
}
