import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { TextChunk } from '../../../../pipeline/types.ts';
import { planShards, read, type ReadReport } from '../../../../stages/ingest/read.ts';
import { collect, random, randomText } from '../../../helpers/tokenize-fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'lmpipe-read-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string | Buffer): string {
  const path = join(dir, name);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, content);
  return path;
}

async function readAll(inputs: string[], options: { shardBytes?: number; jsonField?: string } = {}) {
  const report: ReadReport = { invalidUtf8: 0, skippedRecords: 0 };
  const shards = await planShards(inputs, { shardBytes: options.shardBytes });
  const chunks = await collect(read(shards, { jsonField: options.jsonField, report }));
  return { shards, chunks, report };
}

/** Lines of random length (some far longer than a shard), with multi-byte characters. */
function randomLines(seed: number, lines: number): string {
  const rng = random(seed);
  let text = '';
  for (let k = 0; k < lines; k++) text += randomText(rng, rng() < 0.02 ? 600 : Math.floor(rng() * 30)).replace(/[\r\n\u2028]/g, ' ') + '\n';
  return text + 'no final newline';
}

t.test('planShards() fails on a missing path before any work, naming it', async (t) => {
  const good = file('exists.txt', 'hello\n');
  await t.rejects(planShards([good, join(dir, 'missing.txt'), good]), {
    name: 'LmpipeError',
    code: 'INPUT',
    file: join(dir, 'missing.txt'),
    message: `Expected \`--input\` path \`${join(dir, 'missing.txt')}\` to exist`,
  });
});

