/**
 * Training speed: tokens per second of full training steps (forward, BPTT, clipping, SGD update) on
 * synthetic token ids, for d2l's char setting A (vocabulary 28, hidden 512, batch 32, 35 steps), a
 * word setting B (vocabulary 10,000, hidden 256) and, on a GPU, a GPU-sized C (LSTM, vocabulary
 * 10,000, hidden 1,024, batch 256), on the backend in use. Where PyTorch imports (Debian's
 * python3-torch, or $LMPIPE_PYTHON), bench/torch_rnn.py times the same models in the same run, on
 * CUDA when we run on a GPU, and the ratios are printed; `--compare wasm` times our wasm too.
 * The loss is read back every 10 steps (or every second), as the trainer does: a GPU runs ahead.
 *
 *   npx tsx bench/train-bench.ts [--backend webgpu] [--settings A,B,C] [--compare wasm] [--seconds 10] [--cell rnn]
 *   import { benchTraining } from './bench/train-bench.ts';   // scripts/bench.ts
 */
import * as tf from '@tensorflow/tfjs-core';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { backend, type BackendChoice } from '../stages/train/index.ts';
import { Rng } from '../lib/rng.ts';
import { initHidden, initParams, lossAndGradients, type Cell, type ModelShape } from '../stages/train/index.ts';
import { applyUpdate, clipGradients, createOptimizer } from '../stages/train/index.ts';

export interface Setting {
  name: string;
  cell: Cell;
  vocabSize: number;
  hidden: number;
  batch: number;
  steps: number;
}

export const SETTINGS: Setting[] = [
  { name: 'A (d2l char)', cell: 'rnn', vocabSize: 28, hidden: 512, batch: 32, steps: 35 },
  { name: 'B (word)', cell: 'rnn', vocabSize: 10000, hidden: 256, batch: 32, steps: 35 },
  { name: 'C (GPU-sized)', cell: 'lstm', vocabSize: 10000, hidden: 1024, batch: 256, steps: 35 },
];

/** Backends that run on a GPU (not a software adapter): they get setting C by default, and PyTorch on CUDA to compare with. */
const GPU_BACKENDS = ['tensorflow-gpu', 'webgpu'];

export interface Measured extends Setting {
  tokensPerSecond: number;
  msPerStep: number;
  measuredSteps: number;
}

export interface TrainingBench {
  backend: string;
  results: Measured[];
  /** Peak resident memory of this process, MB. */
  peakRssMb: number;
  torch?: { version: string; device: string; results: (Setting & { variant: string; threads: number; tokensPerSecond: number })[] } | { error: string };
  /** Per setting: ours / PyTorch's best variant. */
  ratios?: { name: string; ours: number; torchBest: number; torchVariant: string; ratio: number }[];
  /** `--compare`: the same settings on another of our backends, and ours / that. */
  compared?: { backend: string; results: Measured[]; ratios: { name: string; ratio: number }[] };
}

/** Times `setting` for about `seconds` (at least `minSteps` steps) after `warmUp` steps. */
export async function timeSetting(setting: Setting, seconds: number, options: { warmUp?: number; minSteps?: number } = {}): Promise<Measured> {
  const { warmUp = 2, minSteps = 3 } = options;
  const shape: ModelShape = { cell: setting.cell, vocabSize: setting.vocabSize, hidden: setting.hidden, layers: 1 };
  const rng = new Rng(1);
  let params = initParams(shape, rng);
  const optimizer = createOptimizer('sgd', params);
  const size = setting.batch * setting.steps;
  const window = {
    inputs: Int32Array.from({ length: size }, () => rng.int(0, setting.vocabSize - 1)),
    targets: Int32Array.from({ length: size }, () => rng.int(0, setting.vocabSize - 1)),
    batchSize: setting.batch, steps: setting.steps,
  };
  let hidden = initHidden(shape, setting.batch);
  let lastRead = performance.now();
  /** One training step; reads its loss (waiting for the device) every 10 steps, every second and at the end. */
  const step = async (index: number, last: boolean) => {
    const result = lossAndGradients(params, shape, window, hidden);
    const clipped = clipGradients(result.gradients, 1);
    params = applyUpdate(params, clipped.gradients, optimizer, 1);
    if (last || index % 10 === 9 || performance.now() - lastRead > 1000) {
      await result.loss.data();
      lastRead = performance.now();
    }
    tf.dispose([result.loss, clipped.norm, hidden.flat(), Object.values(result.gradients), Object.values(clipped.gradients)]);
    hidden = result.hidden;
  };
  for (let i = 0; i < warmUp; i++) await step(i, true);
  let steps = 0;
  const started = performance.now();
  // The clock stops at a read, once the device has finished: the last step is the first read past the time.
  while (steps < minSteps || lastRead - started < seconds * 1000) {
    const readsAnyway = steps + 1 >= minSteps && performance.now() - started >= seconds * 1000;
    await step(steps++, readsAnyway);
  }
  const elapsed = (performance.now() - started) / 1000;
  tf.dispose([Object.values(params), hidden.flat()]);
  return { ...setting, tokensPerSecond: (steps * size) / elapsed, msPerStep: (elapsed * 1000) / steps, measuredSteps: steps };
}

