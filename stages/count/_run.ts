/**
 * The count stage's run: plan shards, count them in workers, merge in order, spill to SQLite,
 * resume after a kill. See stages/count.ts for the stage object and the on-disk contract.
 *
 * A checkpoint is one transaction (storage/counts.ts saveCounts): the new tokens, every count
 * merged since the previous checkpoint, and the merger's state (shards done, tokens.bin length,
 * context of the open document). tokens.bin is written before that commit and truncated back to the
 * committed length on resume, so a kill at any instant loses nothing and counts nothing twice.
 */
import { closeSync, existsSync, openSync, statSync, truncateSync, writeSync } from 'node:fs';
import { LmpipeError } from '../../lib/errors.ts';
import type { Shard, StageContext, StageEvent } from '../../pipeline/types.ts';
import type { ShardCounts } from './_wire.ts';
import { workers } from '../../lib/workers.ts';
import { clearCounts, finishCounts, loadTokens, saveCounts } from '../../storage/counts.ts';
import { loadStage } from '../../storage/stages.ts';
import { countJob, transferables, type CountJob, type ShardOptions } from './_shard.ts';
import { CountMerger, type MergeState } from './_merge.ts';
import { planShards } from '../ingest/index.ts';
import { runPaths } from '../../storage/run-paths.ts';

export interface RunCountOptions {
  /** Commit at least this often (ms): bounds the work a kill loses. */
  checkpointMs?: number;
  /** Worker module, for tests that need a worker that crashes. */
  workerModule?: URL;
  /**
   * Where shard counts come from (default: this machine's worker pool): counts in shard order, and
   * where to hand back their buffers. stages/count/nats/ plugs in workers on other machines here.
   */
  shardSource?: ShardSource;
}

export type ShardSource = (shards: Shard[], ctx: StageContext) => { results: AsyncIterable<ShardCounts>; recycle(buffers: ArrayBuffer[]): void };

interface CountCheckpointRecord extends MergeState {
  version: 1;
  /** Distinct tokens committed (rows of `tokens`): checked on resume. */
  tokens: number;
}

const MIB = 1 << 20;

export const tokensPath = (dir: string) => runPaths(dir).tokens;

/** Deletes everything the count stage wrote (the runner forgets the stage record). */
export function resetCount(ctx: Pick<StageContext, 'dir' | 'db'>): void {
  clearCounts(ctx.db);
  if (existsSync(tokensPath(ctx.dir))) truncateSync(tokensPath(ctx.dir), 0);
}

export async function* runCount(ctx: StageContext, options: RunCountOptions = {}): AsyncGenerator<StageEvent> {
  const { config, db, fingerprint, signal } = ctx;
  const { checkpointMs, workerModule, shardSource } = { checkpointMs: config.checkpointSecs * 1000, ...options };
  const skipped: string[] = [];
  const shards = await planShards(config.input, { shardBytes: Math.max(1, Math.round(config.shardMb * MIB)), skipBinary: config.skipBinary, skipped });
  if (skipped.length > 0) ctx.log(`Skipped ${skipped.length} binary file${skipped.length === 1 ? '' : 's'} (a NUL byte): ${skipped.join(', ')}`);
  // Standard input's size is known only once it is read.
  const total = shards.some((shard) => shard.format === 'stdin') ? undefined : shards.reduce((sum, shard) => sum + shard.end - shard.start, 0);
  const saved = loadStage<CountCheckpointRecord>(db, 'count');
  if (saved?.state === 'done' && saved.fingerprint === fingerprint) return;
  const resume = saved?.fingerprint === fingerprint && saved.checkpoint.version === 1 ? saved.checkpoint : undefined;
  if (!resume) resetCount(ctx);
  const merger = new CountMerger(config.order, resume ? { tokens: loadTokens(db), state: _stateOf(resume) } : {});
  if (resume && merger.tokenCount !== resume.tokens) {
    throw new LmpipeError('STATE', `Expected ${resume.tokens} tokens in the database, found ${merger.tokenCount}; run again with --fresh`, { stage: 'count' });
  }
  const fd = _openStream(ctx.dir, merger.state.streamBytes);
  const budget = config.memoryMb * MIB;
  // SQLite's page cache counts against the budget too: a quarter of it, at most the usual 256 MiB.
  const cacheSize = db.prepare('PRAGMA cache_size').get()?.cache_size;
  db.exec(`PRAGMA cache_size = -${Math.round(Math.min(256 * 1024, Math.max(2048, config.memoryMb * 256)))}`);
  let uncommitted = 0;
  const commit = () => {
    uncommitted = 0;
    merger.flush((batch, state) => saveCounts(db, batch, { fingerprint, record: { version: 1, ...state, tokens: merger.tokenCount } }));
  };
  let done = shards.slice(0, merger.state.shardsDone).reduce((sum, shard) => sum + shard.end - shard.start, 0);
  try {
    yield { done, total, unit: 'bytes' };
    let committedAt = Date.now();
    const remaining = shards.slice(merger.state.shardsDone);
    const source = shardSource ? shardSource(remaining, ctx) : _countShards(remaining, ctx, workerModule);
    for await (const counts of source.results) {
      // Spill first when merging this shard could take the tables past the budget.
      if (uncommitted > 0 && (merger.peakBytes(counts) > budget || merger.overflows(counts))) commit();
      for (const piece of merger.merge(shards[counts.index], counts)) {
        _writeAll(fd, new Uint8Array(piece.buffer, piece.byteOffset, piece.byteLength));
        merger.state.streamBytes += piece.byteLength;
      }
      // Merged and written: nothing reads the shard's arrays any more.
      source.recycle(transferables(counts));
      uncommitted++;
      done += counts.bytes;
      if (Date.now() - committedAt >= checkpointMs) {
        commit();
        committedAt = Date.now();
      }
      yield { done, total, unit: 'bytes' };
      // Ctrl-C: keep what is merged (the abort may have come while the consumer held the event).
      if (signal.aborted) {
        if (uncommitted > 0) commit();
        return;
      }
    }
    commit();
    // The shard sources stop early on an abort: what was merged is committed, but it is not all.
    if (signal.aborted) return;
  } finally {
    closeSync(fd);
    if (cacheSize !== undefined) db.exec(`PRAGMA cache_size = ${Number(cacheSize)}`);
  }
  _finish(ctx, merger);
}

