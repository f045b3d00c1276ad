/**
 * The count stage's run, in three phases (README "Counting at scale"; stages/count/count.ts has the
 * stage object and the on-disk contract):
 *   count:  shards counted in the worker pool, merged in shard order (tokens, unigrams,
 *           tokens.bin), each shard's n-grams written as its sorted run (stages/count/_runfile.ts);
 *   reduce: the hash partitions reduced in the pool, in parallel (stages/count/_reduce.ts);
 *   write:  each table's partitions (ngram2..N, sentence2..N) merged by key into a database file of
 *           its own and indexed, the tables in parallel in the pool (stages/count/_write.ts); each
 *           file copied into lmpipe.sqlite as soon as it is built.
 *
 * Every checkpoint is one transaction holding the phase and its cursor. While counting: the new
 * tokens, the unigram counts and the merger's state (shards done, tokens.bin length, context of
 * the open document); tokens.bin and the runs of the shards it covers are written before that
 * commit, and a resume cuts tokens.bin back and deletes the runs past it. While reducing: the
 * partitions done (their files are renamed into place before). While writing: the tables whose
 * files are built, and the tables copied (each committed with its rows). So a kill at any instant
 * loses nothing and counts nothing twice.
 */
import { closeSync, existsSync, openSync, rmSync, statSync, truncateSync, writeSync } from 'node:fs';
import { crashPoint } from '../../lib/crash.ts';
import { LmpipeError } from '../../lib/errors.ts';
import type { Shard, StageContext, StageEvent } from '../../pipeline/types.ts';
import type { ShardCounts } from './_wire.ts';
import { workers, type PoolJob } from '../../lib/workers.ts';
import { clearCounts, copyNgrams, finishCounts, loadTokens, saveCounts } from '../../storage/counts.ts';
import { loadStage, saveCheckpoint } from '../../storage/stages.ts';
import { transferables, type ShardOptions } from './_shard.ts';
import { runJob, type PoolMessage } from './_jobs.ts';
import { CountMerger, type MergeState } from './_merge.ts';
import type { ReduceJob, ReduceResult } from './_reduce.ts';
import { BUCKETS, pruneRuns, runPath, runTables, tablePath, writeRun } from './_runfile.ts';
import type { BuildJob, BuildResult } from './_write.ts';
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
  /**
   * Who reduces the partitions (default: this machine's worker pool): each result once its
   * `part-<p>.bin` is in place, in any order. stages/count/nats/ plugs in workers on other machines here.
   */
  reduceSource?: ReduceSource;
}

export type ShardSource = (shards: Shard[], ctx: StageContext) => { results: AsyncIterable<ShardCounts>; recycle(buffers: ArrayBuffer[]): void };
export type ReduceSource = (jobs: ReduceJob[], ctx: StageContext) => AsyncIterable<ReduceResult>;

export type CountPhase = 'count' | 'reduce' | 'write';

interface CountCheckpointRecord extends MergeState {
  version: 3;
  /** Distinct tokens committed (rows of `tokens`): checked on resume. */
  tokens: number;
  phase: CountPhase;
  /** Hash partitions, chosen when counting ends (0 before). */
  partitions: number;
  /** Partitions reduced: their part files exist. */
  reduced: number[];
  /** Tables (indexes into runTables(order)) whose files are built (count-runs/<name>-<n>.sqlite). */
  built: number[];
  /** Tables copied into lmpipe.sqlite. */
  copied: number[];
}

const MIB = 1 << 20;

/** Deletes everything the count stage wrote (the runner forgets the stage record). */
export function resetCount(ctx: Pick<StageContext, 'dir' | 'db'>): void {
  clearCounts(ctx.db);
  const tokens = runPaths(ctx.dir).tokens;
  if (existsSync(tokens)) truncateSync(tokens, 0);
  rmSync(runPaths(ctx.dir).countRuns, { recursive: true, force: true });
}