/** Runs bench/torch_rnn.py on `settings` when $LMPIPE_PYTHON (default /usr/bin/python3) can import torch. */
export function timeTorch(settings: Setting[], seconds: number, device: 'cpu' | 'cuda' = 'cpu'): TrainingBench['torch'] | undefined {
  const python = process.env.LMPIPE_PYTHON ?? '/usr/bin/python3';
  if (spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore' }).status !== 0) return undefined;
  const script = fileURLToPath(new URL('./torch_rnn.py', import.meta.url));
  const run = spawnSync(python, [script, JSON.stringify({ settings, seconds, device })], { encoding: 'utf8' });
  if (run.status !== 0) return { error: run.stderr.trim().split('\n').pop() ?? `exit ${run.status}` };
  return JSON.parse(run.stdout);
}

export interface BenchOptions {
  backend?: BackendChoice;
  seconds?: number;
  /** Overrides the cell of settings A and B (C is an LSTM). */
  cell?: Cell;
  torch?: boolean;
  /** Setting letters; default A and B, and C on a GPU backend. */
  settings?: string[];
  /** Another of our backends to time the same settings on (its steps can be slow: one warm-up, one step at least). */
  compare?: BackendChoice;
}

export async function benchTraining(options: BenchOptions = {}): Promise<TrainingBench> {
  const { seconds = 10, torch = true } = options;
  const info = await backend(options.backend ?? 'auto');
  const gpu = GPU_BACKENDS.includes(info.name) && !info.detail.includes('software');
  const letters = options.settings ?? (gpu ? ['A', 'B', 'C'] : ['A', 'B']);
  const settings = SETTINGS.filter((s) => letters.includes(s.name[0]))
    .map((s) => (options.cell && s.name[0] !== 'C' ? { ...s, cell: options.cell } : s));
  const results: Measured[] = [];
  for (const setting of settings) results.push(await timeSetting(setting, seconds));
  const report: TrainingBench = { backend: info.detail, results, peakRssMb: 0 };
  if (options.compare) {
    const other = await backend(options.compare);
    const theirs: Measured[] = [];
    for (const setting of settings) theirs.push(await timeSetting(setting, seconds, { warmUp: 1, minSteps: 1 }));
    const ratios = results.map((ours, i) => ({ name: ours.name, ratio: ours.tokensPerSecond / theirs[i].tokensPerSecond }));
    report.compared = { backend: other.detail, results: theirs, ratios };
  }
  report.peakRssMb = Math.round(process.resourceUsage().maxRSS / 1024);
  const measured = torch ? timeTorch(settings, seconds, gpu ? 'cuda' : 'cpu') : undefined;
  if (measured) report.torch = measured;
  if (measured && 'results' in measured) {
    report.ratios = results.map((ours) => {
      const best = measured.results.filter((r) => r.name === ours.name).sort((a, b) => b.tokensPerSecond - a.tokensPerSecond)[0];
      return { name: ours.name, ours: ours.tokensPerSecond, torchBest: best.tokensPerSecond, torchVariant: `${best.variant}, ${best.threads} thread(s)`, ratio: ours.tokensPerSecond / best.tokensPerSecond };
    });
  }
  return report;
}

function _print(report: TrainingBench): void {
  const rate = (n: number) => Math.round(n).toLocaleString('en-US').padStart(8);
  console.log(`backend: ${report.backend}; peak RSS ${report.peakRssMb} MB`);
  for (const r of report.results) console.log(`  ${r.name.padEnd(13)} ${r.cell} V=${r.vocabSize} H=${r.hidden}: ${rate(r.tokensPerSecond)} tok/s (${r.msPerStep.toFixed(1)} ms/step)`);
  for (const r of report.compared?.results ?? []) console.log(`  ${r.name.padEnd(13)} on ${report.compared!.backend}: ${rate(r.tokensPerSecond)} tok/s (${r.msPerStep.toFixed(1)} ms/step)`);
  for (const r of report.compared?.ratios ?? []) console.log(`  ratio ${r.name}: ${r.ratio.toFixed(2)}x ${report.compared!.backend}`);
  if (!report.torch) console.log('PyTorch: not importable by /usr/bin/python3 (apt-get install python3-torch, or set LMPIPE_PYTHON, to compare)');
  else if ('error' in report.torch) console.log(`PyTorch: failed: ${report.torch.error}`);
  else {
    console.log(`PyTorch ${report.torch.version} on ${report.torch.device}:`);
    for (const r of report.torch.results) console.log(`  ${r.name.padEnd(13)} ${r.variant.padEnd(8)} ${r.threads} thread(s): ${rate(r.tokensPerSecond)} tok/s`);
    for (const r of report.ratios ?? []) console.log(`  ratio ${r.name}: ${r.ratio.toFixed(2)} of PyTorch's best (${r.torchVariant})`);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { parseArgs } = await import('node:util');
  const { values } = parseArgs({
    options: {
      backend: { type: 'string' }, seconds: { type: 'string' }, cell: { type: 'string' }, 'no-torch': { type: 'boolean' },
      settings: { type: 'string' }, compare: { type: 'string' }, json: { type: 'string' },
    },
  });
  const report = await benchTraining({
    backend: values.backend as BackendChoice | undefined, seconds: values.seconds ? Number(values.seconds) : undefined,
    cell: values.cell as Cell | undefined, torch: !values['no-torch'], settings: values.settings?.split(','),
    compare: values.compare as BackendChoice | undefined,
  });
  _print(report);
  if (values.json) writeFileSync(values.json, JSON.stringify(report, null, 2) + '\n');
}
