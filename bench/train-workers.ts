/**
 * Training on every core: tokens per second of full training steps (forward, BPTT, clipping, SGD
 * update, the loss read back) through the trainer's own step (stages/train trainStepper) on synthetic
 * token ids, for d2l's char setting A (vocabulary 28, hidden 512, batch 32, 35 steps) and the word
 * setting B (vocabulary 10,000, hidden 256) of bench/train-bench.ts, with 1 and with N training
 * workers, on wasm (or cpu). Where
 * Debian's python3-torch imports, bench/torch_rnn.py times the same model in PyTorch (nn.RNN with
 * one-hot inputs, and nn.Embedding + nn.RNN, each with 1 thread and all cores) in the same run.
 *
 * Each step is timed on its own: on a shared machine the fastest step is the closest to what the
 * code does alone, and the median says what a run got. Rounds alternate ours and PyTorch's, so a
 * burst of load from elsewhere falls on both.
 *
 *   npx tsx bench/train-workers.ts [--backend wasm] [--seconds 10] [--rounds 2] [--workers 1,2] [--cell rnn]
 *   import { benchTrainWorkers } from './bench/train-workers.ts';   // scripts/bench.ts
 */
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { DEFAULTS, type Config } from '../pipeline/config.ts';
import { Rng } from '../lib/rng.ts';
import { backend, disposeTraining, startTraining, trainStepper, type BackendChoice, type Cell } from '../stages/train/index.ts';
import { SETTINGS as ALL_SETTINGS, type Setting } from './train-bench.ts';

/** A and B: the CPU settings (C is sized for a GPU). */
const SETTINGS = ALL_SETTINGS.filter((s) => !s.name.startsWith('C'));

/** Step times of one configuration, over every round. */
interface Timing {
  /** The fastest step's rate, and the median step's. */
  tokensPerSecond: number;
  medianTokensPerSecond: number;
  msPerStep: number;
  /** CPU time of the median step, every thread of the process together: what load from elsewhere does not inflate (much). */
  cpuMsPerStep: number;
  measuredSteps: number;
}

export interface Measured extends Setting, Timing {
  workers: number;
}

type TorchResult = Setting & Timing & { variant: string; threads: number };

export interface WorkersBench {
  backend: string;
  cores: number;
  /** Load average (1 min) before and after. */
  load: [number, number];
  results: Measured[];
  /** Peak resident memory of this process, MB. */
  peakRssMb: number;
  torch?: { version: string; blas: string; results: TorchResult[] } | { error: string };
  /** Per setting: our fastest worker count / PyTorch's fastest variant and thread count (fastest steps), and the same for medians. */
  ratios?: { name: string; workers: number; ours: number; torchBest: number; torchVariant: string; ratio: number; medianRatio: number; cpuRatio: number }[];
  /** Setting A: tokens/s with the most workers / with 1 (fastest steps; medians). */
  scaling?: { name: string; workers: number; speedup: number; medianSpeedup: number }[];
}

/** Per-step wall and CPU times (ms) of `setting` with `workers` replicas, for about `seconds` after two warm-up steps. */
export async function stepTimes(setting: Setting, workers: number, seconds: number, backendName: 'wasm' | 'cpu' = 'wasm'): Promise<{ wall: number[]; cpu: number[] }> {
  const config: Config = { ...DEFAULTS, cell: setting.cell, hidden: setting.hidden, batch: setting.batch, steps: setting.steps, trainWorkers: workers, clip: 1, lr: 1 };
  const rng = new Rng(1);
  const size = setting.batch * setting.steps;
  const ids = () => Int32Array.from({ length: size }, () => rng.int(0, setting.vocabSize - 1));
  const batch = { inputs: ids(), targets: ids(), batchSize: setting.batch, steps: setting.steps, index: 0 };
  const data = { vocabSize: setting.vocabSize, vocabHash: '', trainTokens: 0, validTokens: 0 };
  const s = startTraining(config, data, { epoch: 0, rng: new Rng(2).state(), cursor: 0 });
  const stepper = await trainStepper(s, config, backendName, () => {});
  try {
    // The loss read back every step, as a CPU backend has it at once.
    const step = async (reset: boolean) => {
      const loss = await stepper.step(batch, reset);
      loss.dataSync();
      loss.dispose();
    };
    await step(true);
    await step(false);
    const times = { wall: [] as number[], cpu: [] as number[] };
    const cpu = () => (process.cpuUsage().user + process.cpuUsage().system) / 1000;
    const started = performance.now();
    while (performance.now() - started < seconds * 1000 || times.wall.length < 3) {
      const [before, cpuBefore] = [performance.now(), cpu()];
      await step(false);
      times.wall.push(performance.now() - before);
      times.cpu.push(cpu() - cpuBefore);
    }
    return times;
  } finally {
    stepper.close();
    disposeTraining(s);
  }
}

