/**
 * Small things a first reader of the report and the summary tripped over: the vocabulary section's
 * count, the meta table's long values, and a run without a validation split.
 */
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeReport } from '../../../../analysis/report/report.ts';
import { resolveConfig } from '../../../../pipeline/config.ts';
import { formatSummary } from '../../../../pipeline/summary.ts';
import { setMeta } from '../../../../storage/stages.ts';
import { buildFixture, d2lWords } from '../../../helpers/report-fixture.ts';

t.test('writeReport() says when the vocabulary is shown whole, and wraps long meta values', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lmpipe-report-wording-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const db = buildFixture(join(dir, 'lmpipe.sqlite'), d2lWords('a b c a b d '.repeat(5)), { vocab: true });
  setMeta(db, 'inputs', JSON.stringify(Array.from({ length: 40 }, (_, i) => `/very/long/path/to/corpus/part-${i}.txt`)));
  writeReport(dir, db);
  db.close();
  const page = readFileSync(join(dir, 'report.html'), 'utf8');
  t.match(page, '<p>all <b>8</b> entries (id, token, count):</p>', '4 reserved and 4 words, all shown');
  t.notMatch(page, /the first 8/);
  t.match(page, '<table class="meta">');
  t.match(page, /table\.meta code\{overflow-wrap:anywhere\}/);
});

t.test('formatSummary() of a run without a validation split says so instead of "?"', async (t) => {
  const config = resolveConfig({ validFrac: 0 });
  const summary = { tokens: 10, types: 3, distinct: [{ n: 1, rows: 3 }], vocabSize: 7, backend: 'cpu',
    firstEpoch: { epoch: 1, train: 9.5 }, lastEpoch: { epoch: 2, train: 7.25, tokensPerSecond: 100 } };
  const text = formatSummary(summary, { config, seconds: 1 });
  t.match(text, 'train ppl 9.50 -> 7.25, no validation split, 100 tokens/s');
  t.notMatch(text, '?');
});

t.test('writeReport() shows a vocabulary of a few dozen entries whole (d2l-char has 31), not cut at 30', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lmpipe-report-wording-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const words = Array.from({ length: 31 }, (_, i) => 'x' + String.fromCharCode(97 + (i % 26)) + (i >= 26 ? 'y' : '')).join(' ');
  const db = buildFixture(join(dir, 'lmpipe.sqlite'), d2lWords(words), { vocab: true });
  writeReport(dir, db);
  db.close();
  const page = readFileSync(join(dir, 'report.html'), 'utf8');
  t.match(page, '<p>all <b>35</b> entries (id, token, count):</p>');
  t.equal([...page.matchAll(/<span class="entry">/g)].length, 35);
});
