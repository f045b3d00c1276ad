/**
 * The coordinator's side of distributed counting: the count stage's shard source when `--nats` is
 * set. It hands the same thing the local pool does to the same merger (stages/count/_run.ts): shard
 * counts, strictly in shard order. So the database it writes is the one a local run writes.
 *
 * - Jobs: a window of shards ahead of the merge is published to the run's work-queue stream
 *   (_protocol.ts), each with a message id (a publish retried across a reconnect is stored once).
 *   A shard whose result object exists, or whose job is still in the stream, is not published
 *   again: a coordinator killed and rerun resumes from its SQLite checkpoint (shards merged) and
 *   publishes only what is missing. Jobs are idempotent by shard: a shard counted twice (a worker
 *   presumed dead that was only slow) writes the same object twice and is merged once.
 * - Results: workers store `count/<shard>` in the run's object store, then report on
 *   `results.count.<shard>`. The coordinator downloads each in turn (the next one while the merger
 *   works), checks it (_codec.ts: a garbage result stops the run, naming the shard), yields it, and
 *   deletes the objects it no longer needs. A merged-but-uncommitted shard whose object is gone is
 *   simply counted again after a kill.
 * - Failures: a job that failed MAX_ATTEMPTS times (reported by its worker, or a MAX_DELIVERIES
 *   advisory when its workers died) stops the run with an error naming the shard.
 * - The end: everything the run put in JetStream (stream, consumers, bucket) is deleted, when the
 *   last shard is merged and when the run stops on an error; a Ctrl-C keeps it for the rerun.
 * - Status: workers announce themselves on lmpipe.workers; every few seconds the coordinator logs
 *   the workers connected and the jobs pending, running and done, and writes them to
 *   DIR/nats-status.json (read by `status`).
 */
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { open as openFile, rm } from 'node:fs/promises';
import { AckPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType, type JetStreamManager } from '@nats-io/jetstream';
import { Objm, type ObjectStore } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/transport-node';
import { LmpipeError, type ErrorCode } from '../../../lib/errors.ts';
import { writeFileAtomic } from '../../../lib/checkpoint.ts';
import { describeNatsStatus, type NatsStatus } from '../../../pipeline/status.ts';
import { runPaths } from '../../../storage/run-paths.ts';
import type { Shard, StageContext } from '../../../pipeline/types.ts';
import type { ShardCounts } from '../index.ts';
import { connectNats, retrying } from './_connect.ts';
import { decodeShardCounts } from './_codec.ts';
import {
  ANNOUNCE_SUBJECT, CHUNK_BYTES, COORDINATOR_CONSUMER, MAX_ATTEMPTS, PRESENCE_MS, PRESENCE_SUBJECT, runNames,
  WORKERS_CONSUMER, type CountJobMessage, type Presence, type ResultMessage,
} from './_protocol.ts';

/**
 * Shards published ahead of the merge, at least: bounds the object store's share of a run (about
 * 7 MB a shard); with many workers, two per worker, so that none waits for a job.
 */
const WINDOW = 16;
const NANOS_PER_MS = 1e6;
const LOG_MS = 10_000;

/** The run's name in JetStream: the same for a rerun of the same count stage in the same directory. */
export function natsRunId(ctx: Pick<StageContext, 'dir' | 'fingerprint'>): string {
  return createHash('sha256').update(`${ctx.fingerprint}\0${resolve(ctx.dir)}`).digest('hex').slice(0, 16);
}

/** The count stage's shard source over NATS (the local one is the worker pool in _run.ts). */
export function natsCountShards(shards: Shard[], ctx: StageContext) {
  return { results: _follow(shards, ctx), recycle: (_buffers: ArrayBuffer[]) => {} };
}

