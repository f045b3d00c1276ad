/**
 * The contracts between stages, the runner and the workers. Types only: no code lives here.
 *
 * Data flow (one run directory DIR):
 *   read      Shard            -> TextChunk      (stages/ingest/read.ts)
 *   tokenize  TextChunk        -> TokenBatch     (stages/ingest/tokenize.ts; ids local to one Interner)
 *   count     TokenBatch       -> ShardCounts    (stages/count/; runs in workers, merged in order)
 *             writes tables tokens + ngram1..5 and DIR/tokens.bin (Int32 LE, tokens.id per token)
 *   vocab     ngram1 + tokens  -> vocab table     (stages/vocab.ts)
 *   encode    tokens.bin+vocab -> DIR/encoded/    (stages/encode.ts; vocab ids, train/valid split)
 *   train     encoded corpus   -> metrics table, DIR/checkpoints/  (stages/train/)
 *   sample    checkpoint       -> samples table   (stages/sample.ts)
 */
import type { Database } from '../storage/driver.ts';
import type { Config, StageName } from './config.ts';

export type { TokenizerName } from './config.ts';

export type InputFormat = 'text' | 'gzip' | 'json' | 'jsonl' | 'stdin';

/** A unit of reading: a whole file, or a byte range of a plain-text file cut at a line boundary. */
export interface Shard {
  /** Position in the global order; shards merge in this order. */
  index: number;
  /** Absolute path, or '-' for standard input. */
  path: string;
  format: InputFormat;
  /** Byte range [start, end) for 'text'; 0 and the file size otherwise. */
  start: number;
  end: number;
  /** True when this shard starts inside a document that began in the previous shard. */
  continuesDocument: boolean;
}

/** A piece of one document's text, in order. */
export interface TextChunk {
  text: string;
  /** True on the first chunk of each document (a file, or one JSON record). */
  documentStart: boolean;
  /**
   * True on the last chunk of each document (added by the read stage): a tokenizer emits a token
   * still held at that point (a word cut by the chunk end). False or absent on a shard's last chunk
   * when its document continues in the next shard; absent means "unknown": call Tokenizer.end().
   */
  documentEnd?: boolean;
  /** File path (or '-') and where the chunk starts: a byte offset for text, a record index for JSON. */
  source: string;
  position: number;
}

/** Token ids (local to the tokenizer's Interner) produced from one TextChunk. */
export interface TokenBatch {
  ids: Int32Array;
  /** True on the first batch of each document: n-grams never cross this point. */
  documentStart: boolean;
}

/** What a stage yields while it works: the runner turns these into progress lines and events. */
export interface StageEvent {
  done: number;
  total?: number;
  unit: 'bytes' | 'tokens' | 'steps' | 'epochs' | 'rows';
  /** A line worth showing as is, e.g. "epoch 3: train ppl 8.1, valid ppl 9.0". */
  message?: string;
  /** Shown at the end of the live progress line, e.g. "epoch 3/30  loss 2.314". */
  detail?: string;
  /** Machine-readable extras for --json (e.g. {epoch, loss, perplexity}). */
  data?: Record<string, unknown>;
}

export type { StageName };

export interface StageContext {
  /** Run directory: holds lmpipe.sqlite, tokens.bin, encoded/, checkpoints/. */
  dir: string;
  db: Database;
  config: Config;
  /** Hash of this stage's settings, inputs and upstream fingerprints. Store it with checkpoints. */
  fingerprint: string;
  /** Aborted on Ctrl-C / SIGTERM: stop at the next safe point (after a commit) and return. */
  signal: AbortSignal;
  /** Diagnostics for the user (stderr, or a JSON event with --json); silent with --quiet. */
  log(message: string): void;
}

export interface StageCheckContext extends Pick<StageContext, 'config' | 'db'> {
  /** Whether a stage's results in the database are this run's (done, with its fingerprint). */
  current(stage: StageName): boolean;
}

/**
 * A runner-level stage. `run` resumes from the stage's own checkpoint (storage/stages.ts) when one
 * exists for the same fingerprint, commits progress atomically, and marks the stage done at the end.
 * read and tokenize are streaming stages that run inside count's workers.
 */
export interface Stage {
  name: StageName;
  consumes: string;
  produces: string;
  checkpoint: string;
  /** The settings that decide this stage's output; part of its fingerprint. */
  settings(config: Config): unknown;
  /** Extra inputs to fingerprint, e.g. input file paths, sizes and mtimes. */
  inputs?(config: Config): Promise<unknown>;
  /**
   * Refuses settings that would fail this stage, before any stage runs and again after each stage
   * (a check may need what an earlier stage made, as train needs the corpus length from count).
   */
  check?(ctx: StageCheckContext): void | Promise<void>;
  run(ctx: StageContext): AsyncIterable<StageEvent>;
  /**
   * Given the settings recorded at the stage's last run and the settings now (inputs and upstream
   * unchanged), says what changed when the stage can continue from its checkpoint rather than start
   * over ("epochs 30 -> 40"), or undefined for a redo.
   */
  continues?(before: unknown, now: unknown): string | undefined;
  /** Deletes the stage's outputs and checkpoint, so that `run` starts from nothing. */
  reset(ctx: Pick<StageContext, 'dir' | 'db'>): void;
}