function timing(times: { wall: number[]; cpu: number[] }, tokens: number): Timing {
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1];
  return {
    tokensPerSecond: (tokens * 1000) / Math.min(...times.wall), medianTokensPerSecond: (tokens * 1000) / median(times.wall),
    msPerStep: median(times.wall), cpuMsPerStep: median(times.cpu), measuredSteps: times.wall.length,
  };
}

/** Runs bench/torch_rnn.py on the CPU (nn.RNN and nn.Embedding + nn.RNN) when /usr/bin/python3 can import torch. */
function timeTorch(settings: Setting[], seconds: number): WorkersBench['torch'] | undefined {
  const python = '/usr/bin/python3';
  if (spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore' }).status !== 0) return undefined;
  const script = fileURLToPath(new URL('./torch_rnn.py', import.meta.url));
  const run = spawnSync(python, [script, JSON.stringify({ settings, seconds, device: 'cpu', variants: ['nn', 'embedding'] })], { encoding: 'utf8' });
  if (run.status !== 0) return { error: run.stderr.trim().split('\n').pop() ?? `exit ${run.status}` };
  return JSON.parse(run.stdout);
}

export async function benchTrainWorkers(options: { backend?: BackendChoice; seconds?: number; rounds?: number; workers?: number[]; cell?: Cell; torch?: boolean } = {}): Promise<WorkersBench> {
  const { seconds = 10, rounds = 2, cell = 'rnn', torch = true } = options;
  const cores = availableParallelism();
  const workerCounts = options.workers ?? [...new Set([1, Math.min(cores, 4)])];
  const info = await backend(options.backend ?? 'wasm');
  if (info.name !== 'wasm' && info.name !== 'cpu') throw new Error(`The training bench runs on wasm or cpu, got ${info.name}`);
  const load: [number, number] = [(await import('node:os')).loadavg()[0], 0];
  const settings = SETTINGS.map((s) => ({ ...s, cell }));
  const ours = new Map<string, { wall: number[]; cpu: number[] }>();
  const torchRuns: TorchResult[][] = [];
  let torchError: { error: string } | undefined;
  let torchInfo = { version: '', blas: '' };
  for (let round = 0; round < rounds; round++) {
    for (const setting of settings) {
      for (const workers of round % 2 === 0 ? workerCounts : [...workerCounts].reverse()) {
        const key = `${setting.name}/${workers}`;
        const times = await stepTimes(setting, workers, seconds / rounds, info.name);
        const before = ours.get(key) ?? { wall: [], cpu: [] };
        ours.set(key, { wall: [...before.wall, ...times.wall], cpu: [...before.cpu, ...times.cpu] });
      }
      const measured = torch && !torchError ? timeTorch([setting], seconds / rounds) : undefined;
      if (measured && 'error' in measured) torchError = measured;
      else if (measured) {
        torchInfo = { version: measured.version, blas: measured.blas };
        torchRuns.push(measured.results);
      }
    }
  }
  const results: Measured[] = settings.flatMap((setting) => workerCounts.map((workers) =>
    ({ ...setting, workers, ...timing(ours.get(`${setting.name}/${workers}`)!, setting.batch * setting.steps) })));
  const report: WorkersBench = { backend: info.detail, cores, load, results, peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024) };
  load[1] = (await import('node:os')).loadavg()[0];
  if (torchError) report.torch = torchError;
  else if (torchRuns.length > 0) {
    report.torch = { ...torchInfo, results: mergeTorch(torchRuns.flat()) };
    report.ratios = settings.map((setting) => {
      const best = <T extends Timing>(rows: T[], key: keyof Timing) => rows.reduce((a, b) => (b[key] > a[key] ? b : a));
      const mine = results.filter((r) => r.name === setting.name);
      const theirs = (report.torch as { results: TorchResult[] }).results.filter((r) => r.name === setting.name);
      const [fast, fastTorch] = [best(mine, 'tokensPerSecond'), best(theirs, 'tokensPerSecond')];
      return {
        name: setting.name, workers: fast.workers, ours: fast.tokensPerSecond, torchBest: fastTorch.tokensPerSecond,
        torchVariant: `${fastTorch.variant}, ${fastTorch.threads} thread(s)`, ratio: fast.tokensPerSecond / fastTorch.tokensPerSecond,
        medianRatio: best(mine, 'medianTokensPerSecond').medianTokensPerSecond / best(theirs, 'medianTokensPerSecond').medianTokensPerSecond,
        // Per core, on CPU time: 1 worker against PyTorch's cheapest 1-thread variant.
        cpuRatio: Math.min(...theirs.filter((r) => r.threads === 1).map((r) => r.cpuMsPerStep)) / mine.find((r) => r.workers === 1)!.cpuMsPerStep,
      };
    });
  }
  const most = Math.max(...workerCounts);
  if (most > 1 && workerCounts.includes(1)) {
    report.scaling = settings.map((setting) => {
      const [one, many] = [1, most].map((w) => results.find((r) => r.name === setting.name && r.workers === w)!);
      return { name: setting.name, workers: most, speedup: many.tokensPerSecond / one.tokensPerSecond, medianSpeedup: many.medianTokensPerSecond / one.medianTokensPerSecond };
    });
  }
  return report;
}

