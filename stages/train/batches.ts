/**
 * Minibatches for truncated BPTT, exactly as d2l (0.17) cuts them: `random` is
 * `seq_data_iter_random` and `sequential` is `seq_data_iter_sequential`. Each epoch draws a new
 * offset (and, for random, a new order) from a seeded generator; the generator's state at the start
 * of an epoch plus a minibatch cursor is the whole sampler state, so a resumed run yields exactly
 * the minibatches an uninterrupted one would, however many times it is resumed within an epoch.
 *
 *   const data = batches(train, { sampler: 'sequential', batchSize: 32, steps: 35, seed: 42 });
 *   let state = data.initialState();               // goes into the checkpoint as JSON
 *   for (const batch of data.epoch(state)) {        // batch.inputs: [batchSize, steps] row-major
 *     ...; state = { ...state, cursor: batch.index + 1 };
 *   }
 *   state = data.nextEpoch(state);
 *
 * Each epoch does all its random draws up front (one offset, one shuffle), so how far an epoch was
 * consumed never changes the generator, and resuming only needs the epoch's starting state.
 * A minibatch copies its own batchSize × steps tokens out of the corpus and nothing more.
 */
import { LmpipeError } from '../../lib/errors.ts';
import { Rng, type RngState } from '../../lib/rng.ts';

import type { SamplerName } from '../../pipeline/config.ts';
export type { SamplerName };

export interface Minibatch {
  /** [batchSize, steps] row-major token ids; targets are the inputs shifted by one token. */
  inputs: Int32Array;
  targets: Int32Array;
  batchSize: number;
  steps: number;
  /** Position in the epoch: 0 for the first minibatch. */
  index: number;
}

export interface SamplerState {
  epoch: number;
  /** The sampler's generator state at the START of this epoch. */
  rng: RngState;
  /** Minibatches already consumed in this epoch. */
  cursor: number;
}

export interface BatchesOptions {
  sampler: SamplerName;
  batchSize: number;
  steps: number;
  /** The run's seed; the sampler uses its own fork ('batches') of it, so other users of the seed do not shift it. */
  seed: number;
}

/** One epoch: its size (all minibatches, including those before the cursor) and a fresh iterator each time. */
export interface Epoch extends Iterable<Minibatch> {
  size: number;
}

/** What `batches()` returns: the sampler for every epoch of one training corpus. */
export interface Batches {
  /** Random minibatches are independent (reset the hidden state each time); sequential ones continue each other. */
  carriesState: boolean;
  /** Epoch 0, cursor 0, the generator forked from the seed. */
  initialState(): SamplerState;
  /** The epoch `state` is in, yielding its minibatches from `state.cursor` on. */
  epoch(state: SamplerState): Epoch;
  /** The state at the start of the next epoch: the generator advanced exactly as a full epoch advances it. */
  nextEpoch(state: SamplerState): SamplerState;
}

/** Rows cut from the corpus (a view, no copy): row r is data[r * rowLength, (r + 1) * rowLength]. */
export interface Stream {
  data: Int32Array;
  rows: number;
  rowLength: number;
}

/**
 * The draws of d2l's seq_data_iter_random for one epoch: `offset` = random.randint(0, steps - 1),
 * then the subsequence starts range(0, numSubseqs * steps, steps) (relative to `offset`) shuffled.
 */
export function randomOrder(corpusLength: number, steps: number, rng: Rng): { offset: number; starts: Int32Array } {
  const offset = rng.int(0, steps - 1);
  const subsequences = Math.max(0, Math.floor((corpusLength - offset - 1) / steps));
  const starts = new Int32Array(subsequences);
  for (let i = 0; i < subsequences; i++) starts[i] = i * steps;
  rng.shuffle(starts);
  return { offset, starts };
}

/** The draw of d2l's seq_data_iter_sequential for one epoch: random.randint(0, steps), both inclusive. */
export function sequentialOffset(steps: number, rng: Rng): number {
  return rng.int(0, steps);
}

/**
 * Cuts the corpus after `offset` into `rows` contiguous streams, keeping one more token for the
 * last target (a view, no copy). With the alphabet as corpus, offset 0 and rows 4, rowLength is
 * floor((26 - 0 - 1) / 4) = 6:
 *
 *   row 0: a b c d e f   ─┐ minibatch i takes columns [i·steps, (i+1)·steps) of every row, so
 *   row 1: g h i j k l    │ row r of minibatch i+1 continues row r of minibatch i and the hidden
 *   row 2: m n o p q r    │ state carries over; targets are the same cells one token later
 *   row 3: s t u v w x   ─┘ (f's target is g, x's is y). z is dropped, as in d2l.
 */
export function batchify(corpus: Int32Array, rows: number, offset = 0): Stream {
  const rowLength = Math.max(0, Math.floor((corpus.length - offset - 1) / rows));
  return { data: corpus.subarray(offset, offset + rows * rowLength + 1), rows, rowLength };
}

/** Columns [start, start + steps) of every row of `stream`, with their targets. */
export function getBatch(stream: Stream, start: number, steps: number, index: number): Minibatch {
  const { data, rows, rowLength } = stream;
  const inputs = new Int32Array(rows * steps);
  const targets = new Int32Array(rows * steps);
  for (let row = 0; row < rows; row++) {
    const from = row * rowLength + start;
    inputs.set(data.subarray(from, from + steps), row * steps);
    targets.set(data.subarray(from + 1, from + 1 + steps), row * steps);
  }
  return { inputs, targets, batchSize: rows, steps, index };
}