async function* _follow(shards: Shard[], ctx: StageContext): AsyncGenerator<ShardCounts> {
  const { config } = ctx;
  if (shards.some((shard) => shard.format === 'stdin')) {
    throw new LmpipeError('USAGE', 'Expected files with `--nats` (workers cannot read this process\'s standard input)', { stage: 'count' });
  }
  const run = natsRunId(ctx);
  const names = runNames(run);
  const nc = await connectNats(config, `lmpipe coordinator ${hostname()} ${run}`);
  let finished = false;
  try {
    const jsm = await jetstreamManager(nc);
    await _createRun(jsm, names, config.natsAckWait * 1000);
    const store = await new Objm(nc).create(names.bucket, { storage: StorageType.File });
    const follower = new Follower(nc, jsm, store, shards, ctx, run);
    try {
      for (let next = 0; next < shards.length; next++) {
        await follower.publishWindow(next);
        const counts = await follower.take(next);
        if (counts === undefined) return; // aborted: the run stays in JetStream for the rerun
        yield counts;
        await follower.forget(shards[next].index);
      }
      finished = true;
    } catch (error) {
      finished = !ctx.signal.aborted;
      throw error;
    } finally {
      follower.stop();
      if (finished) {
        await _deleteRun(jsm, store, names.stream);
        await rm(runPaths(ctx.dir).natsStatus, { force: true });
      }
    }
  } finally {
    await nc.close();
  }
}

/** The run's stream and its two consumers (each add is a no-op when it exists with this config). */
async function _createRun(jsm: JetStreamManager, names: ReturnType<typeof runNames>, ackWaitMs: number): Promise<void> {
  const stream = await jsm.streams.info(names.stream).catch(() => undefined);
  if (!stream) {
    await jsm.streams.add({
      name: names.stream, subjects: [names.subjects], retention: RetentionPolicy.Workqueue, storage: StorageType.File,
      duplicate_window: 2 * 60 * 1000 * NANOS_PER_MS,
    });
  }
  const consumers = [
    { durable_name: WORKERS_CONSUMER, filter_subject: names.jobs, ack_wait: ackWaitMs * NANOS_PER_MS, max_deliver: MAX_ATTEMPTS },
    { durable_name: COORDINATOR_CONSUMER, filter_subject: names.results, ack_wait: 30_000 * NANOS_PER_MS },
  ];
  for (const consumer of consumers) {
    if (!(await jsm.consumers.info(names.stream, consumer.durable_name).catch(() => undefined))) {
      await jsm.consumers.add(names.stream, { ...consumer, ack_policy: AckPolicy.Explicit });
    }
  }
}

async function _deleteRun(jsm: JetStreamManager, store: ObjectStore, stream: string): Promise<void> {
  await store.destroy().catch(() => {});
  await jsm.streams.delete(stream).catch(() => {});
}

class Follower {
  private readonly js;
  private readonly names;
  private readonly session = crypto.randomUUID().slice(0, 8);
  /** Shard index -> its job is out (published or found in the stream) / its result is stored. */
  private readonly published = new Set<number>();
  private readonly ready = new Set<number>();
  private readonly byIndex = new Map<number, Shard>();
  private readonly workers = new Map<string, Presence & { seen: number }>();
  private failure: Error | undefined;
  private wake = () => {};
  private readonly timers: Array<ReturnType<typeof setInterval>> = [];
  private readonly stops: Array<() => void> = [];
  private prefetch: { index: number; bytes: Promise<Uint8Array | null> } | undefined;
  private merged = 0;
  private logged = { workers: -1, at: 0 };

  constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly store: ObjectStore,
    private readonly shards: Shard[],
    private readonly ctx: StageContext,
    private readonly run: string,
  ) {
    this.js = jetstream(nc);
    this.names = runNames(run);
    for (const shard of shards) this.byIndex.set(shard.index, shard);
    this.followResults();
    this.followAdvisories();
    this.followPresence();
    const abort = () => this.wake();
    ctx.signal.addEventListener('abort', abort);
    this.stops.push(() => ctx.signal.removeEventListener('abort', abort));
  }

  /** Publishes the jobs of the window from shards[from] on that are neither done nor out. */
  async publishWindow(from: number): Promise<void> {
    let added = false;
    for (const shard of this.shards.slice(from, from + Math.max(WINDOW, 2 * this.workers.size))) {
      const index = shard.index;
      if (this.published.has(index) || this.ready.has(index)) continue;
      this.published.add(index);
      if (await this.retry(() => this.store.info(this.names.countObject(index)))) {
        this.ready.add(index);
        continue;
      }
      if (await this.retry(() => this.jsm.streams.getMessage(this.names.stream, { last_by_subj: this.names.countJob(index) }))) continue;
      const job: CountJobMessage = {
        kind: 'count', run: this.run, shard,
        options: { tokenizer: this.ctx.config.tokenizer, lowercase: this.ctx.config.lowercase, jsonField: this.ctx.config.jsonField, order: this.ctx.config.order },
      };
      if (this.ctx.config.shipInput) {
        job.input = this.names.inputObject(index);
        const bytes = await _readShard(shard);
        await this.retry(() => this.store.putBlob({ name: job.input!, options: { max_chunk_size: CHUNK_BYTES } }, bytes));
      }
      await this.retry(() => this.js.publish(this.names.countJob(index), JSON.stringify(job), { msgID: `${this.run}.count.${index}.${this.session}` }));
      added = true;
    }
    if (added) this.nc.publish(ANNOUNCE_SUBJECT, this.run);
  }

  /** The counts of shards[position], once a worker stored them; undefined after an abort. */
  async take(position: number): Promise<ShardCounts | undefined> {
    const shard = this.shards[position];
    for (;;) {
      if (this.failure) throw this.failure;
      if (this.ctx.signal.aborted) return undefined;
      if (this.ready.has(shard.index)) break;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
    const bytes = await (this.prefetch?.index === shard.index ? this.prefetch.bytes : this.download(shard.index));
    this.prefetch = undefined;
    const following = this.shards[position + 1];
    if (following && this.ready.has(following.index)) {
      const download = this.download(following.index);
      download.catch(() => {});
      this.prefetch = { index: following.index, bytes: download };
    }
    if (!bytes) {
      // Deleted under us (a rerun of a killed coordinator raced a worker): count it again.
      this.ready.delete(shard.index);
      this.published.delete(shard.index);
      await this.publishWindow(position);
      return this.take(position);
    }
    try {
      return decodeShardCounts(bytes, { run: this.run, index: shard.index, order: this.ctx.config.order });
    } catch (error) {
      throw this.shardError(shard, 'INTERNAL', `A worker returned a result that is not valid counts: ${(error as Error).message}`);
    }
  }

  private download(index: number): Promise<Uint8Array | null> {
    return this.retry(() => this.store.getBlob(this.names.countObject(index)));
  }

  private retry<T>(request: () => Promise<T>): Promise<T> {
    return retrying(request, this.ctx.signal);
  }

  /** The shard is merged: its objects go (a rerun that needs them again recounts the shard). */
  async forget(index: number): Promise<void> {
    this.merged++;
    this.ready.delete(index);
    await this.store.delete(this.names.countObject(index)).catch(() => {});
    if (this.ctx.config.shipInput) await this.store.delete(this.names.inputObject(index)).catch(() => {});
  }

  stop(): void {
    for (const timer of this.timers) clearInterval(timer);
    for (const stop of this.stops) stop();
  }

  private fail(error: Error): void {
    this.failure ??= error;
    this.wake();
  }

  private shardError(shard: Shard, code: ErrorCode, message: string): LmpipeError {
    const position = shard.format === 'text' ? `bytes ${shard.start}-${shard.end}` : undefined;
    return new LmpipeError(code, `Shard ${shard.index}: ${message}`, { stage: 'count', file: shard.path, position });
  }

  /** Results as workers report them; the subscription is renewed if a server restart ends it. */
  private followResults(): void {
    let stopped = false;
    let current: { stop(): void } | undefined;
    this.stops.push(() => {
      stopped = true;
      current?.stop();
    });
    void (async () => {
      while (!stopped) {
        const messages = await this.retry(async () => (await this.js.consumers.get(this.names.stream, COORDINATOR_CONSUMER)).consume({ max_messages: 64 }));
        current = messages;
        try {
          for await (const message of messages) this.onResult(message.json<ResultMessage>(), () => message.ack());
        } catch {
          // The server went away: subscribe again.
        }
      }
    })().catch((error) => this.fail(error));
  }

  private onResult(result: ResultMessage, ack: () => void): void {
    ack();
    const shard = this.byIndex.get(result.index);
    if (!shard) return; // merged before this coordinator started
    if (result.ok) {
      this.ready.add(result.index);
      this.wake();
    } else {
      const code = (/^\[(\w+)\] /.exec(result.error)?.[1] ?? 'INTERNAL') as ErrorCode;
      this.fail(this.shardError(shard, code, `failed ${result.attempt} times; last on worker ${result.worker}: ${result.error.replace(/^\[\w+\] /, '')}`));
    }
  }

  /**
   * A job whose workers all died (no result, no error) reaches max_deliver: the server says so, in an
   * advisory, when a worker next asks for work (nats-server 2.9 checks then, not at the ack wait).
   */
  private followAdvisories(): void {
    const subject = `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${this.names.stream}.${WORKERS_CONSUMER}`;
    const subscription = this.nc.subscribe(subject, {
      callback: (_error, message) => {
        void (async () => {
          const { stream_seq: seq, deliveries } = message.json<{ stream_seq: number; deliveries: number }>();
          const job = await this.jsm.streams.getMessage(this.names.stream, { seq });
          const shard = job && this.byIndex.get(job.json<CountJobMessage>().shard.index);
          if (shard) this.fail(this.shardError(shard, 'INTERNAL', `was delivered ${deliveries} times and never finished (did its workers die?)`));
        })().catch(() => {});
      },
    });
    this.stops.push(() => subscription.unsubscribe());
  }

  private followPresence(): void {
    const subscription = this.nc.subscribe(PRESENCE_SUBJECT, {
      callback: (_error, message) => {
        const presence = message.json<Presence>();
        this.workers.set(presence.id, { ...presence, seen: Date.now() });
      },
    });
    this.stops.push(() => subscription.unsubscribe());
    this.timers.push(setInterval(() => void this.report().catch(() => {}), PRESENCE_MS));
  }

  private async report(): Promise<void> {
    const now = Date.now();
    for (const [id, worker] of this.workers) if (now - worker.seen > 3 * PRESENCE_MS) this.workers.delete(id);
    const info = await this.jsm.consumers.info(this.names.stream, WORKERS_CONSUMER);
    const status: NatsStatus = {
      updatedAt: new Date(now).toISOString(),
      run: this.run,
      workers: [...this.workers.values()].map(({ seen: _seen, ...worker }) => worker),
      jobs: { pending: info.num_pending, running: info.num_ack_pending, done: this.merged + this.ready.size, total: this.shards.length },
    };
    writeFileAtomic(runPaths(this.ctx.dir).natsStatus, [new TextEncoder().encode(JSON.stringify(status, null, 2) + '\n')]);
    // A line when the set of workers changes, else every LOG_MS: progress shows the rest.
    if (status.workers.length !== this.logged.workers || now - this.logged.at >= LOG_MS) {
      this.logged = { workers: status.workers.length, at: now };
      this.ctx.log(describeNatsStatus(status));
    }
  }
}

/**
 * The shard's bytes, plus the byte after it when the file goes on: a worker then reads the same
 * range of its copy and knows, as it would from the file, that the document does not end there.
 */
async function _readShard(shard: Shard): Promise<Uint8Array> {
  const file = await openFile(shard.path, 'r');
  try {
    const size = (await file.stat()).size;
    const bytes = new Uint8Array(Math.min(shard.end + 1, size) - shard.start);
    for (let at = 0; at < bytes.length;) {
      const { bytesRead } = await file.read(bytes, at, bytes.length - at, shard.start + at);
      if (bytesRead === 0) throw new LmpipeError('INPUT', `Expected ${bytes.length} bytes, the file ended at ${shard.start + at}`, { stage: 'count', file: shard.path });
      at += bytesRead;
    }
    return bytes;
  } finally {
    await file.close();
  }
}
