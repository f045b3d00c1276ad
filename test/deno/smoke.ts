/**
 * Deno smoke suite (`npm run test:deno`, run by `deno test`): the whole pipeline end to end on a
 * small corpus under Deno, with node:sqlite behind the storage seam and web/Deno workers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openRunDatabase } from '../../storage/schema.ts';
import { bruteForceCounts, writeCorpus } from '../helpers/corpus-fixture.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));

test('the pipeline runs end to end under Deno and counts what a brute-force counter counts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lmpipe-deno-'));
  const inputs = writeCorpus(dir, { files: 2, lines: 120 });
  const out = join(dir, 'run');
  const args = ['run', '-A', join(root, 'scripts/run-pipeline.ts'), '--input', ...inputs, '--out', out,
    '--tokenizer', 'd2l-word', '--order', '3', '--workers', '2', '--shard-mb', '0.002', '--max-tokens', '0',
    '--hidden', '8', '--epochs', '2', '--batch', '2', '--steps', '5', '--prefix', 'the time', '--sample-length', '5', '--quiet'];
  const run = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);

  const db = openRunDatabase(join(out, 'lmpipe.sqlite'), { readonly: true });
  try {
    assert.equal(db.driver, 'node:sqlite');
    const expected = bruteForceCounts(inputs.map((path) => readFileSync(path, 'utf8')), 3);
    const rows = db.prepare('SELECT tokens, count FROM ngram_counts').all();
    const actual = new Map(rows.map((row) => [JSON.parse(row.tokens).join(' '), Number(row.count)]));
    assert.deepEqual(actual, expected);
    const vocabSize = Number(db.prepare('SELECT count(*) AS n FROM vocab').get()!.n);
    assert.equal(vocabSize, 4 + Number(db.prepare('SELECT count(*) AS n FROM ngram1').get()!.n));
    const perplexities = db.prepare("SELECT perplexity FROM metrics WHERE split = 'valid' ORDER BY epoch").all();
    assert.equal(perplexities.length, 2);
    for (const row of perplexities) assert.ok(Number.isFinite(row.perplexity) && row.perplexity > 1);
    const sample = db.prepare('SELECT text FROM samples').get();
    assert.ok(sample && typeof sample.text === 'string');
  } finally {
    db.close();
  }
});
