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
import { parseArgs, describeSettings } from '../pipeline/cli.ts';
import { resolveConfig, type Config } from '../pipeline/config.ts';
import { findCorpus } from '../lib/data-hub.ts';
import { createReporter } from '../pipeline/progress.ts';
import { runPipeline } from '../pipeline/runner.ts';
import { runMain, userDir, userPath, type MainContext } from '../pipeline/run-main.ts';
import { describeStatus, readStatus } from '../pipeline/status.ts';
import { formatSummary } from '../pipeline/summary.ts';
import { writeReport } from '../analysis/report/index.ts';
import { zipfFit } from '../analysis/zipf-fit.ts';
import { STAGES } from '../stages/index.ts';
import { readSummary } from '../storage/summary.ts';
import { queries } from '../storage/queries.ts';
import { evaluateAfterTraining, type EvalResult } from '../analysis/eval.ts';
import type { Database } from '../storage/driver.ts';
import { describeFailure } from '../lib/errors.ts';

const USAGE = `Usage: npm run pipeline -- [status] [--config lmpipe.json] [flags]

Runs read -> tokenize -> count -> vocab -> encode -> train -> sample into a run directory (--out).
Finished stages whose settings and inputs are unchanged are skipped; a killed run resumes from its
last checkpoint when the same command is run again. 'status' shows each stage's state.

Exit codes: 0 ok, 2 usage, 3 input error, 4 run-directory state (e.g. locked), 130 interrupted.

Settings (flags, or keys of a JSON object given with --config; flags win):
${describeSettings()}`;

/**
 * Input paths made absolute against the user's directory (so the fingerprint does not depend on the
 * working directory); none means The Time Machine.
 */
async function resolveInputs(config: Config): Promise<string[]> {
  if (config.input.length === 0) return [await findCorpus('time_machine')];
  return config.input.map(userPath);
}

async function main(argv: string[], { signal }: MainContext): Promise<void> {
  const args = parseArgs(argv);
  if (args.help) return void process.stdout.write(USAGE + '\n');
  const config = resolveConfig(args.settings);
  config.out = userDir(config.out);
  if (args.positionals[0] === 'status' && args.positionals.length === 1) {
    const status = config.json ? JSON.stringify({ dir: config.out, stages: readStatus(config.out) ?? null }) : describeStatus(config.out);
    return void process.stdout.write(status + '\n');
  }
  if (args.positionals.length > 0) {
    throw new TypeError(`Unexpected argument \`${args.positionals.at(-1)}\`; the only command is \`status\`, and lists follow their flag (--input a.txt b.txt)`);
  }

  // d2l's prefix for d2l's corpus; other corpora warm up on their own text (the sample stage's default).
  if (config.input.length === 0 && config.prefix === '') config.prefix = 'time traveller';
  config.input = await resolveInputs(config);
  const reporter = createReporter({ quiet: config.quiet, json: config.json });
  const started = Date.now();
  const { db } = await runPipeline(config, { stages: STAGES, reporter, signal });
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

runMain('pipeline', (context) => main(process.argv.slice(2), context), {
  interrupted: () => `Resume with: npm run pipeline -- ${process.argv.slice(2).join(' ')}`,
});
