/**
 * `npm run bench`: the ingest benchmark (lmpipe vs Python Counter vs a Node read-and-split ceiling,
 * 1 and 2 workers) on a deterministic ~100 MB corpus, and the training benchmark when
 * bench/train-bench.ts exists. Writes the results with the machine described, prints a markdown table.
 * Never part of `npm test`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeCorpus } from '../bench/make-corpus.ts';
import { benchIngest, type Measurement } from '../bench/ingest.ts';
import { benchScaling, scalingTable } from '../bench/workers.ts';
import { benchNats, natsTable } from '../bench/nats.ts';
import { benchTrainWorkers, trainWorkersTable } from '../bench/train-workers.ts';
import { writeFileAtomic } from '../lib/checkpoint.ts';
import { flagLines, parseCommandLine, type FlagSpec } from '../pipeline/args.ts';
import { runMain } from '../pipeline/run-main.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

const USAGE = `Usage: npm run bench -- [--size MB] [--workers 1,2] [--no-python] [--no-training] [--no-ingest] [--no-scaling] [--scaling-repeat N] [--train-seconds S] [--repeat N] [--memory-mb MB] [--keep DIR] [--timeout S] [--out FILE]
       npm run bench -- --backend webgpu [--compare wasm] [--train-seconds S] [--out FILE]

Builds (or reuses) a deterministic corpus of about --size MB (default 100) from ../shared/corpora in
.cache/bench/, then measures read + tokenize (d2l-word) + count 1..3-grams + SQLite write:
  lmpipe (scripts/run-pipeline.ts --until count) with each --workers count,
  the d2l-style Python collections.Counter script (bench/counter.py, writing sqlite3 too),
  a Node read-and-split of the same file (the ceiling).
Each runs as its own process, --repeat times (default 1; the fastest counts, all are recorded),
killed after --timeout seconds (default 1800). lmpipe's rows also give its count stage's time and
its steady counting rate (MB/s between 25% and 90% of the input).
Then worker scaling (bench/workers.ts): Tiny Shakespeare x90 counted with 1 and 2 workers,
alternating, --scaling-repeat times each (default 3), d2l-word and d2l-char; speed-ups of the
fastest runs (and of the medians).
Then distributed counting (bench/nats.ts), when nats-server is installed: the same corpus counted by
the pipeline as coordinator plus 2 local NATS workers against --workers 2, alternating, --nats-repeat
times each (default 3).
Then the training benchmark (bench/train-bench.ts, about --train-seconds per setting, default 10)
when it exists: tokens/s of d2l's char setting and a word setting, against PyTorch on CPU if installed.
Then training on every core (bench/train-workers.ts; not with --backend): settings A and B with 1 and
2 training workers on wasm, against PyTorch on CPU (nn.RNN and nn.Embedding + nn.RNN, 1 and 2
threads), in --train-rounds alternating rounds (default 2), fastest and median steps, CPU per step.
--backend B runs the training benchmark alone, on backend B: on a GPU it adds the GPU-sized setting C
(LSTM, vocabulary 10,000, hidden 1,024, batch 256) and compares with PyTorch on CUDA; --compare B2
also times our backend B2 on the same settings (one step at least: wasm takes seconds per C step).
Results go to --out: bench/results.json for the full 100 MB run, else .cache/bench/results-<size>mb.json
(with --backend, .cache/bench/results-train-<backend>.json).`;

const FLAGS: Record<string, FlagSpec> = {
  size: { kind: 'number', min: 1, value: 'MB', help: 'Corpus size in MB (at most 10000)', default: 100 },
  workers: { kind: 'string', value: 'LIST', help: 'Comma-separated worker counts for lmpipe', default: '1,2' },
  python: { kind: 'boolean', help: 'Run the Python Counter baseline (--no-python skips it)', default: true },
  training: { kind: 'boolean', help: 'Run the training benchmark', default: true },
  ingest: { kind: 'boolean', help: 'Run the ingest benchmark', default: true },
  scaling: { kind: 'boolean', help: 'Run the worker-scaling benchmark', default: true },
  scalingRepeat: { kind: 'integer', min: 1, help: 'Runs of each worker count in the scaling benchmark', default: 3 },
  nats: { kind: 'boolean', help: 'Run the distributed-counting benchmark (needs nats-server)', default: true },
  natsRepeat: { kind: 'integer', min: 1, help: 'Runs of each side in the distributed-counting benchmark', default: 3 },
  trainSeconds: { kind: 'number', min: 1, value: 'S', help: 'Seconds per training setting (per worker or thread count in the workers benchmark)', default: 10 },
  trainRounds: { kind: 'integer', min: 1, help: 'Alternating rounds the training-workers benchmark splits its seconds over', default: 2 },
  repeat: { kind: 'integer', min: 1, help: 'Runs of each ingest tool (the fastest counts)', default: 1 },
  memoryMb: { kind: 'integer', min: 16, value: 'MB', help: "lmpipe's --memory-mb in the ingest benchmark (default: the pipeline's)" },
  keep: { kind: 'string', value: 'DIR', help: "Keep lmpipe's run directories in DIR (for bench/sample-check.sh)" },
  timeout: { kind: 'number', min: 1, value: 'S', help: 'Seconds before a run is killed', default: 1800 },
  out: { kind: 'string', value: 'FILE', help: 'Results file (default: bench/results.json at 100 MB, else .cache/bench/)' },
  backend: { kind: 'string', value: 'B', help: 'Run only the training benchmark, on backend B (on a GPU: settings A, B and C)' },
  compare: { kind: 'string', value: 'B2', help: 'Time the training settings on our backend B2 too, and print the ratios' },
};

function parseArgs(argv: string[]) {
  const { flags, help } = parseCommandLine(argv, { flags: FLAGS, kebab: true });
  const sizeMb = flags.size as number;
  if (sizeMb > 10000) throw new TypeError(`Expected \`--size\` to be a number of MB from 0 to 10000, got \`${sizeMb}\``);
  const workers = (flags.workers as string).split(',').map(Number);
  if (!workers.every((w) => Number.isInteger(w) && w >= 1 && w <= 256)) {
    throw new TypeError(`Expected \`--workers\` to be a comma-separated list of integers from 1 to 256, got \`${flags.workers}\``);
  }
  const backend = flags.backend as string | undefined; // the training benchmark alone
  const out = (flags.out as string | undefined) ?? (backend ? join(ROOT, `.cache/bench/results-train-${backend}.json`)
    : sizeMb === 100 ? join(ROOT, 'bench/results.json') : join(ROOT, `.cache/bench/results-${sizeMb}mb.json`));
  return {
    sizeMb, workers, out, help, backend, compare: flags.compare as string | undefined,
    python: flags.python as boolean, training: flags.training as boolean,
    ingest: !backend && (flags.ingest as boolean), scaling: !backend && (flags.scaling as boolean), nats: !backend && (flags.nats as boolean), natsRepeat: flags.natsRepeat as number,
    scalingRepeat: flags.scalingRepeat as number, trainSeconds: flags.trainSeconds as number, trainRounds: flags.trainRounds as number, repeat: flags.repeat as number,
    memoryMb: flags.memoryMb as number | undefined, keep: flags.keep as string | undefined,
    timeoutS: flags.timeout as number,
  };
}

function describeMachine() {
  const cpuinfo = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '';
  const python = (() => {
    try {
      return execFileSync('python3', ['--version'], { encoding: 'utf8' }).trim();
    } catch {
      return null;
    }
  })();
  return {
    cpu: /model name\s*:\s*(.+)/.exec(cpuinfo)?.[1] ?? cpus()[0]?.model ?? 'unknown',
    cores: availableParallelism(),
    memoryGb: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    python,
    os: `${process.platform} ${release()}`,
    /** 1-minute load average at the start: above the core count, other work shared the CPUs. */
    loadAverage: loadavg()[0],
    loadAverageEnd: null as number | null,
    date: new Date().toISOString(),
  };
}

