/**
 * The coordinator's side of distributed counting, when `--nats` is set: the count stage's shard
 * source and reduce source (stages/count/_run.ts). It hands the same things the local pool does
 * to the same merger and writer: shard counts strictly in shard order, then each partition's
 * `part-<p>.bin` in count-runs/. So the database it writes is the one a local run writes.
 *
 * Each phase (count, then reduce) follows its jobs the same way (`_follow`):
 * - Jobs: a window of jobs ahead of the one taken next is published to the run's work-queue
 *   stream (_protocol.ts), each with a message id (a publish retried across a reconnect is stored
 *   once), its input shipped to the object store first (shard bytes with --ship-input; a
 *   partition's sections of the runs, which only this machine has: _partition.ts). A job whose
 *   output object exists, or which is still in the stream, is not published again: a coordinator
 *   killed and rerun resumes from its SQLite checkpoint (shards merged, partitions reduced) and
 *   publishes only what is missing. Jobs are idempotent by shard and partition: one run twice (a
 *   worker presumed dead that was only slow) writes the same object twice and is taken once.
 * - Results: workers store their output (`count/<shard>`, `part/<partition>`) in the run's object
 *   store, then report on `results.<kind>.<index>`. The coordinator fetches each in turn (the next
 *   one while the merger works), checks it (_codec.ts, _partition.ts: a garbage result stops the
 *   run, naming the shard or partition), yields it, and deletes the objects it no longer needs. A
 *   taken-but-uncommitted job whose object is gone is simply run again after a kill.
 * - Failures: a job that failed MAX_ATTEMPTS times (reported by its worker, or a MAX_DELIVERIES
 *   advisory when its workers died) stops the run with an error naming the shard or partition.
 * - The end: everything the phase put in JetStream (stream, consumers, bucket) is deleted, when
 *   its last job is taken and when the run stops on an error; a Ctrl-C keeps it for the rerun.
 * - Status: workers announce themselves on lmpipe.workers; every few seconds the coordinator logs
 *   the workers connected and the jobs pending, running and done, and writes them to
 *   DIR/nats-status.json (read by `status`).
 */
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { open as openFile, rename, rm } from 'node:fs/promises';
import { AckPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType, type JetStreamManager } from '@nats-io/jetstream';
import { Objm, type ObjectStore } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/transport-node';
import { LmpipeError, type ErrorCode } from '../../../lib/errors.ts';
import { writeFileAtomic } from '../../../lib/checkpoint.ts';
import { describeNatsStatus, type NatsStatus } from '../../../pipeline/status.ts';
import { runPaths } from '../../../storage/run-paths.ts';
import type { Shard, StageContext } from '../../../pipeline/types.ts';
import { partPath, type ReduceJob, type ReduceResult, type ShardCounts } from '../index.ts';
import { connectNats, retrying } from './_connect.ts';
import { decodeShardCounts } from './_codec.ts';
import { checkPart, expectedPart, packSections, type PartExpectation } from './_partition.ts';
import {
  ANNOUNCE_SUBJECT, CHUNK_BYTES, COORDINATOR_CONSUMER, MAX_ATTEMPTS, PRESENCE_MS, PRESENCE_SUBJECT, runNames,
  WORKERS_CONSUMER, jobIndex, type JobKind, type JobMessage, type Presence, type ResultMessage,
} from './_protocol.ts';

/**
 * Jobs published ahead of the one taken next, at least: bounds the object store's share of a run
 * (about 7 MB a shard, the runs' size / P a partition); with many workers, two per worker, so that
 * none waits for a job.
 */
const WINDOW = 16;
const NANOS_PER_MS = 1e6;
const LOG_MS = 10_000;

/** The run's name in JetStream: the same for a rerun of the same count stage in the same directory. */
export function natsRunId(ctx: Pick<StageContext, 'dir' | 'fingerprint'>): string {
  return createHash('sha256').update(`${ctx.fingerprint}\0${resolve(ctx.dir)}`).digest('hex').slice(0, 16);
}