export async function* runCount(ctx: StageContext, options: RunCountOptions = {}): AsyncGenerator<StageEvent> {
  const { config, db, fingerprint, signal } = ctx;
  const skipped: string[] = [];
  const shards = await planShards(config.input, { shardBytes: Math.max(1, Math.round(config.shardMb * MIB)), skipBinary: config.skipBinary, skipped });
  if (skipped.length > 0) ctx.log(`Skipped ${skipped.length} binary file${skipped.length === 1 ? '' : 's'} (a NUL byte): ${skipped.join(', ')}`);
  const runs = runPaths(ctx.dir).countRuns;
  const saved = loadStage<CountCheckpointRecord>(db, 'count');
  if (saved?.state === 'done' && saved.fingerprint === fingerprint) {
    // A kill between the last commit and the clean-up leaves the runs behind.
    rmSync(runs, { recursive: true, force: true });
    return;
  }
  const resume = saved?.fingerprint === fingerprint && saved.checkpoint.version === 3 ? saved.checkpoint : undefined;
  if (!resume) resetCount(ctx);
  const merger = new CountMerger(config.order, resume ? { tokens: loadTokens(db), state: _stateOf(resume) } : {});
  if (resume && merger.tokenCount !== resume.tokens) {
    throw new LmpipeError('STATE', `Expected ${resume.tokens} tokens in the database, found ${merger.tokenCount}; run again with --fresh`, { stage: 'count' });
  }
  if (resume && resume.phase !== 'count') merger.release();
  const progress: Pick<CountCheckpointRecord, 'phase' | 'partitions' | 'reduced' | 'built' | 'copied'> = resume
    ? { phase: resume.phase, partitions: resume.partitions, reduced: resume.reduced, built: resume.built, copied: resume.copied }
    : { phase: 'count', partitions: 0, reduced: [], built: [], copied: [] };
  const record = (): CountCheckpointRecord => ({ version: 3, ...merger.state, tokens: merger.tokenCount, ...progress });
  const save = () => saveCheckpoint(db, 'count', fingerprint, record());
  const tables = runTables(config.order);
  const reusable = progress.built.filter((t) => !progress.copied.includes(t));
  pruneRuns(runs, { shards: merger.state.shardsDone, parts: new Set(progress.phase === 'count' ? [] : progress.reduced), tables: reusable.map((t) => tables[t]) });
  // SQLite's page cache counts against the budget too: a sixteenth of it (the parallel build jobs of
  // the write phase have caches of their own), at most the usual 256 MiB.
  const cacheSize = db.prepare('PRAGMA cache_size').get()?.cache_size;
  db.exec(`PRAGMA cache_size = -${Math.round(Math.min(256 * 1024, Math.max(2048, (config.memoryMb * 1024) / 16)))}`);
  try {
    if (progress.phase === 'count') {
      if (!(yield* _countPhase(ctx, merger, { shards, runs, record, ...options }))) return;
      merger.release();
      Object.assign(progress, { phase: 'reduce', partitions: config.order < 2 ? 0 : _partitions(runs, shards.length, config) });
      save();
    }
    if (progress.phase === 'reduce') {
      const jobs = Array.from({ length: progress.partitions }, (_, index) => index).filter((index) => !progress.reduced.includes(index))
        .map((index): ReduceJob => ({ index, path: runs, partitions: progress.partitions, shards: shards.length, order: config.order }));
      yield { done: progress.reduced.length, total: progress.partitions, unit: 'steps', data: { phase: 'reduce' } };
      const results = options.reduceSource
        ? options.reduceSource(jobs, ctx)
        : _pool<ReduceResult, ReduceJob>(jobs, ctx, { options: { job: 'reduce' }, module: options.workerModule, threadsOnly: true });
      for await (const result of results) {
        progress.reduced.push(result.partition);
        save();
        yield { done: progress.reduced.length, total: progress.partitions, unit: 'steps', data: { phase: 'reduce' } };
        if (signal.aborted) return;
      }
      if (signal.aborted) return;
      Object.assign(progress, { phase: 'write' });
      save();
    }
    if (!(yield* _writePhase(ctx, { runs, progress, record, save, workerModule: options.workerModule }))) return;
  } finally {
    if (cacheSize !== undefined) db.exec(`PRAGMA cache_size = ${Number(cacheSize)}`);
  }
  // The finished record says what was counted, not how: partitions and jobs depend on --workers.
  _finish(ctx, merger, { version: 3, ...merger.state, tokens: merger.tokenCount });
  rmSync(runs, { recursive: true, force: true });
}

/**
 * Counts the shards not counted yet and writes their runs; commits at least every checkpointMs.
 * Returns whether every shard is counted (false after Ctrl-C, with what was merged committed).
 */
