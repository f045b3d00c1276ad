/**
 * Training speed: tokens per second of full training steps (forward, BPTT, clipping, SGD update) on
 * synthetic token ids, for d2l's char setting A (vocabulary 28, hidden 512, batch 32, 35 steps) and a
 * word setting B (vocabulary 10,000, hidden 256), on the backend in use. Where Debian's python3-torch
 * imports, bench/torch_rnn.py times the same model in PyTorch in the same run and the ratio is printed.
 *
 *   npx tsx bench/train-bench.ts [--backend wasm] [--seconds 10] [--cell rnn]
 *   import { benchTraining } from './bench/train-bench.ts';   // scripts/bench.ts
 */
import * as tf from '@tensorflow/tfjs-core';
import { spawnSync } from 'node:child_process';
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
];

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
  torch?: { version: string; results: (Setting & { variant: string; threads: number; tokensPerSecond: number })[] } | { error: string };
  /** Per setting: ours / PyTorch's best variant. */
  ratios?: { name: string; ours: number; torchBest: number; torchVariant: string; ratio: number }[];
}

/** Times `setting` for about `seconds` after two warm-up steps. */
export function timeSetting(setting: Setting, seconds: number): Measured {
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
  const step = () => {
    const result = lossAndGradients(params, shape, window, hidden);
    const clipped = clipGradients(result.gradients, 1);
    params = applyUpdate(params, clipped.gradients, optimizer, 1);
    result.loss.dataSync();
    tf.dispose([result.loss, clipped.norm, hidden.flat(), Object.values(result.gradients), Object.values(clipped.gradients)]);
    hidden = result.hidden;
  };
  step();
  step();
  let steps = 0;
  const started = performance.now();
  while (performance.now() - started < seconds * 1000 || steps < 3) {
    step();
    steps++;
  }
  const elapsed = (performance.now() - started) / 1000;
  tf.dispose([Object.values(params), hidden.flat()]);
  return { ...setting, tokensPerSecond: (steps * size) / elapsed, msPerStep: (elapsed * 1000) / steps, measuredSteps: steps };
}

/** Runs bench/torch_rnn.py on `settings` when /usr/bin/python3 can import torch. */
export function timeTorch(settings: Setting[], seconds: number): TrainingBench['torch'] | undefined {
  const python = '/usr/bin/python3';
  if (spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore' }).status !== 0) return undefined;
  const script = fileURLToPath(new URL('./torch_rnn.py', import.meta.url));
  const run = spawnSync(python, [script, JSON.stringify({ settings, seconds })], { encoding: 'utf8' });
  if (run.status !== 0) return { error: run.stderr.trim().split('\n').pop() ?? `exit ${run.status}` };
  return JSON.parse(run.stdout);
}

export async function benchTraining(options: { backend?: BackendChoice; seconds?: number; cell?: Cell; torch?: boolean } = {}): Promise<TrainingBench> {
  const { seconds = 10, cell = 'rnn', torch = true } = options;
  const info = await backend(options.backend ?? 'auto');
  const settings = SETTINGS.map((s) => ({ ...s, cell }));
  const results = settings.map((setting) => timeSetting(setting, seconds));
  const report: TrainingBench = { backend: info.detail, results, peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024) };
  const measured = torch ? timeTorch(settings, seconds) : undefined;
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
  if (!report.torch) console.log('PyTorch: not importable by /usr/bin/python3 (apt-get install python3-torch to compare)');
  else if ('error' in report.torch) console.log(`PyTorch: failed: ${report.torch.error}`);
  else {
    console.log(`PyTorch ${report.torch.version}:`);
    for (const r of report.torch.results) console.log(`  ${r.name.padEnd(13)} ${r.variant.padEnd(8)} ${r.threads} thread(s): ${rate(r.tokensPerSecond)} tok/s`);
    for (const r of report.ratios ?? []) console.log(`  ratio ${r.name}: ${r.ratio.toFixed(2)} of PyTorch's best (${r.torchVariant})`);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { parseArgs } = await import('node:util');
  const { values } = parseArgs({ options: { backend: { type: 'string' }, seconds: { type: 'string' }, cell: { type: 'string' }, 'no-torch': { type: 'boolean' } } });
  _print(await benchTraining({
    backend: values.backend as BackendChoice | undefined, seconds: values.seconds ? Number(values.seconds) : undefined,
    cell: values.cell as Cell | undefined, torch: !values['no-torch'],
  }));
}
