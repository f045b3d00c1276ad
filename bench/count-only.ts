/**
 * A stand-in for `scripts/run-pipeline.ts --until count` while the later stages it imports are
 * missing: the same flags, config resolution and runner, with only the count stage. bench/ingest.ts
 * uses the real CLI whenever it loads and falls back to this file otherwise (and says which).
 *
 *   node --import tsx bench/count-only.ts --input F --out D --tokenizer d2l-word --order 3 --fresh --quiet
 */
import { resolve } from 'node:path';
import { parseArgs } from '../pipeline/cli.ts';
import { resolveConfig } from '../pipeline/config.ts';
import { describeFailure } from '../pipeline/errors.ts';
import { createReporter } from '../pipeline/progress.ts';
import { runPipeline } from '../pipeline/runner.ts';
import { countStage } from '../stages/count.ts';

try {
  const config = resolveConfig(parseArgs(process.argv.slice(2)).settings);
  config.input = config.input.map((path) => (path === '-' ? path : resolve(path)));
  const { db } = await runPipeline(config, { stages: [countStage], reporter: createReporter({ quiet: config.quiet, json: config.json }), signal: new AbortController().signal });
  db.close();
} catch (error) {
  const { line, exitCode } = describeFailure(error);
  console.error(line);
  process.exit(exitCode);
}
