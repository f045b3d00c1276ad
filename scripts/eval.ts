/**
 * n-gram vs RNN on the same tokens: Laplace n-grams (1..5), Kneser-Ney (2..5) and the trained RNN,
 * scored on the run's validation split (or a test file), saved in table `evaluations` and shown
 * in the report beside the training curve (analysis/eval.ts says how the units are matched).
 *
 *   npm run eval -- --out runs/timemachine
 *   npm run eval -- --out runs/wt2 --test ../shared/corpora/wikitext-2/test.txt --json
 */
import { existsSync } from 'node:fs';
import { LmpipeError } from '../lib/errors.ts';
import { flagLines, parseCommandLine, type FlagSpec } from '../pipeline/args.ts';
import { BACKENDS, DEFAULTS, type BackendChoice } from '../pipeline/config.ts';
import { acquireLock } from '../pipeline/lock.ts';
import { runMain, userPath } from '../pipeline/run-main.ts';
import { openRunDatabase } from '../storage/schema.ts';
import { runPaths } from '../storage/run-paths.ts';
import { evaluateRun, formatEval } from '../analysis/eval.ts';
import { writeReport } from '../analysis/report/index.ts';

const FLAGS: Record<string, FlagSpec> = {
  out: { kind: 'string', value: 'DIR', help: 'Run directory', default: DEFAULTS.out },
  test: { kind: 'string', value: 'FILE', help: 'Score this file (read as the run read its input) instead of the validation split' },
  backend: {
    kind: 'string', value: 'B', help: BACKENDS.join(' | '), default: 'auto',
    check: (value, flag) => {
      if (!(BACKENDS as readonly string[]).includes(value as string)) {
        throw new TypeError(`Expected \`${flag}\` to be one of ${BACKENDS.join(', ')}, got \`${value}\``);
      }
    },
  },
  json: { kind: 'boolean', help: 'Print the result as JSON', default: false },
};

const USAGE = `Usage: npm run eval -- [--out DIR] [--test FILE] [--backend B] [--json]

Scores Laplace n-gram models (orders 1..5), interpolated modified Kneser-Ney (2..5, as KenLM) and
the RNN trained in DIR on the same tokens: the validation split, or FILE. Every model is trained on
the training split. Saves the table in DIR/lmpipe.sqlite (table evaluations) and rewrites the report.

${flagLines(FLAGS, { width: 14 }).join('\n')}`;

async function main(argv: string[]): Promise<void> {
  const { flags, help } = parseCommandLine(argv, { flags: FLAGS });
  if (help) return void process.stdout.write(USAGE + '\n');
  const dir = userPath(flags.out as string);
  const paths = runPaths(dir);
  const test = flags.test === undefined ? undefined : userPath(flags.test as string);
  if (!existsSync(paths.database)) {
    throw new LmpipeError('STATE', `Expected a run directory holding lmpipe.sqlite, got ${dir}; run \`npm run pipeline -- --out ${dir}\` first`);
  }
  if (test !== undefined && !existsSync(test)) throw new LmpipeError('INPUT', `Expected \`--test\` to name a file, got ${test}: no such file`, { file: test });
  const lock = acquireLock(dir);
  const db = openRunDatabase(paths.database);
  try {
    const log = (line: string) => process.stderr.write(`eval: ${line}\n`);
    const result = await evaluateRun(dir, db, { test, backend: flags.backend as BackendChoice, log });
    const report = writeReport(dir, db);
    process.stdout.write((flags.json ? JSON.stringify({ ...result, report: report.html }, null, 2) : `${formatEval(result, dir)}\nreport: ${report.html}`) + '\n');
  } finally {
    db.close();
    lock.release();
  }
}

runMain('eval', () => main(process.argv.slice(2)));