/** What differs between following count jobs and reduce jobs. */
interface JobSpec<T> {
  kind: JobKind;
  /** Job indices, in the order their results are taken. */
  indices: number[];
  /** A garbage output, in errors: "a result that is not valid counts". */
  invalid: string;
  /** Whether jobs ship an input object (deleted with the output once the job is taken). */
  shipsInput: boolean;
  /** The job's message, and the input to ship first (if any). */
  job(index: number, run: string): Promise<{ message: JobMessage; input?: Uint8Array[] }>;
  /**
   * The job's output, fetched from `object` and checked (a RangeError says what is wrong); null
   * when the object is gone.
   */
  receive(store: ObjectStore, object: string, index: number, run: string): Promise<T | null>;
  /** An error about job `index`, naming it (and its file) as the stage's errors do. */
  error(index: number, code: ErrorCode, message: string): LmpipeError;
}

/** The count stage's shard source over NATS (the local one is the worker pool in _run.ts). */
export function natsCountShards(shards: Shard[], ctx: StageContext) {
  if (shards.some((shard) => shard.format === 'stdin')) {
    throw new LmpipeError('USAGE', 'Expected files with `--nats` (workers cannot read this process\'s standard input)', { stage: 'count' });
  }
  const byIndex = new Map(shards.map((shard) => [shard.index, shard]));
  const { config, signal } = ctx;
  const spec: JobSpec<ShardCounts> = {
    kind: 'count',
    indices: shards.map((shard) => shard.index),
    invalid: 'a result that is not valid counts',
    shipsInput: config.shipInput,
    async job(index, run) {
      const shard = byIndex.get(index)!;
      const options = { tokenizer: config.tokenizer, lowercase: config.lowercase, jsonField: config.jsonField, order: config.order };
      if (!config.shipInput) return { message: { kind: 'count', run, shard, options } };
      return { message: { kind: 'count', run, shard, options, input: runNames(run).input('count', index) }, input: [await _readShard(shard)] };
    },
    async receive(store, object, index, run) {
      const bytes = await retrying(() => store.getBlob(object), signal);
      return bytes && decodeShardCounts(bytes, { run, index, order: config.order });
    },
    error(index, code, message) {
      const shard = byIndex.get(index)!;
      const position = shard.format === 'text' ? `bytes ${shard.start}-${shard.end}` : undefined;
      return new LmpipeError(code, `Shard ${index}: ${message}`, { stage: 'count', file: shard.path, position });
    },
  };
  return { results: _follow(spec, ctx), recycle: (_buffers: ArrayBuffer[]) => {} };
}

/**
 * The count stage's reduce source over NATS: each partition's sections of the runs go to a worker
 * through the object store, and its part file comes back into count-runs/ (checked, then renamed).
 */
export function natsReduce(jobs: ReduceJob[], ctx: StageContext): AsyncIterable<ReduceResult> {
  const byIndex = new Map(jobs.map((job) => [job.index, job]));
  /** What each part must add up to: noted when its sections are shipped, else read from the runs. */
  const expected = new Map<number, PartExpectation>();
  const spec: JobSpec<ReduceResult> = {
    kind: 'reduce',
    indices: jobs.map((job) => job.index),
    invalid: 'a part file that is not valid',
    shipsInput: true,
    async job(index, run) {
      const job = byIndex.get(index)!;
      const packed = packSections(job.path, job);
      expected.set(index, packed.expected);
      const { partitions, order } = job;
      return { message: { kind: 'reduce', run, index, partitions, order, input: runNames(run).input('reduce', index) }, input: packed.chunks };
    },
    async receive(store, object, index) {
      const job = byIndex.get(index)!;
      const path = partPath(job.path, index);
      // Not a part-<p>.bin name: a download cut short by a kill is deleted on resume (pruneRuns).
      const download = `${path}.download`;
      if (!(await retrying(() => _download(store, object, download), ctx.signal))) return null;
      const rows = checkPart(download, job.order, expected.get(index) ?? expectedPart(job.path, job));
      await rename(download, path);
      return { partition: index, rows };
    },
    error(index, code, message) {
      return new LmpipeError(code, `Partition ${index} of ${byIndex.get(index)!.partitions}: ${message}`, { stage: 'count' });
    },
  };
  return _follow(spec, ctx);
}