function _stateOf(record: CountCheckpointRecord): MergeState {
  const { version: _version, tokens: _tokens, ...state } = record;
  return state;
}

/**
 * Shard counts in index order, from the pool, whose workers include this thread (so one worker
 * means no thread at all). An abort stops between shards (never inside one), so the caller can
 * commit and return. `recycle` takes back a result's buffers, for whichever worker counts next.
 */
function _countShards(shards: Shard[], ctx: StageContext, module = COUNT_WORKER) {
  const { tokenizer, lowercase, jsonField, order, workers: size } = ctx.config;
  const options: ShardOptions = { tokenizer, lowercase, jsonField, order, run: crypto.randomUUID() };
  // A worker thread cannot read the process's standard input: then this thread counts everything.
  // Nor is a thread started that would find no shard to count (The Time Machine is one shard).
  const threads = shards.some((shard) => shard.format === 'stdin') ? 1 : Math.max(1, Math.min(size, shards.length));
  const recycled: ArrayBuffer[] = [];
  const results = workers<ShardCounts>(shards, {
    workers: threads, options, module, stage: 'count', signal: ctx.signal, log: ctx.log, recycled, inline: (job) => countJob(job as CountJob),
  });
  return { results, recycle: (buffers: ArrayBuffer[]) => void recycled.push(...buffers) };
}

/** The worker thread's module: it runs countJob on each shard it is sent. */
const COUNT_WORKER = new URL('./_worker.ts', import.meta.url);

/** Opens tokens.bin for appending after cutting it back to what the last checkpoint covers. */
function _openStream(dir: string, bytes: number): number {
  const path = tokensPath(dir);
  const size = existsSync(path) ? statSync(path).size : 0;
  if (size < bytes) {
    throw new LmpipeError('STATE', `Expected ${path} to hold at least ${bytes} bytes, found ${size}; run again with --fresh`, { stage: 'count' });
  }
  if (existsSync(path)) truncateSync(path, bytes);
  return openSync(path, 'a');
}

function _writeAll(fd: number, bytes: Uint8Array): void {
  for (let offset = 0; offset < bytes.length;) offset += writeSync(fd, bytes, offset, bytes.length - offset);
}

function _finish(ctx: StageContext, merger: CountMerger): void {
  const { config, db, fingerprint } = ctx;
  const state = merger.state;
  if (state.totals[0] === 0) throw _noTokens(config, state);
  const meta: Record<string, string> = {
    tokenizer: config.tokenizer,
    order: String(config.order),
    lowercase: String(config.lowercase),
    jsonField: config.jsonField,
    inputs: JSON.stringify(config.input),
    tokens: String(state.totals[0]),
    documents: String(state.documents),
    bytes: String(state.bytes),
    invalidUtf8: String(state.invalidUtf8),
  };
  const record = { version: 1, ...state, tokens: merger.tokenCount };
  const distinct = finishCounts(db, { fingerprint, order: config.order, meta, totals: state.totals, checkpoint: record });
  if (state.invalidUtf8 > 0) ctx.log(`Replaced ${state.invalidUtf8} invalid UTF-8 sequences with U+FFFD`);
  if (state.skippedRecords > 0) ctx.log(`Skipped ${state.skippedRecords} JSON records without the \`${config.jsonField}\` field`);
  ctx.log(`Counted ${state.totals[0]} tokens (${merger.tokenCount} distinct) in ${state.documents} documents; ` +
    distinct.map((rows, i) => `${rows} distinct ${i + 1}-grams`).join(', '));
}

/** Input that yields no token is a mistake, said here rather than as an empty model later: why none came. */
function _noTokens(config: StageContext['config'], state: MergeState): LmpipeError {
  const files = config.input.length === 1 ? { file: config.input[0] } : {};
  const said = (message: string) => new LmpipeError('INPUT', message, { stage: 'count', ...files });
  if (state.skippedRecords > 0 && state.documents === 0) {
    const fields = state.skippedFields?.length ? `; the first one has ${state.skippedFields.join(', ')}` : '';
    return said(`Expected JSON records with a \`${config.jsonField}\` field (--json-field), got ${state.skippedRecords} records without one${fields}`);
  }
  if (state.bytes === 0) return said('Expected text to count, got empty input (0 bytes)');
  const kept = config.tokenizer.startsWith('d2l') ? ' (d2l tokenizers keep only the letters A-Z and a-z)' : '';
  return said(`Expected text to count, got ${state.bytes} bytes that hold no token of --tokenizer ${config.tokenizer}${kept}`);
}
