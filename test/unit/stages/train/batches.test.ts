import t from 'tap';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { LmpipeError } from '../../../../lib/errors.ts';
import { Rng } from '../../../../lib/rng.ts';
import {
  batches, batchify, evalBatches, randomOrder, sequentialOffset,
  type Batches, type BatchesOptions, type Minibatch, type SamplerName, type SamplerState,
} from '../../../../stages/train/batches.ts';

const ORACLE = fileURLToPath(new URL('../../../oracles/batches-oracle.py', import.meta.url));
const noPython = spawnSync('python3', ['--version']).status !== 0 && 'python3 is not installed';

const collect = <T>(iterable: Iterable<T>): T[] => [...iterable];
const range = (n: number) => Int32Array.from({ length: n }, (_, i) => i);
/** [rows][steps] nested arrays, the shape the oracle prints. */
const matrix = (flat: Int32Array, steps: number) =>
  Array.from({ length: flat.length / steps }, (_, r) => Array.from(flat.subarray(r * steps, (r + 1) * steps)));
const roundTrip = (state: SamplerState): SamplerState => JSON.parse(JSON.stringify(state));

/** State at the start of epoch `n`, reached through nextEpoch. */
function stateAt(data: Batches, n: number): SamplerState {
  let state = data.initialState();
  for (let i = 0; i < n; i++) state = data.nextEpoch(state);
  return state;
}

t.test('batches() matches d2l seq_data_iter_random / _sequential run literally in Python', { skip: noPython }, async (t) => {
  const pick = new Rng(1000);
  const cases: { corpus: Int32Array; options: BatchesOptions; epoch: number }[] = [];
  for (const sampler of ['random', 'sequential'] as SamplerName[]) {
    // d2l's own example: my_seq = list(range(35)), batch_size=2, num_steps=5.
    for (let epoch = 0; epoch < 4; epoch++) cases.push({ corpus: range(35), options: { sampler, batchSize: 2, steps: 5, seed: 7 }, epoch });
    for (let i = 0; i < 14; i++) {
      const batchSize = pick.int(1, 6);
      const steps = pick.int(1, 8);
      const length = (batchSize + 1) * steps + 1 + pick.int(0, 120);
      // Distinct ids (positions) catch any off-by-one; a small vocabulary looks like real data.
      const corpus = i % 2 ? range(length) : Int32Array.from({ length }, () => pick.int(0, 27));
      cases.push({ corpus, options: { sampler, batchSize, steps, seed: pick.int(0, 1e6) }, epoch: pick.int(0, 3) });
    }
  }
  const ours = cases.map(({ corpus, options, epoch }) => collect(batches(corpus, options).epoch(stateAt(batches(corpus, options), epoch))));
  const input = cases.map(({ corpus, options, epoch }) => {
    const rng = () => new Rng(stateAt(batches(corpus, options), epoch).rng);
    const draws = options.sampler === 'random'
      ? (({ offset, starts }) => ({ offset, starts: Array.from(starts) }))(randomOrder(corpus.length, options.steps, rng()))
      : { offset: sequentialOffset(options.steps, rng()), starts: [] };
    return { ...options, corpus: Array.from(corpus), ...draws };
  });
  const result = spawnSync('python3', [ORACLE], { input: JSON.stringify(input), encoding: 'utf8', maxBuffer: 1 << 28 });
  t.equal(result.status, 0, result.stderr);
  const expected: number[][][][][] = JSON.parse(result.stdout);
  cases.forEach(({ options, epoch }, c) => {
    const name = `${options.sampler} batch ${options.batchSize} steps ${options.steps} length ${input[c].corpus.length} epoch ${epoch}`;
    t.ok(expected[c].length > 0, `${name}: at least one minibatch`);
    t.same(ours[c].map((b) => [matrix(b.inputs, b.steps), matrix(b.targets, b.steps)]), expected[c], name);
    t.same(ours[c].map((b) => b.index), ours[c].map((_, i) => i), `${name}: indices`);
  });
});

