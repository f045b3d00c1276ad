/**
 * Input that yields no token fails at the count stage as an input error (exit 3) that says why,
 * instead of an empty corpus that fails later in training.
 */
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXIT_CODES, describeFailure } from '../../../../lib/errors.ts';
import { runStages, tinyConfig } from '../../../helpers/train-fixture.ts';

const countOf = async (t: { teardown(fn: () => void): void }, name: string, content: string, settings = {}) => {
  const dir = mkdtempSync(join(tmpdir(), 'lmpipe-no-tokens-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const config = tinyConfig(dir, '', { until: 'count', ...settings });
  const input = join(dir, name);
  writeFileSync(input, content);
  return runStages({ ...config, input: [input] });
};

t.test('count: empty and whitespace-only input is an input error naming the cause', async (t) => {
  await t.rejects(countOf(t, 'empty.txt', ''), { code: 'INPUT', stage: 'count', file: /empty\.txt$/, message: 'Expected text to count, got empty input (0 bytes)' });
  await t.rejects(countOf(t, 'blank.txt', '  \n\n \t \n', { tokenizer: 'word' }), { code: 'INPUT', message: /got 8 bytes that hold no token of --tokenizer word$/ });
  await t.rejects(countOf(t, 'digits.txt', '1234 5678\n'), { code: 'INPUT', message: /no token of --tokenizer d2l-char \(d2l tokenizers keep only the letters/ });
  const error = await countOf(t, 'blank2.txt', ' ').catch((e: unknown) => e);
  t.equal(describeFailure(error).exitCode, EXIT_CODES.INPUT, 'exit 3');
});

t.test('count: JSON records without --json-field name the fields they have', async (t) => {
  const records = '{"body": "hello world", "title": "x"}\n{"body": "more", "title": "y"}\n';
  await t.rejects(countOf(t, 'recs.jsonl', records), {
    code: 'INPUT',
    message: 'Expected JSON records with a `text` field (--json-field), got 2 records without one; the first one has body (string), title (string)',
  });
  await t.resolves(countOf(t, 'recs.jsonl', records, { jsonField: 'body' }), 'with the right field it counts');
});