function ingestTable(results: Measurement[]): string {
  const python = results.find((m) => m.name.startsWith('Python') && m.exitCode === 0);
  const ceiling = results.find((m) => m.name.includes('ceiling') && m.exitCode === 0);
  const median = (m: Measurement) => {
    const all = [...((m.details?.allSeconds as number[] | undefined) ?? [m.seconds])].sort((a, b) => a - b);
    return all.length % 2 ? all[(all.length - 1) / 2] : (all[all.length / 2 - 1] + all[all.length / 2]) / 2;
  };
  const cpu = (m: Measurement) => ((m.details?.allCpuSeconds as Array<number | null> | undefined) ?? []).filter((x) => x !== null).map((x) => x!.toFixed(1)).join(', ');
  const rows = results.map((m) => {
    const failed = m.exitCode !== 0 ? ` (failed, exit ${m.exitCode})` : m.agrees === false ? ' (counts differ from Python!)' : '';
    const versus = (value: number, baseline?: number) => (baseline ? (baseline / value).toFixed(2) + '×' : '–');
    return `| ${m.name}${failed} | ${m.mbPerS.toFixed(2)} | ${versus(m.seconds, python?.seconds)} | ${median(m).toFixed(1)} | ${python ? versus(median(m), median(python)) : '–'} | ` +
      `${ceiling ? Math.round((100 * m.mbPerS) / ceiling.mbPerS) + '%' : '–'} | ${cpu(m)} | ${m.peakRssMb ?? '?'} MB |`;
  });
  if (python?.details?.countSeconds) {
    const mbPerS = python.mbPerS * (python.seconds / Number(python.details.countSeconds));
    rows.push(`| Python Counter, counting only (no write, no start-up) | ${mbPerS.toFixed(2)} | – | – | – | – | – | – |`);
  }
  const stages = results.filter((m) => m.details?.countStageSeconds !== undefined).map((m) => {
    const phases = (m.details!.phaseSeconds ?? {}) as Record<string, number>;
    return `| ${m.name} | ${Number(m.details!.countStageSeconds).toFixed(1)} | ${['count', 'reduce', 'write'].map((p) => (phases[p] ?? NaN).toFixed(1)).join(' / ')} | ${Number(m.details!.steadyMbPerS).toFixed(1)} |`;
  });
  return [
    '| ingest (d2l-word, 1..3-grams) | MB/s (fastest) | vs Python | median s | vs Python (medians) | of ceiling | CPU s (each run) | peak RSS |',
    '|---|---:|---:|---:|---:|---:|---:|---:|', ...rows, '',
    '| lmpipe (fastest run) | count stage s | count / reduce / write s | steady MB/s |', '|---|---:|---:|---:|', ...stages,
  ].join('\n');
}

