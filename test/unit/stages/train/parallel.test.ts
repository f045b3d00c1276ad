import t from 'tap';
import { backend } from '../../../../stages/train/backend.ts';
import { DEFAULTS, type Config } from '../../../../pipeline/config.ts';
import { Rng } from '../../../../lib/rng.ts';
import { batches } from '../../../../stages/train/batches.ts';
import { trainStepper } from '../../../../stages/train/train.ts';
import { disposeTraining, startTraining, trainSettings, trainWorkerCount } from '../../../../stages/train/state.ts';
import { splitRows } from '../../../../stages/train/_parallel.ts';

await backend('cpu');

const corpus = (() => {
  const rng = new Rng(5);
  return Int32Array.from({ length: 400 }, () => rng.int(0, 6));
})();
const data = { vocabSize: 7, vocabHash: 'test', trainTokens: corpus.length, validTokens: 0 };

/** Losses of every step of `epochs` epochs with `workers` replicas, and the final flat parameters. */
async function run(settings: Partial<Config>, workers: number, epochs = 1) {
  const config: Config = { ...DEFAULTS, hidden: 8, batch: 6, steps: 5, seed: 3, dropout: 0, lrDecay: 1, ...settings, trainWorkers: workers };
  const sampler = batches(corpus, { sampler: config.sampler, batchSize: config.batch, steps: config.steps, seed: config.seed });
  const s = startTraining(config, data, sampler.initialState());
  const stepper = await trainStepper(s, config, 'cpu', () => {});
  const losses: number[] = [];
  try {
    for (let e = 0; e < epochs; e++) {
      for (const batch of sampler.epoch(s.sampler)) {
        const loss = await stepper.step(batch, batch.index === 0 || !sampler.carriesState);
        losses.push(loss.dataSync()[0]);
        loss.dispose();
      }
      s.sampler = sampler.nextEpoch(s.sampler);
    }
    stepper.sync();
    const params = Object.values(s.params).flatMap((p) => Array.from(p.dataSync()));
    const hidden = (s.hidden ?? []).flat().flatMap((h) => Array.from(h.dataSync()));
    return { losses, params, hidden, updates: s.optimizer.updates, slots: Object.keys(s.optimizer.slots) };
  } finally {
    stepper.close();
    disposeTraining(s);
  }
}

const relative = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b), 1e-30);
const worst = (a: number[], b: number[]) => a.reduce((max, x, i) => Math.max(max, relative(x, b[i])), 0);

t.test('splitRows() cuts the rows into contiguous slices that differ by at most one', async (t) => {
  t.same(splitRows(32, 2), [[0, 16], [16, 32]]);
  t.same(splitRows(7, 3), [[0, 2], [2, 4], [4, 7]]);
});

t.test('trainStepper() with N workers gives the single-thread losses within 1e-5 per step', async (t) => {
  // All cases at once: most of a case's time is its worker thread starting (tsx, tfjs), which overlaps.
  const cases = (['rnn', 'gru', 'lstm'] as const).flatMap((cell) => (['sequential', 'random'] as const).map((sampler) => ({
    cell, sampler, truncatePi: cell === 'gru' ? 0.5 : 1, optimizer: cell === 'lstm' ? 'adam' as const : 'sgd' as const, lr: cell === 'lstm' ? 0.01 : 1,
  })));
  const results = await Promise.all(cases.map(async (settings) => ({ settings, one: await run(settings, 1), two: await run(settings, 2) })));
  for (const { settings: { cell, sampler }, one, two } of results) {
    t.ok(one.losses.length >= 10, `${one.losses.length} steps`);
    t.ok(worst(one.losses, two.losses) < 1e-5, `${cell} ${sampler} 2 workers: worst relative loss difference ${worst(one.losses, two.losses).toExponential(2)}`);
    t.ok(worst(one.params, two.params) < 1e-3, `${cell} ${sampler}: final parameters agree`);
    t.equal(two.updates, one.updates, 'optimizer update count');
    t.same(two.slots, one.slots, 'the same optimizer slots, in the same order');
    t.equal(two.hidden.length, one.hidden.length, 'the carried state is gathered from every replica');
    t.ok(worst(one.hidden, two.hidden) < 1e-3, 'and has the same values');
  }
});

t.test('trainStepper() with 3 workers (uneven rows 2+2+3) matches one, and is bit-reproducible for a given N; with dropout each gets its rows of the masks', async (t) => {
  const settings = { cell: 'gru' as const, batch: 7, layers: 2, dropout: 0.3 };
  const [one, a, b] = await Promise.all([run(settings, 1, 2), run(settings, 3, 2), run(settings, 3, 2)]);
  t.ok(worst(one.losses, a.losses) < 1e-5, `worst relative loss difference ${worst(one.losses, a.losses).toExponential(2)}`);
  t.same(a.losses, b.losses);
  t.same(a.params, b.params);
  const undropped = await run({ ...settings, dropout: 0 }, 1, 2);
  t.ok(worst(one.losses, undropped.losses) > 1e-3, 'dropout changes the losses');
});

t.test('trainWorkerCount() resolves auto by model size and batch; the count is in the fingerprint', async (t) => {
  t.equal(trainWorkerCount({ trainWorkers: 0, batch: 4, steps: 8, hidden: 16 }), 1, 'a tiny model trains on one thread');
  t.ok(trainWorkerCount({ trainWorkers: 0, batch: 32, steps: 35, hidden: 512 }) >= 1);
  t.ok(trainWorkerCount({ trainWorkers: 0, batch: 16, steps: 35, hidden: 512 }) <= 2, 'at most one per 8 rows');
  t.equal(trainWorkerCount({ trainWorkers: 3, batch: 2, steps: 8, hidden: 16 }), 2, 'never more than the rows');
  t.not(JSON.stringify(trainSettings({ ...DEFAULTS, trainWorkers: 2 })), JSON.stringify(trainSettings({ ...DEFAULTS, trainWorkers: 1 })));
});
