/**
 * The ingest benchmark: MB/s and peak RSS of read + tokenize (d2l-word) + count 1..3-grams + SQLite
 * write through lmpipe's own CLI, against, on the same file in the same run, the d2l-style Python
 * `collections.Counter` script (bench/counter.py, also writing SQLite) and a plain read-and-split in
 * Node (bench/read-split.ts, the ceiling). Each tool runs as its own process, timed from spawn to
 * exit, so start-up costs count for everyone; peak RSS comes from `/usr/bin/time -v` when present,
 * else from polling the child's /proc VmHWM.
 *
 * Every tool reports its token count (and Python and lmpipe their distinct n-grams per order); a
 * mismatch is recorded as `agrees: false` and printed, so a fast wrong answer cannot pass unseen.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openDatabase } from '../storage/driver.ts';
import { runPaths } from '../storage/run-paths.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const TIME = '/usr/bin/time';

export interface Measurement {
  name: string;
  command: string;
  seconds: number;
  mbPerS: number;
  peakRssMb: number | null;
  tokens: number | null;
  distinct: number[] | null;
  /** Same tokens (and distinct n-grams where reported) as the Python baseline. */
  agrees: boolean | null;
  exitCode: number;
  details?: Record<string, unknown>;
}

export interface IngestOptions {
  workers?: number[];
  python?: boolean;
  order?: number;
  /** lmpipe's --memory-mb (default: the pipeline's own). */
  memoryMb?: number;
  /** Keep lmpipe's run directories here (for bench/sample-check.sh) instead of deleting them. */
  keep?: string;
  /** Runs per tool; the fastest counts (the machine may be shared), all are recorded. */
  repeat?: number;
  /** A run still going after this many seconds is killed and recorded as failed (exit 137). */
  timeoutS?: number;
  log?: (line: string) => void;
}