interface TrainingReport {
  skipped?: string;
  backend?: string;
  peakRssMb?: number;
  results?: { name: string; cell: string; vocabSize: number; hidden: number; batch: number; tokensPerSecond: number; msPerStep: number }[];
  torch?: { version?: string; device?: string; error?: string };
  ratios?: { name: string; torchBest: number; torchVariant: string; ratio: number }[];
  compared?: { backend: string; ratios: { name: string; ratio: number }[] };
}

/** bench/train-bench.ts belongs to the trainer; it is loaded only when present. */
async function benchTrainingIfPresent(options: { seconds: number; backend?: string; compare?: string }): Promise<TrainingReport> {
  const path = join(ROOT, 'bench/train-bench.ts');
  if (!existsSync(path)) return { skipped: 'bench/train-bench.ts does not exist yet' };
  const module = (await import(path)) as { benchTraining?: (options?: { seconds?: number; backend?: string; compare?: string }) => Promise<TrainingReport> };
  if (typeof module.benchTraining !== 'function') return { skipped: 'bench/train-bench.ts exports no benchTraining()' };
  return module.benchTraining(options);
}

function trainingTable(report: TrainingReport): string {
  if (report.skipped || !report.results) return `training: skipped (${report.skipped ?? 'no results'})`;
  const torch = !report.torch ? 'PyTorch not installed' : report.torch.error ? `PyTorch failed: ${report.torch.error}` : `PyTorch ${report.torch.version}`;
  const rows = report.results.map((r) => {
    const ratio = report.ratios?.find((x) => x.name === r.name);
    const versus = ratio ? `${Math.round(ratio.torchBest).toLocaleString('en-US')} (${ratio.torchVariant}) | ${ratio.ratio.toFixed(2)}×` : '– | –';
    const compared = report.compared?.ratios.find((x) => x.name === r.name);
    return `| ${r.name}: ${r.cell}, vocab ${r.vocabSize.toLocaleString('en-US')}, hidden ${r.hidden}, batch ${r.batch} | ${Math.round(r.tokensPerSecond).toLocaleString('en-US')} | ${r.msPerStep.toFixed(1)} | ${versus} | ${compared ? `${compared.ratio.toFixed(1)}×` : '–'} |`;
  });
  return [
    `training on ${report.backend} (${torch}${report.torch?.device ? ` on ${report.torch.device}` : ''}; peak RSS ${report.peakRssMb} MB)`, '',
    `| training step (35 steps) | tokens/s | ms/step | PyTorch tokens/s | ours / PyTorch | ours / ${report.compared?.backend ?? '–'} |`,
    '|---|---:|---:|---:|---:|---:|', ...rows,
  ].join('\n');
}