t.test('batches() resumed twice within each epoch yields the uninterrupted minibatches bit for bit', async (t) => {
  const corpus = Int32Array.from({ length: 2000 }, (_, i) => (i * 7919) % 1009);
  const pick = new Rng(77);
  for (const sampler of ['random', 'sequential'] as SamplerName[]) {
    const options = { sampler, batchSize: 4, steps: 7, seed: 42 };
    const uninterrupted: Minibatch[][] = [];
    const data = batches(corpus, options);
    for (let state = data.initialState(); state.epoch < 3; state = data.nextEpoch(state)) uninterrupted.push(collect(data.epoch(state)));
    t.notSame(uninterrupted[0].map((b) => b.inputs), uninterrupted[1].map((b) => b.inputs), `${sampler}: epochs differ`);
    for (let trial = 0; trial < 6; trial++) {
      const resumed: Minibatch[][] = [];
      let state = batches(corpus, options).initialState();
      while (state.epoch < 3) {
        const size = batches(corpus, options).epoch(state).size;
        // Edge cursors (0, size) on the first trials, random ones after.
        const first = trial === 0 ? 0 : trial === 1 ? size : pick.int(0, size);
        const cuts = [first, trial === 1 ? size : pick.int(first, size), size];
        const got: Minibatch[] = [];
        for (const cut of cuts) {
          // A new process: a fresh sampler and a state read back from JSON.
          const iterator = batches(corpus, options).epoch(roundTrip(state))[Symbol.iterator]();
          while (state.cursor < cut) {
            got.push(iterator.next().value as Minibatch);
            state = { ...state, cursor: state.cursor + 1 };
          }
        }
        t.ok(batches(corpus, options).epoch(state)[Symbol.iterator]().next().done, 'epoch exhausted at its size');
        resumed.push(got);
        state = batches(corpus, options).nextEpoch(roundTrip(state));
      }
      t.same(resumed, uninterrupted, `${sampler} trial ${trial}`);
    }
  }
});

t.test('batches().epoch() is a fresh iterable with its size known up front, starting at the cursor', async (t) => {
  const data = batches(range(500), { sampler: 'random', batchSize: 3, steps: 4, seed: 1 });
  const state = data.initialState();
  const epoch = data.epoch(state);
  const all = collect(epoch);
  t.equal(all.length, epoch.size);
  t.same(collect(epoch), all, 'iterating again gives the same minibatches');
  t.same(collect(data.epoch({ ...state, cursor: 5 })), all.slice(5));
  t.equal(data.epoch({ ...state, cursor: 5 }).size, epoch.size, 'size counts the whole epoch');
  t.same(data.nextEpoch({ ...state, cursor: 5 }), data.nextEpoch(state), 'nextEpoch ignores the cursor');
  t.equal(data.nextEpoch(state).epoch, 1);
  t.throws(() => data.epoch({ ...state, cursor: epoch.size + 1 }), RangeError);
  t.throws(() => data.epoch({ ...state, cursor: -1 }), TypeError);
  for (const batch of all) {
    t.equal(batch.inputs.length, 12);
    t.same(Array.from(batch.targets), Array.from(batch.inputs, (x) => x + 1), 'targets follow inputs');
  }
});

t.test('batches() random starts cover disjoint subsequences; sequential rows continue across minibatches', async (t) => {
  const corpus = range(1000);
  const randomData = batches(corpus, { sampler: 'random', batchSize: 5, steps: 6, seed: 3 });
  t.equal(randomData.carriesState, false);
  const random = collect(randomData.epoch(randomData.initialState()));
  const firsts = random.flatMap((b) => matrix(b.inputs, 6).map((row) => row[0]));
  t.equal(new Set(firsts.map((x) => x % 6)).size, 1, 'one offset per epoch');
  t.equal(new Set(firsts).size, firsts.length, 'no subsequence twice');
  const sequentialData = batches(corpus, { sampler: 'sequential', batchSize: 5, steps: 6, seed: 3 });
  t.equal(sequentialData.carriesState, true);
  const sequential = collect(sequentialData.epoch(sequentialData.initialState()));
  for (let i = 1; i < sequential.length; i++) {
    for (let row = 0; row < 5; row++) t.equal(sequential[i].inputs[row * 6], sequential[i - 1].inputs[row * 6 + 5] + 1);
  }
});

