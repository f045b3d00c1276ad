/**
 * `npm run report -- --out DIR`: rebuilds DIR/report.html, DIR/zipf.svg and DIR/training.svg from
 * DIR/lmpipe.sqlite alone, at any point of a run (parts not run yet say so).
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { DEFAULTS } from '../pipeline/config.ts';
import { LmpipeError } from '../lib/errors.ts';
import { flagLines, parseCommandLine, type FlagSpec } from '../pipeline/args.ts';
import { runMain, userPath } from '../pipeline/run-main.ts';
import { writeReport } from '../analysis/report/index.ts';
import { openRunDatabase } from '../storage/schema.ts';
import { runPaths } from '../storage/run-paths.ts';

const FLAGS: Record<string, FlagSpec> = { out: { kind: 'string', value: 'DIR', help: 'Run directory', default: DEFAULTS.out } };

const USAGE = `Usage: npm run report -- [--out DIR]

Rebuilds the run report from DIR/lmpipe.sqlite:
  DIR/report.html   self-contained page: Zipf plot, top n-grams, vocabulary, training curve,
                    samples, settings (inline CSS and SVG; no scripts, no network)
  DIR/zipf.svg      log rank vs log frequency of 1-, 2- and 3-grams with the fitted Zipf line
  DIR/training.svg  train and validation perplexity per epoch

${flagLines(FLAGS).join('\n')}

Example: npm run report -- --out runs/timemachine`;

function main(argv: string[]): void {
  const { flags, positionals, help } = parseCommandLine(argv, { flags: FLAGS });
  if (help) return void console.log(USAGE);
  if (positionals.length > 0) throw new TypeError(`Unexpected argument \`${positionals[0]}\`; the only flag is --out DIR`);
  const out = flags.out as string;
  const path = userPath(runPaths(out).database);
  if (!existsSync(path)) {
    throw new LmpipeError('STATE', `No run database at ${path}; run \`npm run pipeline -- --out ${out}\` first`, { stage: 'report' });
  }
  const db = openRunDatabase(path, { readonly: true });
  try {
    const { html, svgs } = writeReport(userPath(out), db);
    for (const file of [html, ...svgs]) console.log(resolve(file));
  } finally {
    db.close();
  }
}

runMain('report', () => main(process.argv.slice(2)));
