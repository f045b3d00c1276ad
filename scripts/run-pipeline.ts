/**
 * lmpipe: raw text -> n-gram counts in SQLite -> vocabulary -> encoded corpus -> trained RNN -> samples.
 *
 *   npm start                                       # every stage on The Time Machine
 *   npm run pipeline -- --input corpus/ --tokenizer d2l-word --until vocab
 *   npm run pipeline -- status --out runs/timemachine
 *
 * Kill it at any moment and run the same command again: each stage resumes from its checkpoint.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs, describeSettings } from '../pipeline/cli.ts';
import { resolveConfig, type Config } from '../pipeline/config.ts';
import { findCorpus } from '../lib/data-hub.ts';
import { describeFailure, EXIT_CODES, LmpipeError } from '../lib/errors.ts';
import { createReporter } from '../pipeline/progress.ts';
import { runPipeline } from '../pipeline/runner.ts';
import { describeStatus } from '../pipeline/status.ts';
import { formatSummary } from '../pipeline/summary.ts';
import { writeReport } from '../analysis/report/index.ts';
import { countStage } from '../stages/count/index.ts';
import { vocabStage } from '../stages/vocab.ts';
import { encodeStage } from '../stages/encode.ts';
import { trainStage } from '../stages/train/index.ts';
import { sampleStage } from '../stages/sample.ts';
import { readSummary } from '../storage/summary.ts';
import { queries } from '../storage/queries.ts';
import { zipfFit } from '../analysis/zipf-fit.ts';
import { evaluateAfterTraining, type EvalResult } from '../analysis/eval.ts';
import type { Database } from '../storage/driver.ts';

/** The pipeline, in order. read and tokenize stream inside count's workers. */
const STAGES = [countStage, vocabStage, encodeStage, trainStage, sampleStage];

const USAGE = `Usage: npm run pipeline -- [status] [--config lmpipe.json] [flags]

Runs read -> tokenize -> count -> vocab -> encode -> train -> sample into a run directory (--out).
Finished stages whose settings and inputs are unchanged are skipped; a killed run resumes from its
last checkpoint when the same command is run again. 'status' shows each stage's state.

Exit codes: 0 ok, 2 usage, 3 input error, 4 run-directory state (e.g. locked), 130 interrupted.

Settings (flags, or keys of a JSON object given with --config; flags win):
${describeSettings()}`;

/** Input paths made absolute (so the fingerprint does not depend on the working directory); none means The Time Machine. */
async function resolveInputs(config: Config): Promise<string[]> {
  if (config.input.length === 0) return [await findCorpus('time_machine')];
  return config.input.map((path) => (path === '-' ? path : resolve(path)));
}

/** First Ctrl-C: stop at the next safe point. Second: leave at once (the last checkpoint still holds). */
function interruptSignal(): AbortSignal {
  const controller = new AbortController();
  const onSignal = () => {
    if (controller.signal.aborted) process.exit(EXIT_CODES.INTERRUPTED);
    process.stderr.write('\nStopping at the next safe point (Ctrl-C again to quit now)...\n');
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return controller.signal;
}

async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  if (args.help) return void process.stdout.write(USAGE + '\n');
  const config = resolveConfig(args.settings);
  if (args.positionals[0] === 'status') return void process.stdout.write(describeStatus(config.out) + '\n');
  if (args.positionals.length > 0) throw new TypeError(`Unknown command \`${args.positionals[0]}\`; the only command is \`status\``);

  config.input = await resolveInputs(config);
  const reporter = createReporter({ quiet: config.quiet, json: config.json });
  const started = Date.now();
  const { db } = await runPipeline(config, { stages: STAGES, reporter, signal: interruptSignal() });
  try {
    const evaluation = await _evaluate(config, db);
    const report = existsSync(config.out) ? writeReport(config.out, db) : undefined;
    const summary = readSummary(db);
    const spectrum = queries(db).spectrum(1);
    const fit = spectrum.reduce((ranks, row) => ranks + row.types, 0) >= 2 ? zipfFit(spectrum) : undefined;
    const zipf = fit && fit.r2 !== null ? { alpha: fit.alpha, r2: fit.r2 } : undefined;
    const seconds = (Date.now() - started) / 1000;
    reporter.summary(formatSummary(summary, { config, seconds, report: report?.html, zipf, evaluation }), { ...summary, zipf, evaluation, report: report?.html, seconds });
  } finally {
    db.close();
  }
}

/** The n-gram vs RNN table once training is done; a failure is a warning, never the run's failure. */
async function _evaluate(config: Config, db: Database): Promise<EvalResult | undefined> {
  if (config.until !== 'train' && config.until !== 'sample') return undefined;
  try {
    return await evaluateAfterTraining(config.out, db, { backend: config.backend, log: (line) => config.quiet || process.stderr.write(`eval: ${line}\n`) });
  } catch (error) {
    process.stderr.write(`warning: eval: ${describeFailure(error).line}\n`);
    return undefined;
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  const { line, exitCode } = describeFailure(error);
  process.stderr.write(line + '\n');
  if (error instanceof LmpipeError && error.code === 'INTERRUPTED') {
    process.stderr.write(`Resume with: npm run pipeline -- ${process.argv.slice(2).join(' ')}\n`);
  }
  if (exitCode === EXIT_CODES.INTERNAL && error instanceof Error && process.env.LMPIPE_DEBUG) console.error(error.stack);
  process.exit(exitCode);
});