t.test('batches() refuses a corpus too short for one minibatch at every offset', async (t) => {
  for (const sampler of ['random', 'sequential'] as SamplerName[]) {
    for (const [batchSize, steps] of [[32, 35], [2, 3], [1, 1]]) {
      const needed = (batchSize + 1) * steps + (sampler === 'sequential' ? 1 : 0);
      const options = { sampler, batchSize, steps, seed: 5 };
      t.throws(() => batches(range(needed - 1), options), new LmpipeError('USAGE',
        `Expected the training corpus to hold at least ${needed} tokens for --sampler ${sampler} --batch ${batchSize} --steps ${steps}, got ${needed - 1}`));
      // At the minimum, every epoch (every offset is drawn within 60 epochs at steps <= 3) has a minibatch.
      const data = batches(range(needed), options);
      if (steps <= 3) for (let state = data.initialState(); state.epoch < 60; state = data.nextEpoch(state)) t.ok(data.epoch(state).size >= 1);
    }
  }
  t.throws(() => batches(range(100), { sampler: 'shuffled' as SamplerName, batchSize: 2, steps: 3, seed: 1 }), TypeError);
  t.throws(() => batches(range(100), { sampler: 'random', batchSize: 0, steps: 3, seed: 1 }), RangeError);
  t.throws(() => batches(range(100), { sampler: 'random', batchSize: 2, steps: 1.5, seed: 1 }), RangeError);
});

t.test('evalBatches() covers the corpus in order, ending with a shorter minibatch', async (t) => {
  const corpus = range(110); // rows 4, rowLength floor(109 / 4) = 27: steps 5, 5, 5, 5, 5, 2
  const all = collect(evalBatches(corpus, { batchSize: 4, steps: 5 }));
  t.same(all.map((b) => b.steps), [5, 5, 5, 5, 5, 2]);
  t.same(all.map((b) => b.index), [0, 1, 2, 3, 4, 5]);
  for (let row = 0; row < 4; row++) {
    const inputs = all.flatMap((b) => Array.from(b.inputs.subarray(row * b.steps, (row + 1) * b.steps)));
    const targets = all.flatMap((b) => Array.from(b.targets.subarray(row * b.steps, (row + 1) * b.steps)));
    t.same(inputs, Array.from(corpus.subarray(row * 27, (row + 1) * 27)), `row ${row} inputs`);
    t.same(targets, inputs.map((x) => x + 1), `row ${row} targets`);
  }
  t.equal(evalBatches(corpus, { batchSize: 4, steps: 5 }).size, 6);
  t.same(collect(evalBatches(range(3), { batchSize: 4, steps: 5 })).map((b) => [b.batchSize, b.steps]), [[2, 1]], 'short corpus: fewer rows');
  t.same(collect(evalBatches(range(1), { batchSize: 4, steps: 5 })), [], 'one token: nothing to predict');
  t.same(collect(evalBatches(new Int32Array(0), { batchSize: 4, steps: 5 })), []);
});

t.test('batchify() keeps views, not copies', async (t) => {
  const corpus = range(26);
  const stream = batchify(corpus, 4);
  t.equal(stream.rowLength, 6);
  t.equal(stream.data.buffer, corpus.buffer);
  t.same(Array.from(stream.data), Array.from(range(25)), 'rows a..x plus y for the last target');
});

t.test('randomOrder() and sequentialOffset() draw offsets over d2l ranges [0, steps - 1] and [0, steps]', async (t) => {
  const rng = new Rng(8);
  const offsets = (draw: () => number) => [...new Set(Array.from({ length: 300 }, draw))].sort((a, b) => a - b);
  t.same(offsets(() => randomOrder(100, 4, rng).offset), [0, 1, 2, 3]);
  t.same(offsets(() => sequentialOffset(4, rng)), [0, 1, 2, 3, 4]);
  const { offset, starts } = randomOrder(100, 4, new Rng(9));
  t.same(Array.from(starts).sort((a, b) => a - b), Array.from({ length: Math.floor((100 - offset - 1) / 4) }, (_, i) => i * 4));
});