async function* _countPhase(
  ctx: StageContext, merger: CountMerger,
  options: RunCountOptions & { shards: Shard[]; runs: string; record(): CountCheckpointRecord },
): AsyncGenerator<StageEvent, boolean> {
  const { config, db, fingerprint, signal } = ctx;
  const { shards, runs, record, checkpointMs = config.checkpointSecs * 1000 } = options;
  // Standard input's size is known only once it is read.
  const total = shards.some((shard) => shard.format === 'stdin') ? undefined : shards.reduce((sum, shard) => sum + shard.end - shard.start, 0);
  const fd = _openStream(ctx.dir, merger.state.streamBytes);
  let uncommitted = 0;
  let committedAt = Date.now();
  // The unigram counts wait in memory for the commit: an eighth of the budget.
  const pendingBytes = (config.memoryMb * MIB) / 8;
  const commit = () => {
    uncommitted = 0;
    merger.flush((batch) => saveCounts(db, batch, { fingerprint, record: record() }));
    committedAt = Date.now();
  };
  let done = shards.slice(0, merger.state.shardsDone).reduce((sum, shard) => sum + shard.end - shard.start, 0);
  try {
    yield { done, total, unit: 'bytes', data: { phase: 'count' } };
    const remaining = shards.slice(merger.state.shardsDone);
    const source = options.shardSource ? options.shardSource(remaining, ctx) : _countShards(remaining, ctx, options.workerModule);
    for await (const counts of source.results) {
      if (uncommitted > 0 && merger.peakBytes(counts) > pendingBytes) {
        commit();
        crashPoint('flush');
      }
      const { pieces, run } = merger.merge(shards[counts.index], counts);
      for (const piece of pieces) {
        _writeAll(fd, new Uint8Array(piece.buffer, piece.byteOffset, piece.byteLength));
        merger.state.streamBytes += piece.byteLength;
      }
      if (config.order >= 2) writeRun(runPath(runs, counts.index), config.order, run);
      crashPoint('count');
      // Merged and written: nothing reads the shard's arrays any more.
      source.recycle(transferables(counts));
      uncommitted++;
      done += counts.bytes;
      if (Date.now() - committedAt >= checkpointMs) commit();
      yield { done, total, unit: 'bytes', data: { phase: 'count' } };
      // Ctrl-C: keep what is merged (the abort may have come while the consumer held the event).
      if (signal.aborted) {
        if (uncommitted > 0) commit();
        return false;
      }
    }
    commit();
    // The shard sources stop early on an abort: what was merged is committed, but it is not all.
    return !signal.aborted;
  } finally {
    closeSync(fd);
  }
}

/**
 * Builds the tables' files in the pool and copies each into lmpipe.sqlite as soon as it is built.
 * Returns whether every table is copied (false after Ctrl-C).
 */
async function* _writePhase(
  ctx: StageContext,
  options: { runs: string; progress: Pick<CountCheckpointRecord, 'partitions' | 'built' | 'copied'>; record(): CountCheckpointRecord; save(): void; workerModule?: URL },
): AsyncGenerator<StageEvent, boolean> {
  const { config, db, fingerprint, signal } = ctx;
  const { runs, progress, save } = options;
  if (progress.partitions === 0) return true;
  const tables = runTables(config.order);
  const copy = (t: number) => {
    copyNgrams(db, tablePath(runs, tables[t]), tables[t], { fingerprint, record: { ...options.record(), copied: [...progress.copied, t] } });
    progress.copied.push(t);
    rmSync(tablePath(runs, tables[t]), { force: true });
  };
  const step = (): StageEvent => ({ done: progress.copied.length, total: tables.length, unit: 'steps', data: { phase: 'write' } });
  yield step();
  // Built before a kill, not copied yet.
  for (const t of progress.built.filter((t) => !progress.copied.includes(t))) {
    copy(t);
    yield step();
    if (signal.aborted) return false;
  }
  // The biggest tables first (higher orders have more rows), so that the pool's last jobs are
  // small and its threads finish together.
  const cacheKib = _buildCacheKib(config);
  const jobs = tables.map((_, t) => t).filter((t) => !progress.copied.includes(t))
    .sort((a, b) => tables[b].n - tables[a].n || a - b)
    .map((t): BuildJob => ({ index: t, path: runs, partitions: progress.partitions, order: config.order, cacheKib }));
  for await (const result of _pool<BuildResult, BuildJob>(jobs, ctx, { options: { job: 'build' }, module: options.workerModule, threadsOnly: true })) {
    progress.built.push(result.table);
    save();
    copy(result.table);
    yield step();
    if (signal.aborted) return false;
  }
  return true;
}

/**
 * A build job's SQLite page cache: the build jobs running at once (one per worker) share a
 * sixteenth of --memory-mb for their caches, and as much again for the sorters of their count
 * indexes (SQLite sorts in up to a cache's worth of memory, then spills); between 2 and 64 MiB each.
 */
