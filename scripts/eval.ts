/**
 * n-gram vs RNN on the same tokens: Laplace n-grams (1..5), Kneser-Ney (2..5) and the trained RNN,
 * scored on the run's validation split (or a test file), saved in table `evaluations` and shown
 * in the report beside the training curve (analysis/eval.ts says how the units are matched).
 *
 *   npm run eval -- --out runs/timemachine
 *   npm run eval -- --out runs/wt2 --test ../shared/corpora/wikitext-2/test.txt --json
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { describeFailure, LmpipeError } from '../lib/errors.ts';
import { DEFAULTS } from '../pipeline/config.ts';
import { acquireLock } from '../pipeline/lock.ts';
import { openRunDatabase } from '../storage/schema.ts';
import { runPaths } from '../storage/run-paths.ts';
import { evaluateRun, formatEval } from '../analysis/eval.ts';
import { writeReport } from '../analysis/report/index.ts';
import { BACKENDS, type BackendChoice } from '../pipeline/config.ts';

const USAGE = `Usage: npm run eval -- [--out DIR] [--test FILE] [--backend B] [--json]

Scores Laplace n-gram models (orders 1..5), interpolated modified Kneser-Ney (2..5, as KenLM) and
the RNN trained in DIR on the same tokens: the validation split, or FILE read and tokenized as the
run's input. Every model is trained on the training split. Saves the table in DIR/lmpipe.sqlite
(table evaluations) and rewrites DIR/report.html.

  --out DIR      run directory (default ${DEFAULTS.out})
  --test FILE    score this file instead of the validation split
  --backend B    ${BACKENDS.join(' | ')} (default auto)
  --json         print the result as JSON`;

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { out: { type: 'string' }, test: { type: 'string' }, backend: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) return void process.stdout.write(USAGE + '\n');
  if (values.backend !== undefined && !(BACKENDS as readonly string[]).includes(values.backend)) {
    throw new TypeError(`Expected \`--backend\` to be one of ${BACKENDS.join(', ')}, got \`${values.backend}\``);
  }
  const dir = values.out ?? DEFAULTS.out;
  const file = runPaths(dir).database;
  if (!existsSync(file)) throw new LmpipeError('STATE', `Expected a run directory holding lmpipe.sqlite, got ${dir}; run \`npm run pipeline -- --out ${dir}\` first`);
  if (values.test !== undefined && !existsSync(values.test)) throw new LmpipeError('INPUT', `Expected \`--test\` to name a file, got ${values.test}: no such file`, { file: values.test });
  const lock = acquireLock(dir);
  const db = openRunDatabase(file);
  try {
    const log = (line: string) => process.stderr.write(`eval: ${line}\n`);
    const result = await evaluateRun(dir, db, { test: values.test, backend: (values.backend ?? 'auto') as BackendChoice, log });
    const report = writeReport(dir, db);
    process.stdout.write((values.json ? JSON.stringify({ ...result, report: report.html }, null, 2) : `${formatEval(result, dir)}\nreport: ${report.html}`) + '\n');
  } finally {
    db.close();
    lock.release();
  }
}

main(process.argv.slice(2)).catch((error) => {
  const { line, exitCode } = describeFailure(error);
  process.stderr.write(line + '\n');
  process.exitCode = exitCode;
});
