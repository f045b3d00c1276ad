/**
 * `npm run generate` flags beyond d2l: --top-k / --top-p / --allow-unk reach the sampler, and --save
 * writes the text to the run's samples table as the sample stage would.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadSamples } from '../../storage/metrics.ts';
import { runPaths } from '../../storage/run-paths.ts';
import { openRunDatabase } from '../../storage/schema.ts';
import { fixedModel } from '../helpers/fixed-model.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

t.test('generate --top-k 1 --save --json: the most likely token, saved to the samples table', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lmpipe-generate-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  fixedModel(dir, [0.3, 0.1, 0.15, 0.25, 0.2]); // <unk> is the most likely, then b
  const run = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/generate.ts', '--out', dir, '--prefix', 'a', '--length', '8',
    '--temperature', '1', '--top-k', '1', '--seed', '3', '--save', '--json', '--backend', 'cpu'], { cwd: root, encoding: 'utf8' });
  t.equal(run.status, 0, run.stderr);
  const result = JSON.parse(run.stdout);
  t.match(result, { text: 'a' + 'b'.repeat(8), strategy: 'temperature 1, top-k 1, seed 3' }, 'top-k 1 of the tokens that are text');
  const db = openRunDatabase(runPaths(dir).database, { readonly: true });
  t.match(loadSamples(db), [{ run: 'fixed', prefix: 'a', strategy: result.strategy, text: result.text }]);
  db.close();
  const withUnk = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/generate.ts', '--out', dir, '--prefix', 'a', '--length', '3',
    '--allow-unk', '--backend', 'cpu'], { cwd: root, encoding: 'utf8' });
  t.equal(withUnk.stdout, 'a<unk><unk><unk>\n', '--allow-unk lets greedy pick <unk>');
});
