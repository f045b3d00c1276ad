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
import { benchTraining, trainingTable, type TrainingBench } from '../bench/train-bench.ts';
import { writeFileAtomic } from '../lib/checkpoint.ts';
import { describeFailure } from '../lib/errors.ts';

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

interface Args {
  sizeMb: number;
  workers: number[];
  python: boolean;
  training: boolean;
  ingest: boolean;
  scaling: boolean;
  scalingRepeat: number;
  out: string;
  trainSeconds: number;
  trainRounds: number;
  repeat: number;
  timeoutS: number;
  help: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { sizeMb: 100, workers: [1, 2], python: true, training: true, ingest: true, scaling: true, scalingRepeat: 3, out: '', trainSeconds: 10, trainRounds: 2, repeat: 1, timeoutS: 1800, help: false };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new TypeError(`Expected a value after \`${flag}\``);
      return argv[++i];
    };
    if (flag === '--help' || flag === '-h') args.help = true;
    else if (flag === '--size') args.sizeMb = Number(value());
    else if (flag === '--workers') args.workers = value().split(',').map(Number);
    else if (flag === '--out') args.out = value();
    else if (flag === '--train-seconds') args.trainSeconds = Number(value());
    else if (flag === '--train-rounds') args.trainRounds = Number(value());
    else if (flag === '--repeat') args.repeat = Number(value());
    else if (flag === '--timeout') args.timeoutS = Number(value());
    else if (flag === '--no-python') args.python = false;
    else if (flag === '--no-training') args.training = false;
    else if (flag === '--no-ingest') args.ingest = false;
    else if (flag === '--no-scaling') args.scaling = false;
    else if (flag === '--scaling-repeat') args.scalingRepeat = Number(value());
    else throw new TypeError(`Unknown flag \`${flag}\`; see --help`);
  }
  if (!(args.sizeMb > 0 && args.sizeMb <= 10000)) throw new TypeError(`Expected \`--size\` to be a number of MB from 0 to 10000, got \`${args.sizeMb}\``);
  if (!args.workers.every((w) => Number.isInteger(w) && w >= 1 && w <= 256)) {
    throw new TypeError(`Expected \`--workers\` to be a comma-separated list of integers from 1 to 256, got \`${args.workers.join(',')}\``);
  }
  if (!(Number.isInteger(args.repeat) && args.repeat >= 1)) throw new TypeError(`Expected \`--repeat\` to be an integer of at least 1, got \`${args.repeat}\``);
  if (!(Number.isInteger(args.scalingRepeat) && args.scalingRepeat >= 1)) {
    throw new TypeError(`Expected \`--scaling-repeat\` to be an integer of at least 1, got \`${args.scalingRepeat}\``);
  }
  args.out ||= args.sizeMb === 100 ? join(ROOT, 'bench/results.json') : join(ROOT, `.cache/bench/results-${args.sizeMb}mb.json`);
  return args;
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
async function benchTrainingIfPresent(seconds: number, rounds: number): Promise<TrainingBench | { skipped: string }> {
  try {
    return await benchTraining({ seconds, rounds });
  } catch (error) {
    return { skipped: error instanceof Error ? error.message : String(error) };
  }
}

async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  if (args.help) return void console.log(USAGE);
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
    const training = await benchTrainingIfPresent(args.trainSeconds, args.trainRounds);
    results.training = training;
    console.log(`${'skipped' in training ? `training: skipped (${training.skipped})` : trainingTable(training)}\n`);
  }
  machine.loadAverageEnd = loadavg()[0];
  writeFileAtomic(args.out, [new TextEncoder().encode(JSON.stringify(results, null, 2) + '\n')]);
  log(`results: ${args.out}`);
}

main(process.argv.slice(2)).catch((error) => {
  const { line, exitCode } = describeFailure(error);
  console.error(line);
  process.exit(exitCode);
});