t.test('planShards() walks directories in byte-wise sorted order, skipping hidden entries', async (t) => {
  for (const name of ['b.txt', 'a.txt', 'B.txt', '.hidden', '.git/x.txt', 'sub/c.txt', 'sub/A.json', 'é.txt', 'z.jsonl', 'y.ndjson', 'w.gz']) {
    file(join('tree', name), name.endsWith('json') || name.endsWith('jsonl') ? '' : 'x\n');
  }
  symlinkSync('..', join(dir, 'tree/sub/loop')); // a cycle: walked once
  const shards = await planShards([join(dir, 'tree')]);
  t.same(shards.map((s) => s.path.slice(join(dir, 'tree').length + 1)), ['B.txt', 'a.txt', 'b.txt', 'sub/A.json', 'sub/c.txt', 'w.gz', 'y.ndjson', 'z.jsonl', 'é.txt']);
  t.same(shards.map((s) => s.format), ['text', 'text', 'text', 'json', 'text', 'gzip', 'jsonl', 'jsonl', 'text']);
  t.same(shards.map((s) => s.index), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  mkdirSync(join(dir, 'empty/.only-hidden'), { recursive: true });
  await t.rejects(planShards([join(dir, 'empty')]), { code: 'INPUT', message: /^Expected `--input` directory `.*empty` to hold a file/ });
});

t.test('planShards() cuts text right after a newline and read() covers the file exactly', async (t) => {
  const text = randomLines(3, 400);
  const path = file('lines.txt', text);
  const bytes = Buffer.from(text);
  for (const shardBytes of [1, 97, 1000, 5000, bytes.length, bytes.length + 1]) {
    const { shards, chunks, report } = await readAll([path], { shardBytes });
    t.equal(shards[0].start, 0);
    t.equal(shards[shards.length - 1].end, bytes.length);
    for (const [k, shard] of shards.entries()) {
      t.equal(shard.continuesDocument, k > 0);
      if (k > 0) t.equal(shard.start, shards[k - 1].end, 'contiguous');
      if (shard.end === bytes.length) continue;
      t.equal(bytes[shard.end - 1], 10, 'cut right after a newline');
      const first = bytes.indexOf(10, shard.start + shardBytes - 1);
      t.equal(shard.end, first + 1, 'at the first newline at or after the nominal cut');
    }
    t.equal(chunks.map((c) => c.text).join(''), text, `text equal, shardBytes ${shardBytes}`);
    let offset = 0;
    for (const chunk of chunks) {
      if (chunk.position !== offset) t.equal(chunk.position, offset, 'position is the byte offset');
      offset += Buffer.byteLength(chunk.text);
    }
    t.same(chunks.map((c) => c.documentStart).filter(Boolean).length, 1, 'one document start');
    t.ok(chunks[0].documentStart && chunks[chunks.length - 1].documentEnd, 'the first chunk starts, the last ends it');
    t.equal(chunks.filter((c) => c.documentEnd).length, 1, 'one document end');
    t.equal(report.invalidUtf8, 0);
  }
});

t.test('read() yields chunks that end at line ends, and cuts a huge line at a character boundary', async (t) => {
  const line = 'é'.repeat(3_000_000); // 6 MB without a newline
  const text = 'first\n' + 'x'.repeat(2_500_000) + '\n' + line + '\nlast';
  const { chunks, report } = await readAll([file('big.txt', text)]);
  t.ok(chunks.length >= 3);
  t.ok(chunks.slice(0, -1).every((c) => c.text.endsWith('\n') || c.text.endsWith('é')), 'at a line end, or inside the huge line');
  t.ok(chunks.every((c) => Buffer.byteLength(c.text) <= 5 << 20), 'no chunk above MAX_LINE plus one buffer');
  t.ok(chunks.map((c) => c.text).join('') === text, 'text equal');
  t.equal(report.invalidUtf8, 0, 'no character split');
});

t.test('read() refuses a file with a NUL byte, giving its byte offset', async (t) => {
  const text = Buffer.concat([Buffer.from('abc\n'.repeat(700_000)), Buffer.from([0]), Buffer.from('tail\n')]);
  const path = file('nul.txt', text);
  const expected = { name: 'LmpipeError', code: 'INPUT', file: path, position: 'byte 2800000', message: 'Looks like a binary file (NUL byte); lmpipe reads text' };
  await t.rejects(readAll([path]), expected, 'one shard');
  await t.rejects(readAll([path], { shardBytes: 1 << 20 }), expected, 'the NUL in the third shard');
  const json = file('nul.json', Buffer.concat([Buffer.from('[{"text": "a'), Buffer.from([0]), Buffer.from('"}]')]));
  await t.rejects(readAll([json]), { code: 'INPUT', position: 'byte 12' }, 'JSON too');
});

t.test('read() replaces invalid UTF-8 and counts the replaced sequences, not a real U+FFFD', async (t) => {
  // ff | c3 before 'A' | e2 82 before '\n' | ed a0 80 (a surrogate: 3) | f8 = 7; ef bf bd is a real U+FFFD.
  const bad = Buffer.from([0x61, 0xff, 0x62, 0xc3, 0x41, 0xe2, 0x82, 0x0a, 0xed, 0xa0, 0x80, 0xf8, 0xef, 0xbf, 0xbd, 0x0a]);
  const { chunks, report } = await readAll([file('invalid.txt', bad)]);
  t.equal(report.invalidUtf8, 7);
  t.equal(chunks.map((c) => c.text).join(''), 'a\uFFFDb\uFFFDA\uFFFD\n\uFFFD\uFFFD\uFFFD\uFFFD\uFFFD\n');
  // The same sequences straddling the 1 MB read buffers and shard cuts: counted once each.
  const pad = Buffer.from('y'.repeat((1 << 20) - 6) + '\n');
  const big = Buffer.concat([pad, bad, pad, bad, Buffer.from('\uFFFD\uFFFD')]);
  for (const shardBytes of [1 << 30, 1000]) {
    const result = await readAll([file('invalid-big.txt', big)], { shardBytes });
    t.equal(result.report.invalidUtf8, 14, `shardBytes ${shardBytes}`);
  }
});

t.test('read() reports malformed JSON with the byte offset of the error', async (t) => {
  const records = Array.from({ length: 2000 }, (_, k) => `{"text": "récord ${k} — ✓ ${'ab '.repeat(200)}"}`).join(',\n');
  const head = `[${records},\n{"text": "b" `;
  const path = file('bad.json', head + '"c"}]');
  const offset = Buffer.byteLength(head);
  t.ok(offset > 1 << 20, 'the error is past the first read buffer');
  await t.rejects(readAll([path]), { name: 'LmpipeError', code: 'INPUT', file: path, position: `byte ${offset}`, message: /^Malformed JSON: expected ','/ });
  const small = file('small-bad.json', '[{"text": "héllo"},\n {"text": "b" "c"}]');
  await t.rejects(readAll([small]), { position: 'byte 35', message: "Malformed JSON: expected ',' (line 2, column 15)" });
  const truncated = file('truncated.jsonl', '{"text": "a"}\n{"text": "b');
  await t.rejects(readAll([truncated]), { position: 'byte 25', message: /^Malformed JSON: unexpected end of input/ });
});

t.test('read() takes JSON records, selects a dotted field and joins arrays with newlines', async (t) => {
  const poems = file('poems.json', JSON.stringify([
    { title: 'a', paragraphs: ['床前明月光，', '疑是地上霜。'] },
    { title: 'b' },
    { title: 'c', paragraphs: 'one line' },
    { title: 'd', paragraphs: [1, 2] },
    'a bare string is its own text',
  ]));
  const { chunks, report } = await readAll([poems], { jsonField: 'paragraphs' });
  t.same(chunks.map((c) => [c.text, c.position]), [['床前明月光，\n疑是地上霜。', 0], ['one line', 2], ['a bare string is its own text', 4]]);
  t.ok(chunks.every((c) => c.documentStart && c.documentEnd), 'each record is one document');
  t.equal(report.skippedRecords, 2, 'missing and non-string fields are skipped and counted');
  const lines = file('nested.jsonl', '{"meta": {"body": "x"}}\n\n["an array is one record"]\n{"meta": {"body": ["y", "z"]}}\n');
  const nested = await readAll([lines], { jsonField: 'meta.body' });
  t.same(nested.chunks.map((c) => [c.text, c.position]), [['x', 0], ['y\nz', 2]]);
  t.equal(nested.report.skippedRecords, 1);
  const object = file('object.json', '\uFEFF{"text": "one object, one record"}');
  t.same((await readAll([object])).chunks.map((c) => c.text), ['one object, one record'], 'a top-level object (after a BOM)');
});

t.test('read() decompresses gzip, including JSON Lines and concatenated members', async (t) => {
  const text = file('a.txt.gz', Buffer.concat([gzipSync('hello\nwor'), gzipSync('ld\n')]));
  const { shards, chunks } = await readAll([text], { shardBytes: 4 });
  t.equal(shards.length, 1, 'a gzip file is one shard');
  t.equal(chunks.map((c) => c.text).join(''), 'hello\nworld\n');
  const lines = file('b.jsonl.gz', gzipSync('{"text": "one"}\n{"text": "two"}\n'));
  t.same((await readAll([lines])).chunks.map((c) => c.text), ['one', 'two']);
  await t.rejects(readAll([file('c.gz', 'not gzip at all')]), { code: 'INPUT', message: /^Not a valid gzip file/ });
});

t.test('read() reads standard input for -', async (t) => {
  const readUrl = new URL('../../../../stages/ingest/read.ts', import.meta.url).href;
  const script = `import { planShards, read } from ${JSON.stringify(readUrl)};
    const chunks = [];
    for await (const chunk of read(await planShards(['-']))) chunks.push(chunk);
    process.stdout.write(JSON.stringify(chunks));`;
  const input = 'line one\nline two\n'.repeat(100_000);
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { input, encoding: 'utf8', maxBuffer: 1 << 26 });
  t.equal(child.status, 0, child.stderr);
  const chunks = JSON.parse(child.stdout) as TextChunk[];
  t.ok(chunks.map((c) => c.text).join('') === input, 'text equal');
  t.same([chunks[0].source, chunks[0].documentStart, chunks[chunks.length - 1].documentEnd], ['-', true, true]);
});

t.test('read() yields one empty chunk for an empty file, and stops when aborted', async (t) => {
  const { chunks } = await readAll([file('empty.txt', '')]);
  t.same(chunks.map((c) => [c.text, c.documentStart, c.documentEnd]), [['', true, true]]);
  const controller = new AbortController();
  const shards = await planShards([file('abort.txt', 'x\n'.repeat(2_000_000))]);
  const seen: TextChunk[] = [];
  await t.rejects(
    (async () => {
      for await (const chunk of read(shards, { signal: controller.signal })) {
        seen.push(chunk);
        controller.abort();
      }
    })(),
    { code: 'INTERRUPTED' },
  );
  t.ok(seen.length >= 1 && seen.length <= 2, 'stopped within a chunk');
  t.ok(readFileSync(shards[0].path).length === 4_000_000);
});