async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  if (args.help) return void console.log(`${USAGE}\n\n${flagLines(FLAGS, { kebab: true, width: 20 }).join('\n')}`);
  const log = (line: string) => console.error(line);
  const machine = describeMachine();
  log(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGb} GB, Node ${machine.node}, load ${machine.loadAverage}`);
  const results: Record<string, unknown> = { machine };
  if (args.ingest) {
    const corpus = await makeCorpus({ sizeMb: args.sizeMb });
    log(`corpus: ${corpus.path} (${(corpus.bytes / 1e6).toFixed(1)} MB, sha256 ${corpus.sha256.slice(0, 16)}…, ${corpus.reused ? 'reused' : 'built'})`);
    const ingest = await benchIngest(corpus.path, { workers: args.workers, python: args.python, repeat: args.repeat, memoryMb: args.memoryMb, keep: args.keep, timeoutS: args.timeoutS, log });
    results.corpus = { ...corpus, path: corpus.path.replace(ROOT, '') };
    results.ingest = ingest;
    console.log(`\n${ingestTable(ingest)}\n`);
  }
  if (args.scaling) {
    log('running the worker-scaling benchmark (bench/workers.ts) ...');
    const scaling = await benchScaling({ repeat: args.scalingRepeat, timeoutS: args.timeoutS, log });
    results.scaling = scaling;
    console.log(`${scalingTable(scaling)}\n`);
  }
  if (args.nats) {
    log('running the distributed-counting benchmark (bench/nats.ts) ...');
    const corpus = await makeCorpus({ sizeMb: args.sizeMb });
    const nats = await benchNats(corpus.path, { repeat: args.natsRepeat, timeoutS: args.timeoutS, bytes: corpus.bytes, log });
    results.nats = nats ?? { skipped: 'nats-server is not installed' };
    console.log(nats ? `${natsTable(nats)}\n` : 'distributed counting: skipped (nats-server is not installed)\n');
  }
  if (args.training) {
    log('running the training benchmark (bench/train-bench.ts) ...');
    const training = await benchTrainingIfPresent({ seconds: args.trainSeconds, backend: args.backend, compare: args.compare });
    results.training = training;
    console.log(`${trainingTable(training)}\n`);
    if (!args.backend) {
      log('running the training-workers benchmark (bench/train-workers.ts) ...');
      const workers = await benchTrainWorkers({ seconds: args.trainSeconds, rounds: args.trainRounds });
      results.trainingWorkers = workers;
      console.log(`${trainWorkersTable(workers)}\n`);
    }
  }
  machine.loadAverageEnd = loadavg()[0];
  writeFileAtomic(args.out, [new TextEncoder().encode(JSON.stringify(results, null, 2) + '\n')]);
  log(`results: ${args.out}`);
}

runMain('bench', () => main(process.argv.slice(2)));
