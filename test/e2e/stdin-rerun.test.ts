/**
 * Standard input cannot be fingerprinted before it is read, so a run on `--input -` reads it anew
 * every time and says so, rather than skipping count and keeping an old corpus.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openRunDatabase } from '../../storage/schema.ts';
import { runPaths } from '../../storage/run-paths.ts';
import { getMeta } from '../../storage/stages.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

t.test('--input - counts what standard input holds on every run, and says why', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'lmpipe-stdin-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const run = (text: string) => spawnSync(process.execPath, ['--import', 'tsx', 'scripts/run-pipeline.ts', '--input', '-', '--out', out,
    '--tokenizer', 'd2l-word', '--until', 'count'], { cwd: root, input: text, encoding: 'utf8' });
  const meta = () => {
    const db = openRunDatabase(runPaths(out).database, { readonly: true });
    const found = { tokens: getMeta(db, 'tokens'), bytes: getMeta(db, 'bytes') };
    db.close();
    return found;
  };
  const first = 'the time machine\n';
  t.equal(run(first).status, 0);
  t.same(meta(), { tokens: '3', bytes: String(first.length) }, 'the bytes read from stdin are counted too');
  const second = run('an other text of six words\n');
  t.equal(second.status, 0);
  t.match(second.stderr, 'count: redo (standard input is read anew on every run)');
  t.same(meta(), { tokens: '6', bytes: '27' });
});
