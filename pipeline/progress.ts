/**
 * Progress on long work. On a terminal: one line redrawn in place (done, rate, ETA, the stage's
 * detail). Not a terminal: plain lines, at most one every few seconds plus every line a stage asks
 * to show. The rate is measured over the last RATE_WINDOW_MS, so a slow start (worker start-up, JIT,
 * the first epoch's validation) does not drag the ETA for the rest of the stage.
 * --quiet: nothing. --json: one JSON event per line on stdout, for machines.
 */
import type { StageEvent } from './types.ts';

export interface Reporter {
  stage(name: string, state: 'start' | 'skip' | 'done' | 'redo', note?: string): void;
  progress(name: string, event: StageEvent): void;
  log(message: string, stage?: string): void;
  /** Final output: human text, or one JSON event. */
  summary(text: string, data: Record<string, unknown>): void;
}

export interface ReporterOptions {
  quiet?: boolean;
  json?: boolean;
  err?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  out?: NodeJS.WritableStream;
  /** Seconds between plain (non-terminal) progress lines. */
  plainEvery?: number;
  /** The clock, in milliseconds (a stand-in in tests). */
  now?: () => number;
}

const RATE_WINDOW_MS = 10_000;

const UNIT_SCALE: Record<StageEvent['unit'], [number, string]> = {
  bytes: [1e6, 'MB'],
  tokens: [1, 'tokens'],
  steps: [1, 'steps'],
  epochs: [1, 'epochs'],
  rows: [1, 'rows'],
};

export function formatAmount(value: number, unit: StageEvent['unit']): string {
  const [scale, label] = UNIT_SCALE[unit];
  const scaled = value / scale;
  const digits = scale === 1 ? 0 : scaled < 10 ? 2 : 1;
  return `${scaled.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })} ${label}`;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)}s`;
  const minutes = Math.floor(seconds / 60);
  return minutes < 60 ? `${minutes}m${String(Math.round(seconds % 60)).padStart(2, '0')}s` : `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`;
}

/** "count  12.40 MB / 100.0 MB  8.1 MB/s  ETA 10.8s" */
export function progressLine(name: string, event: StageEvent, elapsedSeconds: number, startDone: number): string {
  const rate = (event.done - startDone) / Math.max(elapsedSeconds, 1e-9);
  const parts = [name.padEnd(6), formatAmount(event.done, event.unit)];
  if (event.total !== undefined) parts[1] += ` / ${formatAmount(event.total, event.unit)}`;
  if (elapsedSeconds > 0.5 && rate > 0) {
    parts.push(`${formatAmount(rate, event.unit)}/s`);
    if (event.total !== undefined) parts.push(`ETA ${formatDuration((event.total - event.done) / rate)}`);
  }
  if (event.detail) parts.push(event.detail);
  return parts.join('  ');
}

export function createReporter(options: ReporterOptions = {}): Reporter {
  const err = options.err ?? process.stderr;
  const out = options.out ?? process.stdout;
  const tty = Boolean((err as { isTTY?: boolean }).isTTY) && !options.json;
  const plainEvery = (options.plainEvery ?? 5) * 1000;
  const clock = options.now ?? Date.now;
  const started = new Map<string, { at: number; done: number }>();
  const lastDone = new Map<string, number>();
  /** Recent (time, done) samples per stage and unit; the first is the last one before the window. */
  const recent = new Map<string, { at: number; done: number }[]>();
  let lastPlain = 0;
  let drawn = false;
  const emit = (event: Record<string, unknown>) => out.write(JSON.stringify({ time: new Date().toISOString(), ...event }) + '\n');
  const clear = () => {
    if (drawn) err.write('\r\x1b[2K');
    drawn = false;
  };
  const say = (line: string) => {
    if (options.quiet) return;
    clear();
    err.write(line + '\n');
  };

  return {
    stage(name, state, note) {
      if (state === 'start' || state === 'redo') for (const key of started.keys()) if (key.startsWith(`${name}/`)) started.delete(key);
      if (options.json) return void emit({ type: 'stage', stage: name, state, note });
      const verbs = { start: 'started', skip: 'up to date, skipped', done: 'done', redo: 'redo' };
      say(`${name}: ${verbs[state]}${note ? ` (${note})` : ''}`);
    },
    progress(name, event) {
      const now = clock();
      // Rates are measured per stage and unit from the first event, restarting when `done` goes
      // back (a per-epoch step counter starting a new epoch).
      const key = `${name}/${event.unit}`;
      const last = lastDone.get(key);
      if (!started.has(key) || (last !== undefined && event.done < last)) {
        started.set(key, { at: now, done: event.done });
        recent.set(key, []);
      }
      lastDone.set(key, event.done);
      const samples = recent.get(key)!;
      samples.push({ at: now, done: event.done });
      while (samples.length > 2 && now - samples[1].at >= RATE_WINDOW_MS) samples.shift();
      const origin = started.get(key)!;
      const elapsed = (now - origin.at) / 1000;
      if (options.json) return void emit({ type: 'progress', stage: name, ...event, elapsed });
      if (options.quiet) return;
      if (event.message) return say(`${name}: ${event.message}`);
      const line = progressLine(name, event, (now - samples[0].at) / 1000, samples[0].done);
      if (tty) {
        err.write('\r\x1b[2K' + line.slice(0, Math.max(20, ((err as { columns?: number }).columns ?? 100) - 1)));
        drawn = true;
      } else if (now - lastPlain >= plainEvery) {
        lastPlain = now;
        say(line);
      }
    },
    log(message, stage) {
      if (options.json) return void emit({ type: 'log', stage, message });
      say(stage ? `${stage}: ${message}` : message);
    },
    summary(text, data) {
      if (options.json) return void emit({ type: 'summary', ...data });
      clear();
      if (!options.quiet) out.write(text + '\n');
    },
  };
}
