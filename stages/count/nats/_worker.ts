/**
 * A NATS worker: pulls jobs from every lmpipe run on the server, one at a time, and runs them.
 *
 * For each job it reads its input (the shard's path, or the shipped object), runs it (`workJob`: a
 * count job reads, tokenizes and counts one shard, with a dictionary of its own, encoded by
 * _codec.ts; a reduce job reduces the partition's sections of the runs to a part file,
 * _partition.ts), stores the output in the run's object store, reports it on the run's results
 * subject, and only then acks.
 * A worker killed at any point leaves the job un-acked: the server delivers it again after the ack
 * wait, to this or another worker. While a job runs, `working()` every third of the ack wait keeps
 * it from being redelivered, however long it takes. A job that throws is nak'ed for another try; on
 * its last attempt the worker reports the error instead, and the coordinator stops the run.
 *
 * Runs are found by their streams (LMPIPE_*), when idle at least once a second and at once when a
 * coordinator announces one. The worker says it is alive on lmpipe.workers every PRESENCE_MS.
 * It stops at `signal` (SIGTERM, Ctrl-C: after the job in hand), or after `exitWhenIdleMs` without work.
 *
 * `handle` is the job's work: counting by default; the tests pass one that returns garbage or fails.
 */
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { rm, writeFile } from 'node:fs/promises';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import { Objm } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/transport-node';
import { LmpipeError } from '../../../lib/errors.ts';
import { countShard } from '../index.ts';
import { encodeShardCounts } from './_codec.ts';
import { reduceShipped } from './_partition.ts';
import { retrying } from './_connect.ts';
import {
  ANNOUNCE_SUBJECT, CHUNK_BYTES, describeJob, jobIndex, MAX_ATTEMPTS, PRESENCE_MS, PRESENCE_SUBJECT, runNames, STREAM_PREFIX, WORKERS_CONSUMER,
  type JobMessage, type Presence, type ResultMessage,
} from './_protocol.ts';

export interface ServeOptions {
  signal: AbortSignal;
  /** Stop after this long without a job (ms); 0: run until `signal`. */
  exitWhenIdleMs?: number;
  log?(message: string): void;
  /** The job's output, from the job and its shipped input (if any); default `workJob`. */
  handle?(job: JobMessage, input: Uint8Array | undefined): Promise<Uint8Array>;
}

const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== 'undefined';
/** How long one pull waits for a job (ms): also how soon an idle worker notices a stop. */
const PULL_MS = 1000;

/** Serves jobs until `signal` or idleness; returns how many it finished. */
export async function serveJobs(nc: NatsConnection, options: ServeOptions): Promise<number> {
  const { signal, exitWhenIdleMs = 0, log = () => {}, handle = workJob } = options;
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const presence: Presence = {
    id: crypto.randomUUID().slice(0, 8), host: hostname(), runtime: isDeno ? 'deno' : 'node', slots: 1, busy: 0, done: 0,
  };
  const say = () => nc.publish(PRESENCE_SUBJECT, JSON.stringify(presence));
  say();
  const timer = setInterval(say, PRESENCE_MS);
  let wake = () => {};
  const announcements = nc.subscribe(ANNOUNCE_SUBJECT, { callback: () => wake() });
  const onAbort = () => wake();
  signal.addEventListener('abort', onAbort);
  let lastWork = Date.now();
  try {
    while (!signal.aborted && !(exitWhenIdleMs > 0 && Date.now() - lastWork >= exitWhenIdleMs)) {
      const streams = await _runStreams(jsm);
      let worked = false;
      for (const stream of streams) {
        const message = await _pull(js, stream);
        if (!message) continue;
        presence.busy = 1;
        say();
        await _serve(message, { nc, jsm, js, handle, log, worker: `${presence.host}/${presence.id}` });
        presence.busy = 0;
        presence.done++;
        worked = true;
        lastWork = Date.now();
        break;
      }
      if (!worked && streams.length === 0) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, PULL_MS);
        });
      }
    }
  } finally {
    clearInterval(timer);
    signal.removeEventListener('abort', onAbort);
    announcements.unsubscribe();
  }
  return presence.done;
}

async function _runStreams(jsm: JetStreamManager): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const name of jsm.streams.names()) if (name.startsWith(STREAM_PREFIX)) names.push(name);
  } catch {
    // Disconnected: the client reconnects; look again on the next turn.
  }
  return names.sort();
}