export async function benchIngest(file: string, options: IngestOptions = {}): Promise<Measurement[]> {
  const { workers = [1, 2], python = true, order = 3, repeat = 1, timeoutS = 1800, log = () => {} } = { ...options };
  const bytes = readFileSync(file).length;
  const scratch = mkdtempSync(join(tmpdir(), 'lmpipe-bench-'));
  const node = [process.execPath, '--import', 'tsx'];
  const results: Measurement[] = [];
  try {
    const run = async (name: string, argv: string[], parse: (stdout: string) => Partial<Measurement>) => {
      log(`running ${name} ...`);
      const r = await _fastest(argv, repeat, timeoutS);
      const m: Measurement = {
        name, command: argv.map((a) => (a === process.execPath ? 'node' : a.replace(scratch, '$TMP').replace(ROOT, ''))).join(' '),
        seconds: r.seconds, mbPerS: bytes / 1e6 / r.seconds, peakRssMb: r.peakRssMb,
        tokens: null, distinct: null, agrees: null, exitCode: r.exitCode,
        ...(r.exitCode === 0 ? parse(r.stdout) : { details: { stderr: r.stderr.slice(-2000) } }),
      };
      m.details = { ...m.details, allSeconds: r.allSeconds, allCpuSeconds: r.allCpuSeconds, loadAverage: r.loadAverage };
      log(`  ${m.seconds.toFixed(1)} s (all: ${r.allSeconds.map((x) => x.toFixed(1)).join(', ')}; CPU ${r.allCpuSeconds.map((x) => x?.toFixed(1)).join(', ')}), ` +
        `${m.mbPerS.toFixed(2)} MB/s, peak RSS ${m.peakRssMb ?? '?'} MB, load ${r.loadAverage.map((x) => x.toFixed(1)).join(', ')}${r.exitCode ? `, exit ${r.exitCode}` : ''}`);
      results.push(m);
      return m;
    };
    await run('Node read + split (ceiling)', [...node, join(ROOT, 'bench/read-split.ts'), file], (out) => ({ tokens: JSON.parse(out).tokens }));
    for (const w of workers) {
      const out = join(options.keep ?? scratch, `lmpipe-w${w}`);
      const argv = [...node, join(ROOT, 'scripts/run-pipeline.ts'), '--input', file, '--out', out, '--tokenizer', 'd2l-word',
        '--order', String(order), '--until', 'count', '--fresh', '--json', '--workers', String(w),
        ...(options.memoryMb === undefined ? [] : ['--memory-mb', String(options.memoryMb)])];
      await run(`lmpipe, ${w} worker${w > 1 ? 's' : ''}`, argv, (stdout) => ({
        ..._lmpipeCounts(runPaths(out).database, order), details: { ...countStageTimes(stdout) },
      }));
      if (!options.keep) rmSync(out, { recursive: true, force: true });
    }
    if (python) {
      const argv = ['python3', join(ROOT, 'bench/counter.py'), file, '--order', String(order), '--sqlite', join(scratch, 'python.sqlite')];
      const m = await run('Python Counter + sqlite3', argv, (out) => {
        const r = JSON.parse(out);
        return { tokens: r.tokens, distinct: r.distinct, details: { countSeconds: r.count_s, writeSeconds: r.write_s, python: r.python } };
      });
      if (m.exitCode === 0) _checkAgreement(results, m);
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return results;
}

/** Marks each measurement as agreeing (or not) with the Python baseline's tokens and distinct counts. */
function _checkAgreement(results: Measurement[], baseline: Measurement): void {
  for (const m of results) {
    if (m.exitCode !== 0 || m.tokens === null) continue;
    m.agrees = m.tokens === baseline.tokens && (m.distinct === null || JSON.stringify(m.distinct) === JSON.stringify(baseline.distinct));
  }
}

export interface CountStageTimes {
  /** The count stage from start to done: start-up of the process and of tfjs excluded. */
  countStageSeconds: number;
  /**
   * MB/s between 25% and 90% of the input bytes: counting once warmed up, before the final write of
   * the counts to SQLite and the indexes (the progress events come one per merged shard).
   */
  steadyMbPerS: number;
  /** Seconds in each phase of the count stage (count, reduce, write), from the progress events. */
  phaseSeconds: Record<string, number>;
}

/** Reads the count stage's times from the JSON events of `run-pipeline --json`. */
export function countStageTimes(stdout: string): CountStageTimes {
  const events = stdout.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line));
  const count = events.filter((event) => event.stage === 'count');
  const at = (state: string) => Date.parse(count.find((event) => event.type === 'stage' && event.state === state)?.time);
  const progress = count.filter((event) => event.type === 'progress' && event.total > 0 && event.unit === 'bytes');
  const first = progress.find((event) => event.done >= 0.25 * event.total);
  const last = progress.find((event) => event.done >= 0.9 * event.total);
  const steady = first && last && last.elapsed > first.elapsed ? (last.done - first.done) / 1e6 / (last.elapsed - first.elapsed) : NaN;
  const phaseSeconds: Record<string, number> = {};
  const starts = count.filter((event, i, all) => event.type === 'progress' && event.data?.phase && event.data.phase !== all[i - 1]?.data?.phase);
  starts.forEach((event, i) => {
    const end = i + 1 < starts.length ? Date.parse(starts[i + 1].time) : at('done');
    phaseSeconds[event.data.phase] = (phaseSeconds[event.data.phase] ?? 0) + (end - Date.parse(event.time)) / 1000;
  });
  return { countStageSeconds: (at('done') - at('start')) / 1000, steadyMbPerS: steady, phaseSeconds };
}

function _lmpipeCounts(path: string, order: number): Partial<Measurement> {
  if (!existsSync(path)) return { details: { error: `no database at ${path}` } };
  const db = openDatabase(path, { readonly: true });
  try {
    const distinct = Array.from({ length: order }, (_, i) => Number(db.prepare(`SELECT count(*) AS c FROM ngram${i + 1}`).get()!.c));
    const tokens = Number(db.prepare('SELECT coalesce(sum(count), 0) AS t FROM ngram1').get()!.t);
    return { tokens, distinct };
  } finally {
    db.close();
  }
}

