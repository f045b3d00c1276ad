/**
 * `npm run bench`: the ingest benchmark (lmpipe vs Python Counter vs a Node read-and-split ceiling,
 * 1 and 2 workers) on a deterministic ~100 MB corpus, and the training benchmark
 * (bench/train-bench.ts). Writes the results with the machine described, prints a markdown table.
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
import { benchTraining, trainingTable, type TrainingBench } from '../bench/train-bench.ts';
import { writeFileAtomic } from '../lib/checkpoint.ts';
import { flagLines, parseCommandLine, type FlagSpec } from '../pipeline/args.ts';
import { runMain } from '../pipeline/run-main.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

const USAGE = `Usage: npm run bench -- [--size MB] [--workers 1,2] [--no-python] [--no-training] [--no-ingest] [--no-scaling] [--scaling-repeat N] [--train-seconds S] [--train-rounds N] [--repeat N] [--timeout S] [--out FILE]

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
Then the training benchmark (bench/train-bench.ts, about --train-seconds per configuration, default
10, split over --train-rounds alternating rounds, default 2): tokens/s of d2l's char setting and a
word setting with 1 and N training workers, against PyTorch on CPU (1 and N threads) if installed.
Results go to --out: bench/results.json for the full 100 MB run, else .cache/bench/results-<size>mb.json.`;

const FLAGS: Record<string, FlagSpec> = {
  size: { kind: 'number', min: 1, value: 'MB', help: 'Corpus size in MB (at most 10000)', default: 100 },
  workers: { kind: 'string', value: 'LIST', help: 'Comma-separated worker counts for lmpipe', default: '1,2' },
  python: { kind: 'boolean', help: 'Run the Python Counter baseline (--no-python skips it)', default: true },
  training: { kind: 'boolean', help: 'Run the training benchmark', default: true },
  ingest: { kind: 'boolean', help: 'Run the ingest benchmark', default: true },
  scaling: { kind: 'boolean', help: 'Run the worker-scaling benchmark', default: true },
  scalingRepeat: { kind: 'integer', min: 1, help: 'Runs of each worker count in the scaling benchmark', default: 3 },
  trainSeconds: { kind: 'number', min: 1, value: 'S', help: 'Seconds per training configuration (setting and worker or thread count)', default: 10 },
  trainRounds: { kind: 'integer', min: 1, help: 'Alternating rounds the training seconds are split over', default: 2 },
  repeat: { kind: 'integer', min: 1, help: 'Runs of each ingest tool (the fastest counts)', default: 1 },
  timeout: { kind: 'number', min: 1, value: 'S', help: 'Seconds before a run is killed', default: 1800 },
  out: { kind: 'string', value: 'FILE', help: 'Results file (default: bench/results.json at 100 MB, else .cache/bench/)' },
};

function parseArgs(argv: string[]) {
  const { flags, help } = parseCommandLine(argv, { flags: FLAGS, kebab: true });
  const sizeMb = flags.size as number;
  if (sizeMb > 10000) throw new TypeError(`Expected \`--size\` to be a number of MB from 0 to 10000, got \`${sizeMb}\``);
  const workers = (flags.workers as string).split(',').map(Number);
  if (!workers.every((w) => Number.isInteger(w) && w >= 1 && w <= 256)) {
    throw new TypeError(`Expected \`--workers\` to be a comma-separated list of integers from 1 to 256, got \`${flags.workers}\``);
  }
  const out = (flags.out as string | undefined) ?? (sizeMb === 100 ? join(ROOT, 'bench/results.json') : join(ROOT, `.cache/bench/results-${sizeMb}mb.json`));
  return {
    sizeMb, workers, out, help,
    python: flags.python as boolean, training: flags.training as boolean, ingest: flags.ingest as boolean, scaling: flags.scaling as boolean,
    scalingRepeat: flags.scalingRepeat as number, trainSeconds: flags.trainSeconds as number, trainRounds: flags.trainRounds as number, repeat: flags.repeat as number,
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
  const rows = results.map((m) => {
    const failed = m.exitCode !== 0 ? ` (failed, exit ${m.exitCode})` : m.agrees === false ? ' (counts differ from Python!)' : '';
    return `| ${m.name}${failed} | ${m.mbPerS.toFixed(2)} | ${python ? (m.mbPerS / python.mbPerS).toFixed(2) + '×' : '–'} | ${ceiling ? Math.round((100 * m.mbPerS) / ceiling.mbPerS) + '%' : '–'} | ${m.peakRssMb ?? '?'} MB |`;
  });
  if (python?.details?.countSeconds) {
    const mbPerS = python.mbPerS * (python.seconds / Number(python.details.countSeconds));
    rows.push(`| Python Counter, counting only (no write, no start-up) | ${mbPerS.toFixed(2)} | – | – | – |`);
  }
  const stages = results.filter((m) => m.details?.countStageSeconds !== undefined).map((m) =>
    `| ${m.name} | ${Number(m.details!.countStageSeconds).toFixed(1)} | ${Number(m.details!.steadyMbPerS).toFixed(1)} |`);
  return [
    '| ingest (d2l-word, 1..3-grams) | MB/s | vs Python | of ceiling | peak RSS |', '|---|---:|---:|---:|---:|', ...rows, '',
    '| lmpipe | count stage s | steady MB/s |', '|---|---:|---:|', ...stages,
  ].join('\n');
}

/** bench/train-bench.ts: ours with 1 and N training workers against PyTorch, in the same run. */
async function benchTrainingOrSkip(seconds: number, rounds: number): Promise<TrainingBench | { skipped: string }> {
  try {
    return await benchTraining({ seconds, rounds });
  } catch (error) {
    return { skipped: error instanceof Error ? error.message : String(error) };
  }
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
    const ingest = await benchIngest(corpus.path, { workers: args.workers, python: args.python, repeat: args.repeat, timeoutS: args.timeoutS, log });
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
  if (args.training) {
    log('running the training benchmark (bench/train-bench.ts) ...');
    const training = await benchTrainingOrSkip(args.trainSeconds, args.trainRounds);
    results.training = training;
    console.log(`${'skipped' in training ? `training: skipped (${training.skipped})` : trainingTable(training)}\n`);
  }
  machine.loadAverageEnd = loadavg()[0];
  writeFileAtomic(args.out, [new TextEncoder().encode(JSON.stringify(results, null, 2) + '\n')]);
  log(`results: ${args.out}`);
}

runMain('bench', () => main(process.argv.slice(2)));
