/**
 * `npm run report -- --out DIR`: rebuilds DIR/report.html, DIR/zipf.svg and DIR/training.svg from
 * DIR/lmpipe.sqlite alone, at any point of a run (parts not run yet say so).
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { DEFAULTS } from '../pipeline/config.ts';
import { describeFailure, LmpipeError } from '../lib/errors.ts';
import { writeReport } from '../analysis/report/index.ts';
import { openRunDatabase } from '../storage/schema.ts';
import { runPaths } from '../storage/run-paths.ts';

const USAGE = `Usage: npm run report -- [--out DIR]

Rebuilds the run report from DIR/lmpipe.sqlite (default DIR: ${DEFAULTS.out}):
  DIR/report.html   self-contained page: Zipf plot, top n-grams, vocabulary, training curve,
                    samples, settings (inline CSS and SVG; no scripts, no network)
  DIR/zipf.svg      log rank vs log frequency of 1-, 2- and 3-grams with the fitted Zipf line
  DIR/training.svg  train and validation perplexity per epoch

Example: npm run report -- --out runs/timemachine`;

function parseArgs(argv: string[]): { out: string; help: boolean } {
  let out = DEFAULTS.out;
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--help' || argv[i] === '-h') help = true;
    else if (argv[i] === '--out') {
      if (i + 1 >= argv.length) throw new TypeError('Expected a run directory after `--out`');
      out = argv[++i];
    } else if (argv[i].startsWith('--out=')) out = argv[i].slice('--out='.length);
    else throw new TypeError(`Unknown argument \`${argv[i]}\`; the only flag is --out DIR`);
  }
  return { out, help };
}

function main(argv: string[]): void {
  const { out, help } = parseArgs(argv);
  if (help) return void console.log(USAGE);
  const path = runPaths(out).database;
  if (!existsSync(path)) {
    throw new LmpipeError('STATE', `No run database at ${path}; run \`npm run pipeline -- --out ${out}\` first`, { stage: 'report' });
  }
  const db = openRunDatabase(path, { readonly: true });
  try {
    const { html, svgs } = writeReport(out, db);
    for (const file of [html, ...svgs]) console.log(resolve(file));
  } finally {
    db.close();
  }
}

try {
  main(process.argv.slice(2));
} catch (error) {
  const { line, exitCode } = describeFailure(error);
  console.error(line);
  process.exit(exitCode);
}