async function _pull(js: JetStreamClient, stream: string): Promise<JsMsg | null> {
  try {
    const consumer = await js.consumers.get(stream, WORKERS_CONSUMER);
    return await consumer.next({ expires: PULL_MS });
  } catch {
    return null; // the run ended (stream deleted) or the server is restarting
  }
}

interface ServeContext {
  nc: NatsConnection;
  jsm: JetStreamManager;
  js: JetStreamClient;
  handle(job: JobMessage, input: Uint8Array | undefined): Promise<Uint8Array>;
  log(message: string): void;
  worker: string;
}

async function _serve(message: JsMsg, context: ServeContext): Promise<void> {
  const { nc, jsm, js, handle, log, worker } = context;
  const job = message.json<JobMessage>();
  const names = runNames(job.run);
  const attempt = message.info.deliveryCount;
  const info = await jsm.consumers.info(names.stream, WORKERS_CONSUMER).catch(() => undefined);
  const ackWaitMs = (info?.config.ack_wait ?? 30e9) / 1e6;
  const heartbeat = setInterval(() => message.working(), Math.max(100, ackWaitMs / 3));
  const index = jobIndex(job);
  const started = performance.now();
  try {
    const store = await retrying(() => new Objm(nc).open(names.bucket));
    let input: Uint8Array | undefined;
    if (job.input) {
      input = (await retrying(() => store.getBlob(job.input!))) ?? undefined;
      if (!input) throw new Error(`Expected the shipped input ${job.input} in ${names.bucket}`);
    }
    const output = await handle(job, input);
    const object = names.output(job.kind, index);
    await retrying(() => store.putBlob({ name: object, options: { max_chunk_size: CHUNK_BYTES } }, output));
    const result: ResultMessage = { kind: job.kind, index, ok: true, object, worker, attempt };
    await retrying(() => js.publish(names.result(job.kind, index), JSON.stringify(result), { msgID: `${job.run}.result.${job.kind}.${index}.${message.seq}.${attempt}` }));
    await retrying(() => message.ackAck());
    log(`finished ${describeJob(job)} for run ${job.run} (attempt ${attempt}) in ${((performance.now() - started) / 1000).toFixed(2)} s`);
  } catch (error) {
    const text = error instanceof LmpipeError ? `[${error.code}] ${error.toLine()}` : error instanceof Error ? error.message : String(error);
    log(`failed ${describeJob(job)} for run ${job.run} (attempt ${attempt} of ${MAX_ATTEMPTS}): ${text}`);
    if (attempt < MAX_ATTEMPTS) {
      message.nak(250);
      return;
    }
    const result: ResultMessage = { kind: job.kind, index, ok: false, error: text, worker, attempt };
    await js.publish(names.result(job.kind, index), JSON.stringify(result)).catch(() => {});
    message.term();
  } finally {
    clearInterval(heartbeat);
  }
}

/**
 * A job's work. A count job: one shard, its own dictionary (so its result stands alone), encoded for
 * the store. A reduce job: the shipped sections of one partition, reduced to its part file.
 */
export async function workJob(job: JobMessage, input: Uint8Array | undefined): Promise<Uint8Array> {
  if (job.kind === 'reduce') {
    if (!input) throw new Error(`Expected the sections of partition ${job.index}`);
    return reduceShipped(input, job);
  }
  // A newer coordinator may send kinds of job this worker does not know: fail them loudly.
  if (job.kind !== 'count') throw new Error(`Expected a count or reduce job, got a \`${(job as { kind?: string }).kind}\` job: update this worker`);
  if (!input) return encodeShardCounts(await countShard(job.shard, job.options), job.run);
  // Shipped bytes: the shard's range as a file of its own (shards are cut at line ends), and the
  // byte after it when the file went on (_readShard), so that the document does not end here.
  const path = join(tmpdir(), `lmpipe-${job.run}-${job.shard.index}-${crypto.randomUUID().slice(0, 8)}`);
  await writeFile(path, input);
  try {
    const counts = await countShard({ ...job.shard, path, start: 0, end: job.shard.end - job.shard.start }, job.options);
    return encodeShardCounts(counts, job.run);
  } finally {
    await rm(path, { force: true });
  }
}
