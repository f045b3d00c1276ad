/**
 * What the coordinator and the workers agree on: names in JetStream and the messages they exchange.
 *
 * A run (one count stage of one run directory) owns, and deletes when it is done:
 *   stream  LMPIPE_<run>      work queue, file storage, subjects lmpipe.<run>.>
 *     lmpipe.<run>.jobs.count.<shard>      a CountJobMessage; consumer `workers` (explicit ack)
 *     lmpipe.<run>.results.count.<shard>   a ResultMessage;  consumer `coordinator`
 *   bucket  lmpipe-<run>      object store: input/<shard> (with --ship-input), count/<shard>
 * Reduce jobs (per hash partition) are meant to take the subjects jobs.reduce.<partition> and
 * results.reduce.<partition> beside these, with objects reduce/<partition>.
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
    countJob: (index: number) => `${SUBJECT_PREFIX}.${run}.jobs.count.${index}`,
    countResult: (index: number) => `${SUBJECT_PREFIX}.${run}.results.count.${index}`,
    bucket: `${SUBJECT_PREFIX}-${run}`,
    inputObject: (index: number) => `input/${index}`,
    countObject: (index: number) => `count/${index}`,
  };
}

/** A count job: one shard, read from its path or (shipped) from the object `input`. */
export interface CountJobMessage {
  kind: 'count';
  run: string;
  shard: Shard;
  options: Omit<ShardOptions, 'run'>;
  /** Object holding the shard's bytes (--ship-input); absent: the worker reads `shard.path`. */
  input?: string;
}

export type JobMessage = CountJobMessage;

/** What a worker reports for a job: its output object, or the error of its last attempt. */
export type ResultMessage =
  | { kind: 'count'; index: number; ok: true; object: string; worker: string; attempt: number }
  | { kind: 'count'; index: number; ok: false; error: string; worker: string; attempt: number };

/** A worker's presence line. */
export interface Presence {
  id: string;
  host: string;
  runtime: string;
  slots: number;
  busy: number;
  done: number;
}

/** The shard's place, for messages: "shard 3 (corpus.txt bytes 0-4194304)". */
export function describeShard(shard: Shard): string {
  const range = shard.format === 'text' ? ` bytes ${shard.start}-${shard.end}` : '';
  return `shard ${shard.index} (${shard.path}${range})`;
}