/**
 * One phase's jobs on NATS: creates the run in JetStream (or finds it, on a rerun), publishes a
 * window ahead, yields each result in `spec.indices` order, and deletes the run when done or failed.
 */
async function* _follow<T>(spec: JobSpec<T>, ctx: StageContext): AsyncGenerator<T> {
  const run = natsRunId(ctx);
  const names = runNames(run);
  const nc = await connectNats(ctx.config, `lmpipe coordinator ${hostname()} ${run}`);
  let finished = false;
  try {
    const jsm = await jetstreamManager(nc);
    await _createRun(jsm, names, ctx.config.natsAckWait * 1000);
    const store = await new Objm(nc).create(names.bucket, { storage: StorageType.File });
    const follower = new Follower<T>(nc, jsm, store, spec, ctx, run);
    try {
      for (let next = 0; next < spec.indices.length; next++) {
        await follower.publishWindow(next);
        const result = await follower.take(next);
        if (result === undefined) return; // aborted: the run stays in JetStream for the rerun
        yield result;
        await follower.forget(spec.indices[next]);
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

/** Streams object `name` into the file `path`; false when there is no such object. */
async function _download(store: ObjectStore, name: string, path: string): Promise<boolean> {
  const object = await store.get(name);
  if (!object) return false;
  const file = await openFile(path, 'w');
  try {
    const reader = object.data.getReader();
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) await file.write(chunk.value);
  } finally {
    await file.close();
  }
  const error = await object.error;
  if (error) throw error;
  return true;
}

/** A stream of `chunks`, for the object store's put. */
function _streamOf(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  let next = 0;
  return new ReadableStream({
    pull(controller) {
      if (next < chunks.length) controller.enqueue(chunks[next++]);
      else controller.close();
    },
  });
}

class Follower<T> {
  private readonly js;
  private readonly names;
  private readonly session = crypto.randomUUID().slice(0, 8);
  private readonly known: Set<number>;
  /** Job index -> its job is out (published or found in the stream) / its output is stored. */
  private readonly published = new Set<number>();
  private readonly ready = new Set<number>();
  private readonly workers = new Map<string, Presence & { seen: number }>();
  private failure: Error | undefined;
  private wake = () => {};
  private readonly timers: Array<ReturnType<typeof setInterval>> = [];
  private readonly stops: Array<() => void> = [];
  private prefetch: { index: number; result: Promise<T | null> } | undefined;
  private taken = 0;
  private logged = { workers: -1, at: 0 };

  constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly store: ObjectStore,
    private readonly spec: JobSpec<T>,
    private readonly ctx: StageContext,
    private readonly run: string,
  ) {
    this.js = jetstream(nc);
    this.names = runNames(run);
    this.known = new Set(spec.indices);
    this.followResults();
    this.followAdvisories();
    this.followPresence();
    const abort = () => this.wake();
    ctx.signal.addEventListener('abort', abort);
    this.stops.push(() => ctx.signal.removeEventListener('abort', abort));
  }

  /** Publishes the jobs of the window from indices[from] on that are neither done nor out. */
  async publishWindow(from: number): Promise<void> {
    const { kind } = this.spec;
    let added = false;
    for (const index of this.spec.indices.slice(from, from + Math.max(WINDOW, 2 * this.workers.size))) {
      if (this.published.has(index) || this.ready.has(index)) continue;
      this.published.add(index);
      if (await this.retry(() => this.store.info(this.names.output(kind, index)))) {
        this.ready.add(index);
        continue;
      }
      if (await this.retry(() => this.jsm.streams.getMessage(this.names.stream, { last_by_subj: this.names.job(kind, index) }))) continue;
      const { message, input } = await this.spec.job(index, this.run);
      if (input) {
        await this.retry(() => this.store.put({ name: this.names.input(kind, index), options: { max_chunk_size: CHUNK_BYTES } }, _streamOf(input)));
      }
      await this.retry(() => this.js.publish(this.names.job(kind, index), JSON.stringify(message), { msgID: `${this.run}.${kind}.${index}.${this.session}` }));
      added = true;
    }
    if (added) this.nc.publish(ANNOUNCE_SUBJECT, this.run);
  }

  /** The output of job indices[position], once a worker stored it; undefined after an abort. */
  async take(position: number): Promise<T | undefined> {
    const index = this.spec.indices[position];
    for (;;) {
      if (this.failure) throw this.failure;
      if (this.ctx.signal.aborted) return undefined;
      if (this.ready.has(index)) break;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
    const result = this.prefetch?.index === index ? this.prefetch.result : this.receive(index);
    this.prefetch = undefined;
    const following = this.spec.indices[position + 1];
    if (following !== undefined && this.ready.has(following)) {
      const receiving = this.receive(following);
      receiving.catch(() => {});
      this.prefetch = { index: following, result: receiving };
    }
    let output: T | null;
    try {
      output = await result;
    } catch (error) {
      if (!(error instanceof RangeError)) throw error;
      throw this.spec.error(index, 'INTERNAL', `A worker returned ${this.spec.invalid}: ${error.message}`);
    }
    if (output === null) {
      // Deleted under us (a rerun of a killed coordinator raced a worker): run it again.
      this.ready.delete(index);
      this.published.delete(index);
      await this.publishWindow(position);
      return this.take(position);
    }
    return output;
  }

  private receive(index: number): Promise<T | null> {
    return this.spec.receive(this.store, this.names.output(this.spec.kind, index), index, this.run);
  }

  private retry<R>(request: () => Promise<R>): Promise<R> {
    return retrying(request, this.ctx.signal);
  }

  /** The job's output is taken and recorded: its objects go (a rerun that needs them again reruns the job). */
  async forget(index: number): Promise<void> {
    const { kind } = this.spec;
    this.taken++;
    this.ready.delete(index);
    await this.store.delete(this.names.output(kind, index)).catch(() => {});
    if (this.spec.shipsInput) await this.store.delete(this.names.input(kind, index)).catch(() => {});
  }

  stop(): void {
    for (const timer of this.timers) clearInterval(timer);
    for (const stop of this.stops) stop();
  }

  private fail(error: Error): void {
    this.failure ??= error;
    this.wake();
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
    // Taken before this coordinator started, or a job of the other phase.
    if (result.kind !== this.spec.kind || !this.known.has(result.index)) return;
    if (result.ok) {
      this.ready.add(result.index);
      this.wake();
    } else {
      const code = (/^\[(\w+)\] /.exec(result.error)?.[1] ?? 'INTERNAL') as ErrorCode;
      this.fail(this.spec.error(result.index, code, `failed ${result.attempt} times; last on worker ${result.worker}: ${result.error.replace(/^\[\w+\] /, '')}`));
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
          const job = (await this.jsm.streams.getMessage(this.names.stream, { seq }))?.json<JobMessage>();
          if (job?.kind === this.spec.kind && this.known.has(jobIndex(job))) {
            this.fail(this.spec.error(jobIndex(job), 'INTERNAL', `was delivered ${deliveries} times and never finished (did its workers die?)`));
          }
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
      jobs: { kind: this.spec.kind, pending: info.num_pending, running: info.num_ack_pending, done: this.taken + this.ready.size, total: this.spec.indices.length },
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
