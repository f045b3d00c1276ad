/**
 * Count stage: raw text -> n-gram counts of orders 1..N in SQLite, and the corpus as token ids.
 *
 * Shards (files, or byte ranges cut at line ends) are read, tokenized and counted in a pool of
 * workers (pipeline/workers.ts, one per core by default, the main thread one of them, so
 * `--workers 1` starts no thread), then merged strictly in shard order on the main thread
 * (stages/_count-merge.ts), so the result
 * never depends on the number of workers, on `--memory-mb`, or on kills and resumes:
 *   - `tokens(id, token)`: every distinct token; ids in first-occurrence order over the corpus,
 *   - `ngram1..ngramN(w1.., count)`: counts of every n-gram inside a document (never across one),
 *   - `DIR/tokens.bin`: the corpus as Int32 little-endian `tokens.id`s, documents concatenated,
 *   - `meta`: tokenizer, order, lowercase, jsonField, inputs, tokens, documents, bytes,
 *     invalidUtf8, and total_n / distinct_n per order; indexes `ngram{n}_by_count`.
 * In-memory counts spill to SQLite (UPSERT) when they would pass `--memory-mb`, every 30 s, and at
 * the end; each spill is the checkpoint (stages/_count-run.ts).
 *
 * `count()` is the counting core on its own: TokenBatches (local ids) -> typed-array tables.
 */
import { stat } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import type { Config } from '../../pipeline/config.ts';
import type { Stage, TokenBatch } from '../../pipeline/types.ts';
import { ShardCounter, type ShardTables } from './_shard.ts';
import { resetCount, runCount } from './_run.ts';
import { planShards } from '../ingest/index.ts';

export interface CountOptions {
  /** Count orders 1..order (1 to 5). */
  order: number;
}

/**
 * Counts every n-gram of orders 1..order in `batches` (n-grams restart at each `documentStart`).
 * Returns the token stream, per-order keys and counts (`keys[n-1]` holds n ids per row), and the
 * head and tail the merger needs to count n-grams across a shard cut.
 */
export async function count(batches: AsyncIterable<TokenBatch> | Iterable<TokenBatch>, options: CountOptions): Promise<ShardTables> {
  const counter = new ShardCounter(options.order);
  for await (const batch of batches) counter.push(batch);
  return counter.finish();
}

export const countStage: Stage = {
  name: 'count',
  consumes: 'input files (text, .gz, JSON, JSON Lines, stdin)',
  produces: 'tables tokens and ngram1..ngramN, meta, DIR/tokens.bin',
  checkpoint: 'shards merged, tokens.bin length and open-document context, committed with the counts',
  // workers and memoryMb change how, never what: they stay out of the fingerprint.
  settings: (config: Config) => ({
    tokenizer: config.tokenizer,
    lowercase: config.lowercase,
    jsonField: config.jsonField,
    order: config.order,
    shardMb: config.shardMb,
  }),
  // Every file the inputs resolve to (directories walked), with its size and mtime.
  inputs: async (config: Config) => {
    const shards = await planShards(config.input, { shardBytes: Number.MAX_SAFE_INTEGER, skipBinary: config.skipBinary });
    const paths = [...new Set(shards.map((shard) => shard.path))];
    return Promise.all(paths.map(async (path) => {
      // Standard input cannot be fingerprinted before it is read: it is read anew on every run.
      if (path === '-') return { path, read: randomUUID() };
      const info = await stat(path);
      // Whole milliseconds: Deno reports mtimeMs without the fraction Node gives, and a run directory
      // must keep its fingerprints when it moves between the two.
      return { path, size: info.size, mtimeMs: Math.floor(info.mtimeMs) };
    }));
  },
  run: (ctx) => runCount(ctx),
  reset: (ctx) => resetCount(ctx),
};
