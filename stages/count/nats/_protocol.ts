/**
 * What the coordinator and the workers agree on: names in JetStream and the messages they exchange.
 *
 * A run (one count stage of one run directory) owns, and deletes when it is done:
 *   stream  LMPIPE_<run>      work queue, file storage, subjects lmpipe.<run>.>
 *     lmpipe.<run>.jobs.count.<shard>      a CountJobMessage; consumer `workers` (explicit ack)
 *     lmpipe.<run>.results.count.<shard>   a ResultMessage;  consumer `coordinator`
 *     lmpipe.<run>.jobs.reduce.<partition>     a ReduceJobMessage (same consumers)
 *     lmpipe.<run>.results.reduce.<partition>  a ResultMessage
 *   bucket  lmpipe-<run>      object store: input/<shard> (with --ship-input), count/<shard>;
 *                             sections/<partition> (the partition's sections of every run, from the
 *                             coordinator's disk: _codec.ts), part/<partition> (a part-<p>.bin file)
 * The count phase and the reduce phase each create the stream and bucket and delete them when done.
 *
 * Core subjects (not stored): lmpipe.announce (a coordinator has published jobs: idle workers look
 * now rather than at their next poll) and lmpipe.workers (each worker's presence, every few seconds).
 * A server config that confines lmpipe's accounts to `lmpipe.>`, `$JS.API.>`, `$O.>` and `_INBOX.>`
 * is in the README.
 */
import type { Shard } from '../../../pipeline/types.ts';
import type { ShardOptions } from '../index.ts';

export const SUBJECT_PREFIX = 'lmpipe';
export const STREAM_PREFIX = 'LMPIPE_';
export const ANNOUNCE_SUBJECT = `${SUBJECT_PREFIX}.announce`;
export const PRESENCE_SUBJECT = `${SUBJECT_PREFIX}.workers`;
/** The workers' durable pull consumer on a run's jobs. */
export const WORKERS_CONSUMER = 'workers';
export const COORDINATOR_CONSUMER = 'coordinator';
/** Deliveries of one job before the run stops with an error naming it. */
export const MAX_ATTEMPTS = 3;
/** Object store chunk size: fewer, larger messages (a default server takes up to 1 MiB). */
export const CHUNK_BYTES = 1000 * 1024;
/** How often a worker says it is alive (ms); the coordinator counts workers heard from in 3x this. */
export const PRESENCE_MS = 2000;

export function runNames(run: string) {
  return {
    stream: `${STREAM_PREFIX}${run}`,
    subjects: `${SUBJECT_PREFIX}.${run}.>`,
    jobs: `${SUBJECT_PREFIX}.${run}.jobs.>`,
    results: `${SUBJECT_PREFIX}.${run}.results.>`,
    job: (kind: JobKind, index: number) => `${SUBJECT_PREFIX}.${run}.jobs.${kind}.${index}`,
    result: (kind: JobKind, index: number) => `${SUBJECT_PREFIX}.${run}.results.${kind}.${index}`,
    bucket: `${SUBJECT_PREFIX}-${run}`,
    /** A job's shipped input: the shard's bytes (--ship-input), or the partition's sections. */
    input: (kind: JobKind, index: number) => (kind === 'count' ? `input/${index}` : `sections/${index}`),
    /** A job's output: the shard's counts, or the partition's part file. */
    output: (kind: JobKind, index: number) => (kind === 'count' ? `count/${index}` : `part/${index}`),
  };
}

export type JobKind = 'count' | 'reduce';

/** A count job: one shard, read from its path or (shipped) from the object `input`. */
export interface CountJobMessage {
  kind: 'count';
  run: string;
  shard: Shard;
  options: Omit<ShardOptions, 'run'>;
  /** Object holding the shard's bytes (--ship-input); absent: the worker reads `shard.path`. */
  input?: string;
}

/**
 * A reduce job: hash partition `index` of P, whose sections of every shard's run are the object
 * `input` (the runs are on the coordinator's disk); the worker stores the part file it reduces to.
 */
export interface ReduceJobMessage {
  kind: 'reduce';
  run: string;
  index: number;
  partitions: number;
  order: number;
  input: string;
}

export type JobMessage = CountJobMessage | ReduceJobMessage;

/** The job's id within its kind: the shard's index, or the partition. */
export const jobIndex = (job: JobMessage): number => (job.kind === 'count' ? job.shard.index : job.index);

/** What a worker reports for a job: its output object, or the error of its last attempt. */
export type ResultMessage =
  | { kind: JobKind; index: number; ok: true; object: string; worker: string; attempt: number }
  | { kind: JobKind; index: number; ok: false; error: string; worker: string; attempt: number };

/** A worker's presence line. */
export interface Presence {
  id: string;
  host: string;
  runtime: string;
  slots: number;
  busy: number;
  done: number;
}

/** The job, for log lines: "shard 3 (corpus.txt bytes 0-4194304)", "partition 5 of 8". */
export function describeJob(job: JobMessage): string {
  if (job.kind === 'reduce') return `partition ${job.index} of ${job.partitions}`;
  const range = job.shard.format === 'text' ? ` bytes ${job.shard.start}-${job.shard.end}` : '';
  return `shard ${job.shard.index} (${job.shard.path}${range})`;
}