interface Runs {
  allSeconds: number[];
  allCpuSeconds: Array<number | null>;
  /** The 1-minute load average as each run started. */
  loadAverage: number[];
}

/** Best of `repeat` runs (peak RSS: the highest of all); stops at the first failure. */
async function _fastest(argv: string[], repeat: number, timeoutS: number): Promise<RunResult & Runs> {
  const runs: Runs = { allSeconds: [], allCpuSeconds: [], loadAverage: [] };
  let best: RunResult | undefined;
  for (let i = 0; i < repeat; i++) {
    runs.loadAverage.push(loadavg()[0]);
    const r = await measure(argv, timeoutS);
    runs.allSeconds.push(r.seconds);
    runs.allCpuSeconds.push(r.cpuSeconds);
    if (r.exitCode !== 0) return { ...r, ...runs };
    if (!best || r.seconds < best.seconds) best = { ...r, peakRssMb: Math.max(r.peakRssMb ?? 0, best?.peakRssMb ?? 0) || null };
    else best.peakRssMb = Math.max(r.peakRssMb ?? 0, best.peakRssMb ?? 0) || null;
  }
  return { ...best!, ...runs };
}

export interface RunResult {
  seconds: number;
  cpuSeconds: number | null;
  peakRssMb: number | null;
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs argv to completion (or timeoutS); wall seconds from spawn to exit, peak RSS of the child in MB. */
export async function measure(argv: string[], timeoutS: number): Promise<RunResult> {
  const timeFile = join(tmpdir(), `lmpipe-bench-time-${process.pid}-${Date.now()}.txt`);
  const useTime = existsSync(TIME);
  const [cmd, ...args] = useTime ? [TIME, '-v', '-o', timeFile, ...argv] : argv;
  const started = performance.now();
  // Its own process group, so that a timeout kills the tool and not only /usr/bin/time.
  const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), timeoutS * 1000);
  const stdout: string[] = [];
  const stderr: string[] = [];
  child.stdout.on('data', (c) => stdout.push(String(c)));
  child.stderr.on('data', (c) => stderr.push(String(c)));
  let polled = 0;
  // Without /usr/bin/time: the kernel's high-water mark of the child, read until it exits.
  const poll = useTime ? undefined : setInterval(() => (polled = Math.max(polled, _vmHwmKb(child.pid))), 50);
  const exitCode = await new Promise<number>((resolve) => child.on('close', (code, signal) => resolve(code ?? (signal ? 137 : 1))));
  clearTimeout(timer);
  const seconds = (performance.now() - started) / 1000;
  if (poll) clearInterval(poll);
  let peakKb: number | null = polled || null;
  let cpuSeconds: number | null = null;
  if (useTime && existsSync(timeFile)) {
    const report = readFileSync(timeFile, 'utf8');
    const match = /Maximum resident set size \(kbytes\): (\d+)/.exec(report);
    peakKb = match ? Number(match[1]) : null;
    // CPU seconds (user + system, all threads): what the work cost, whatever else ran on the machine.
    const user = /User time \(seconds\): ([\d.]+)/.exec(report);
    const system = /System time \(seconds\): ([\d.]+)/.exec(report);
    cpuSeconds = user && system ? Number(user[1]) + Number(system[1]) : null;
    rmSync(timeFile, { force: true });
  }
  return { seconds, cpuSeconds, peakRssMb: peakKb === null ? null : Math.round(peakKb / 1024), exitCode, stdout: stdout.join(''), stderr: stderr.join('') };
}

function _vmHwmKb(pid: number | undefined): number {
  try {
    return Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0; // the child has exited between two polls
  }
}