function _buildCacheKib(config: StageContext['config']): number {
  return Math.min(64 * 1024, Math.max(2 * 1024, (config.memoryMb * 1024) / 16 / Math.max(1, config.workers)));
}

/**
 * Hash partitions for the reduce: a power of two, at least two per reducer (so they balance), and
 * enough that the reducers fit in half of --memory-mb. A reducer holds its sections of the runs
 * (run bytes / P) and about twice that in merged and sorted rows.
 */
function _partitions(runs: string, shards: number, config: StageContext['config']): number {
  let bytes = 0;
  for (let shard = 0; shard < shards; shard++) bytes += statSync(runPath(runs, shard)).size;
  const reducers = Math.max(1, config.workers);
  const share = (config.memoryMb * MIB) / 2 / reducers;
  let partitions = 1;
  while (partitions < BUCKETS && (partitions < 2 * reducers || (3 * bytes) / partitions > share)) partitions *= 2;
  return partitions;
}

function _stateOf(record: CountCheckpointRecord): MergeState {
  const { version: _version, tokens: _tokens, phase: _phase, partitions: _partitions, reduced: _reduced, built: _built, copied: _copied, ...state } = record;
  return state;
}

/**
 * Shard counts in index order, from the pool, whose workers include this thread (so one worker
 * means no thread at all). An abort stops between shards (never inside one), so the caller can
 * commit and return. `recycle` takes back a result's buffers, for whichever worker counts next.
 */
function _countShards(shards: Shard[], ctx: StageContext, module?: URL) {
  const { tokenizer, lowercase, jsonField, order } = ctx.config;
  // About 200 bytes a token (its text, the thread's interner and hashes, the main thread's copy),
  // and a sixteenth of the budget for the dictionaries of all threads.
  const dictionaryTokens = Math.max(1 << 16, Math.floor((ctx.config.memoryMb * MIB) / 16 / ctx.config.workers / 200));
  // Recycled result buffers: about one shard's worth per thread, a thirty-second of the budget each.
  const poolBytes = (ctx.config.memoryMb * MIB) / 32;
  const options: ShardOptions = { tokenizer, lowercase, jsonField, order, run: crypto.randomUUID(), dictionaryTokens, poolBytes };
  // A shard's result (its stream, n-grams and sentence n-grams, with hashes and Float64 counts) is
  // about 4 × order + 2 bytes per byte of text (14 at order 3, measured 13-14): the results held
  // ahead of the merge get an eighth of the budget, up to the pool's usual 2 per worker.
  const ahead = Math.min(2 * ctx.config.workers, Math.floor((ctx.config.memoryMb * MIB) / 8 / (ctx.config.shardMb * MIB * (4 * order + 2))));
  const recycled: ArrayBuffer[] = [];
  // A worker thread cannot read the process's standard input: then this thread counts everything.
  const results = _pool<ShardCounts, Shard>(shards, ctx, { options, module, recycled, ahead, threads: shards.some((shard) => shard.format === 'stdin') ? 1 : undefined });
  return { results, recycle: (buffers: ArrayBuffer[]) => void recycled.push(...buffers) };
}

/**
 * The stage's worker pool on `jobs`: --workers threads, this one included, never more than there
 * are jobs (The Time Machine is one shard), results in job order.
 */
function _pool<R, J extends PoolJob>(jobs: J[], ctx: StageContext, options: { options: object; module?: URL; recycled?: ArrayBuffer[]; threads?: number; threadsOnly?: boolean; ahead?: number }) {
  const threads = options.threads ?? Math.max(1, Math.min(ctx.config.workers, jobs.length));
  // threadsOnly: with 2 or more threads, this thread runs no job. A job run here blocks it, and with
  // it the hand-out of jobs to the threads as they start: the long jobs of the reduce and write
  // phases then ran one after the other. Here it has the copies to make (write) or nothing to do.
  const inline = options.threadsOnly && threads > 1 ? undefined : (job: unknown) => runJob(job as PoolMessage);
  return workers<R, J>(jobs, {
    workers: threads, options: options.options, module: options.module ?? WORKER, stage: 'count', signal: ctx.signal, log: ctx.log,
    recycled: options.recycled, ahead: options.ahead, inline,
  });
}

/** The worker thread's module: it runs each job (a shard to count, a partition to reduce) it is sent. */
const WORKER = new URL('./_worker.ts', import.meta.url);

/** Opens tokens.bin for appending after cutting it back to what the last checkpoint covers. */
function _openStream(dir: string, bytes: number): number {
  const path = runPaths(dir).tokens;
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

function _finish(ctx: StageContext, merger: CountMerger, record: object): void {
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