/** Refuses a training split too short for one minibatch (also checked before any stage runs). */
export function checkCorpusLength(tokens: number, options: Pick<BatchesOptions, 'sampler' | 'batchSize' | 'steps'>): void {
  const { sampler, batchSize, steps } = options;
  // The shortest corpus that yields one minibatch whatever offset is drawn (offset steps - 1 or steps).
  const needed = (batchSize + 1) * steps + (sampler === 'sequential' ? 1 : 0);
  if (tokens < needed) {
    throw new LmpipeError('USAGE', `Expected the training corpus to hold at least ${needed} tokens for ` +
      `--sampler ${sampler} --batch ${batchSize} --steps ${steps}, got ${tokens}`);
  }
}

/** The training minibatches of `corpus` for any epoch, resumable at any minibatch. */
export function batches(corpus: Int32Array, options: BatchesOptions): Batches {
  const { sampler, seed } = options;
  _checkOptions(options);
  checkCorpusLength(corpus.length, options);
  const plan = (state: SamplerState) => {
    const rng = new Rng(_checkState(state).rng);
    return { rng, ...(sampler === 'random' ? _randomPlan(corpus, options, rng) : _sequentialPlan(corpus, options, rng)) };
  };
  return {
    carriesState: sampler === 'sequential',
    initialState: (): SamplerState => ({ epoch: 0, rng: new Rng(seed).fork('batches').state(), cursor: 0 }),
    epoch(state: SamplerState): Epoch {
      const { size, batch } = plan(state);
      const cursor = state.cursor; // read now: the caller may update its state object while iterating
      if (cursor > size) throw new RangeError(`Expected the sampler cursor to be at most ${size}, got ${cursor}`);
      return { size, *[Symbol.iterator]() { for (let i = cursor; i < size; i++) yield batch(i); } };
    },
    nextEpoch(state: SamplerState): SamplerState {
      return { epoch: state.epoch + 1, rng: plan(state).rng.state(), cursor: 0 };
    },
  };
}

/**
 * Validation minibatches: sequential rows from offset 0 with no randomness, and a last, shorter
 * minibatch for the columns left over, so that every token but the last (rows - 1) at most is
 * predicted once. A corpus shorter than batchSize + 1 tokens gets fewer rows; under 2 tokens, none.
 */
export function evalBatches(corpus: Int32Array, options: { batchSize: number; steps: number }): Epoch {
  _checkSizes(options.batchSize, options.steps);
  const stream = batchify(corpus, Math.max(1, Math.min(options.batchSize, corpus.length - 1)));
  const size = Math.ceil(stream.rowLength / options.steps);
  const batch = (i: number) => {
    const start = i * options.steps;
    return getBatch(stream, start, Math.min(options.steps, stream.rowLength - start), i);
  };
  return { size, *[Symbol.iterator]() { for (let i = 0; i < size; i++) yield batch(i); } };
}

/** seq_data_iter_random: X rows are corpus[offset + start, +steps) for the epoch's shuffled starts. */
function _randomPlan(corpus: Int32Array, { batchSize, steps }: BatchesOptions, rng: Rng) {
  const { offset, starts } = randomOrder(corpus.length, steps, rng);
  const batch = (i: number): Minibatch => {
    const inputs = new Int32Array(batchSize * steps);
    const targets = new Int32Array(batchSize * steps);
    for (let row = 0; row < batchSize; row++) {
      const from = offset + starts[i * batchSize + row];
      inputs.set(corpus.subarray(from, from + steps), row * steps);
      targets.set(corpus.subarray(from + 1, from + 1 + steps), row * steps);
    }
    return { inputs, targets, batchSize, steps, index: i };
  };
  return { size: Math.floor(starts.length / batchSize), batch };
}

/** seq_data_iter_sequential: batchSize contiguous rows from a random offset, steps columns at a time. */
function _sequentialPlan(corpus: Int32Array, { batchSize, steps }: BatchesOptions, rng: Rng) {
  const stream = batchify(corpus, batchSize, sequentialOffset(steps, rng));
  return { size: Math.floor(stream.rowLength / steps), batch: (i: number) => getBatch(stream, i * steps, steps, i) };
}

function _checkOptions(options: BatchesOptions): void {
  if (options.sampler !== 'random' && options.sampler !== 'sequential') {
    throw new TypeError(`Expected \`--sampler\` to be one of random, sequential, got \`${options.sampler}\``);
  }
  _checkSizes(options.batchSize, options.steps);
  if (!Number.isSafeInteger(options.seed)) throw new TypeError(`Expected \`--seed\` to be an integer, got \`${options.seed}\``);
}

function _checkSizes(batchSize: number, steps: number): void {
  for (const [flag, value] of [['--batch', batchSize], ['--steps', steps]] as const) {
    if (!Number.isInteger(value) || value < 1) throw new RangeError(`Expected \`${flag}\` to be an integer of at least 1, got \`${value}\``);
  }
}

function _checkState(state: SamplerState): SamplerState {
  if (!state || !Number.isInteger(state.epoch) || state.epoch < 0 || !Number.isInteger(state.cursor) || state.cursor < 0) {
    throw new TypeError(`Expected a sampler state {epoch, rng, cursor}, got \`${JSON.stringify(state)}\``);
  }
  return state;
}
