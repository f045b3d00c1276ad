/**
 * The word tokenizer keeps a literal `<unk>` (WikiText's mark for removed words) as one token, which
 * the vocabulary counts as its own <unk> rather than as the word "unk".
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Interner, tokenize, tokenizeText } from '../../../../stages/ingest/index.ts';
import type { TextChunk } from '../../../../pipeline/types.ts';
import { openRunDatabase } from '../../../../storage/schema.ts';
import { runPaths } from '../../../../storage/run-paths.ts';
import { runStages, tinyConfig } from '../../../helpers/train-fixture.ts';

t.test('word tokenizer: a literal <unk> is one token, also across a chunk boundary', async (t) => {
  t.same(tokenizeText('The <unk> was <unk>, said <unk>.', { tokenizer: 'word', lowercase: true }), ['the', '<unk>', 'was', '<unk>', 'said', '<unk>']);
  t.same(tokenizeText('a < unk > b', { tokenizer: 'word', lowercase: false }), ['a', 'unk', 'b'], 'only the exact mark');
  const interner = new Interner();
  const chunk = (text: string, first: boolean, last: boolean): TextChunk => ({ text, documentStart: first, documentEnd: last, source: '', position: 0 });
  async function* chunks() {
    yield chunk('the river <u', true, false);
    yield chunk('nk> flows', false, true);
  }
  const ids: number[] = [];
  for await (const batch of tokenize(chunks(), { tokenizer: 'word', lowercase: false, interner })) ids.push(...batch.ids);
  t.same(ids.map((id) => interner.token(id)), ['the', 'river', '<unk>', 'flows']);
});

t.test('vocab: a literal <unk> of the corpus is counted as the vocabulary\'s <unk> (id 0)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lmpipe-word-unk-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const config = tinyConfig(dir, 'the <unk> of the <unk> and the river\n', { tokenizer: 'word', until: 'vocab' });
  await runStages(config);
  const db = openRunDatabase(runPaths(config.out).database, { readonly: true });
  const rows = db.prepare('SELECT id, token, count FROM vocab ORDER BY id').all();
  db.close();
  t.match(rows[0], { id: 0, token: '<unk>', count: 2 });
  t.notOk(rows.some((row) => row.token === 'unk'), 'no word "unk"');
  t.equal(rows.filter((row) => row.token === '<unk>').length, 1);
});
