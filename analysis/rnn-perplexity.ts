/**
 * Held-out perplexity of a run's trained RNN on any text, as PyTorch's word_language_model reports
 * test perplexity: the files are read and tokenized exactly as the run's corpus was (its tokenizer,
 * --lowercase and --json-field, from the run's meta), tokens outside the vocabulary become <unk>
 * (id 0) as the encode stage maps them, documents are concatenated, and the stream is scored with
 * the trainer's own validation pass (sequential rows from offset 0, the state carried, with the
 * run's --batch and --steps). `npm run eval` (issue 14) compares it with the n-gram models.
 *
 *   const { perplexity } = await rnnPerplexity('runs/wiki', ['wikitext-2/test.txt']);
 */
import * as tf from '@tensorflow/tfjs-core';
import { LmpipeError } from '../lib/errors.ts';
import type { TokenizerName } from '../pipeline/types.ts';
import { loadModel } from '../stages/sample.ts';
import { backend, evaluate, type BackendChoice } from '../stages/train/index.ts';
import { runPaths } from '../storage/run-paths.ts';
import { openRunDatabase } from '../storage/schema.ts';
import { getMeta } from '../storage/stages.ts';
import { vocabTokens } from '../storage/vocab.ts';
import { tokenStream } from './_token-stream.ts';

export interface RnnPerplexity {
  /** Tokens read from the files (each one after the first is predicted from those before it). */
  tokens: number;
  /** Of them, how many were outside the vocabulary (scored as <unk>). */
  unknown: number;
  /** Mean cross-entropy in nats per token, and its exponential. */
  crossEntropy: number;
  perplexity: number;
}

export async function rnnPerplexity(dir: string, paths: string[], options: { backend?: BackendChoice } = {}): Promise<RnnPerplexity> {
  await backend(options.backend ?? 'auto');
  const db = openRunDatabase(runPaths(dir).database, { readonly: true });
  try {
    const tokenizer = (getMeta(db, 'tokenizer') ?? 'd2l-char') as TokenizerName;
    const lowercase = getMeta(db, 'lowercase') === 'true';
    const jsonField = getMeta(db, 'jsonField') ?? 'text';
    const ids = new Map(vocabTokens(db).map((token, id) => [token, id]));
    const stream: number[] = [];
    let unknown = 0;
    for await (const token of tokenStream(paths, { tokenizer, lowercase, jsonField })) {
      const id = ids.get(token);
      if (id === undefined) unknown++;
      stream.push(id ?? 0);
    }
    const model = loadModel(dir, db);
    try {
      const loss = await evaluate(model.params, model.shape, Int32Array.from(stream), { batch: model.settings.batch, steps: model.settings.steps });
      if (loss === undefined) throw new LmpipeError('INPUT', `Expected at least 2 tokens to score, got ${stream.length}`, { file: paths.join(' ') });
      return { tokens: stream.length, unknown, crossEntropy: loss, perplexity: Math.exp(loss) };
    } finally {
      tf.dispose(Object.values(model.params));
    }
  } finally {
    db.close();
  }
}