/** One row per setting, variant and thread count: the fastest step and the median of the rounds' medians. */
function mergeTorch(rows: TorchResult[]): TorchResult[] {
  const groups = new Map<string, TorchResult[]>();
  for (const row of rows) groups.set(`${row.name}/${row.variant}/${row.threads}`, [...(groups.get(`${row.name}/${row.variant}/${row.threads}`) ?? []), row]);
  return [...groups.values()].map((group) => {
    const medians = group.map((r) => r.medianTokensPerSecond).sort((a, b) => a - b);
    const cpu = group.map((r) => r.cpuMsPerStep).sort((a, b) => a - b);
    return {
      ...group[0], tokensPerSecond: Math.max(...group.map((r) => r.tokensPerSecond)), medianTokensPerSecond: medians[medians.length >> 1],
      cpuMsPerStep: cpu[cpu.length >> 1],
      measuredSteps: group.reduce((n, r) => n + r.measuredSteps, 0),
    };
  });
}

/** The markdown table of a report (scripts/bench.ts prints it too). */
export function trainWorkersTable(report: WorkersBench): string {
  const rate = (n: number) => Math.round(n).toLocaleString('en-US');
  const torch = !report.torch ? 'PyTorch not installed' : 'error' in report.torch ? `PyTorch failed: ${report.torch.error}` : `PyTorch ${report.torch.version} (${report.torch.blas})`;
  const lines = [
    `training on ${report.backend}, ${report.cores} cores, load ${report.load.map((l) => l.toFixed(1)).join(' -> ')} (${torch}; peak RSS ${report.peakRssMb} MB)`, '',
    '| training step (batch 32 × 35) | workers / threads | tokens/s, fastest step | median step | CPU ms per step (all threads) |', '|---|---|---:|---:|---:|',
    ...report.results.map((r) => `| ${r.name}: ${r.cell}, vocab ${r.vocabSize.toLocaleString('en-US')}, hidden ${r.hidden} | lmpipe, ${r.workers} worker${r.workers > 1 ? 's' : ''} | ${rate(r.tokensPerSecond)} | ${rate(r.medianTokensPerSecond)} | ${r.cpuMsPerStep.toFixed(0)} |`),
  ];
  if (report.torch && 'results' in report.torch) {
    lines.push(...report.torch.results.map((r) => `| ${r.name} | PyTorch ${r.variant}, ${r.threads} thread${r.threads > 1 ? 's' : ''} | ${rate(r.tokensPerSecond)} | ${rate(r.medianTokensPerSecond)} | ${r.cpuMsPerStep.toFixed(0)} |`));
  }
  for (const r of report.ratios ?? []) lines.push('', `${r.name}: ${r.ratio.toFixed(2)}× PyTorch's best (${r.torchVariant}) with ${r.workers} worker(s), fastest steps; ${r.medianRatio.toFixed(2)}× in medians; per core in CPU time, 1 worker / PyTorch 1 thread: ${r.cpuRatio.toFixed(2)}×`);
  for (const s of report.scaling ?? []) lines.push(`${s.name}: ${s.workers} workers ${s.speedup.toFixed(2)}× 1 worker, fastest steps; ${s.medianSpeedup.toFixed(2)}× in medians`);
  return lines.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { parseArgs } = await import('node:util');
  const { values } = parseArgs({
    options: {
      backend: { type: 'string' }, seconds: { type: 'string' }, rounds: { type: 'string' }, workers: { type: 'string' },
      cell: { type: 'string' }, 'no-torch': { type: 'boolean' }, json: { type: 'boolean' },
    },
  });
  const report = await benchTrainWorkers({
    backend: values.backend as BackendChoice | undefined, seconds: values.seconds ? Number(values.seconds) : undefined,
    rounds: values.rounds ? Number(values.rounds) : undefined, workers: values.workers?.split(',').map(Number),
    cell: values.cell as Cell | undefined, torch: !values['no-torch'],
  });
  console.log(values.json ? JSON.stringify(report, null, 2) : trainWorkersTable(report));
}
