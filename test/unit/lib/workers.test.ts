import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LmpipeError } from '../../../lib/errors.ts';
import type { Shard } from '../../../pipeline/types.ts';
import { workers } from '../../../lib/workers.ts';
import { BufferPool } from '../../../lib/buffer-pool.ts';
import { countShard, transferables } from '../../../stages/count/index.ts';
import { countStage } from '../../../stages/count/index.ts';
import { fileURLToPath } from 'node:url';
import { drain, dumpTables, random, randomText, stageContext } from '../../oracles/count-oracle.ts';

const module = new URL('../../helpers/count-test-worker.ts', import.meta.url);
const shards = (count: number): Shard[] =>
  Array.from({ length: count }, (_, index) => ({
    index, path: '/corpus/a.txt', format: 'text', start: index * 100, end: index * 100 + 100, continuesDocument: index > 0,
  }));
type Echo = { index: number; payload: Int32Array; thread: 'worker' | 'inline'; recycled: number[] };

/** An inline job like the test worker's 'reverse' mode. */
async function inlineEcho({ shard }: { shard: Shard }): Promise<Echo> {
  await new Promise((resolve) => setTimeout(resolve, (10 - (shard.index % 10)) * 15));
  return { index: shard.index, payload: Int32Array.of(shard.index), thread: 'inline', recycled: [] };
}

t.test('workers() yields results in shard order when they finish out of order', async (t) => {
  const seen: number[] = [];
  for await (const result of workers<Echo, Shard>(shards(12), { stage: 'count', workers: 3, module, options: { mode: 'reverse' } })) {
    t.equal(result.payload[0], result.index, 'the transferred payload arrives intact');
    seen.push(result.index);
  }
  t.same(seen, Array.from({ length: 12 }, (_, i) => i));
});

t.test('workers() with inline runs jobs on the calling thread too, in shard order', async (t) => {
  const results = await drain(workers<Echo, Shard>(shards(16), { stage: 'count', workers: 2, module, options: { mode: 'reverse' }, inline: inlineEcho }));
  t.same(results.map((r) => r.index), Array.from({ length: 16 }, (_, i) => i));
  const ran = new Set(results.map((r) => r.thread));
  t.ok(ran.has('inline') && ran.has('worker'), `ran on ${[...ran].join(' and ')}`);
  const alone = await drain(workers<Echo, Shard>(shards(5), { stage: 'count', workers: 1, module, options: { mode: 'reverse' }, inline: inlineEcho }));
  t.same(alone.map((r) => r.thread), new Array(5).fill('inline'), 'one worker with inline: the calling thread only');
});

t.test('workers() transfers recycled buffers to the worker of the next job', async (t) => {
  const recycled: ArrayBuffer[] = [];
  const given = [new ArrayBuffer(1024), new ArrayBuffer(2048)];
  const received: number[] = [];
  for await (const result of workers<Echo, Shard>(shards(8), { stage: 'count', workers: 1, module, options: { mode: 'reverse' }, recycled })) {
    received.push(...result.recycled);
    if (result.index === 0) recycled.push(...given);
  }
  t.same(received.sort(), [1024, 2048], 'each buffer reached a worker once');
  t.ok(given.every((buffer) => buffer.byteLength === 0), 'transferred, not copied');
});

t.test('BufferPool hands out the smallest buffer that fits and skips detached ones', async (t) => {
  const pool = new BufferPool();
  const [small, large] = [new ArrayBuffer(400), new ArrayBuffer(4000)];
  const detached = new ArrayBuffer(800);
  structuredClone(detached, { transfer: [detached] });
  pool.give([large, small, detached, small]);
  t.equal(pool.size, 2, 'a detached buffer and a duplicate are not kept');
  t.equal(pool.take(300), small);
  t.equal(pool.take(5000).byteLength, 5625, 'a fresh one, an eighth bigger, when none fits');
  const view = pool.float64(100);
  t.equal(view.buffer, large, 'a view of the large buffer');
  t.equal(view.length, 100);
});

t.test('BufferPool keeps at most `limit` bytes, the largest buffers that fit first', async (t) => {
  const pool = new BufferPool();
  pool.limit = 5000;
  const [a, b, c, d] = [3000, 2500, 1500, 400].map((bytes) => new ArrayBuffer(bytes));
  pool.give([d, b, a, c]);
  t.equal(pool.size, 3, 'the 2500-byte buffer does not fit beside the 3000-byte one');
  t.equal(pool.take(2000), a, 'the largest is kept');
  t.equal(pool.take(1000), c);
  t.equal(pool.take(100), d);
  t.equal(pool.take(2000).byteLength, 2250, 'the one dropped is not handed out');
  pool.limit = 100;
  pool.give([a]);
  t.equal(pool.size, 0, 'a buffer over the limit is not kept at all');
});

t.test('workers() starts no more than 2 x workers shards (or `ahead`) ahead of a paused consumer', async (t) => {
  for (const { ahead, most } of [{ ahead: undefined, most: 4 }, { ahead: 2, most: 2 }]) {
    const file = join(mkdtempSync(join(tmpdir(), 'lmpipe-workers-')), 'started');
    writeFileSync(file, '');
    const started = () => readFileSync(file, 'utf8').split('\n').filter(Boolean).length;
    let consumed = 0;
    let furthest = 0;
    for await (const _ of workers<Echo, Shard>(shards(30), { stage: 'count', workers: 2, module, options: { mode: 'reverse', file }, ahead })) {
      consumed++;
      if (consumed === 1) await new Promise((resolve) => setTimeout(resolve, 600));
      furthest = Math.max(furthest, started() - consumed);
    }
    t.equal(consumed, 30);
    t.ok(furthest <= most, `ahead ${ahead ?? 'by default'}: at most ${furthest} started beyond those consumed`);
  }
});

t.test('workers() fails a shard loudly when its worker dies twice, naming file and range', async (t) => {
  const error = await drain(workers<Echo, Shard>(shards(6), { stage: 'count', workers: 2, module, options: { mode: 'exit', at: 3 } })).catch((e) => e);
  t.ok(error instanceof LmpipeError, 'an LmpipeError');
  t.match(error, { code: 'INTERNAL', stage: 'count', file: '/corpus/a.txt', position: 'bytes 300-400' });
  t.match(error.message, /died twice on shard 3 \(it exited with code 3\)/);
});

t.test('workers() replaces a worker that died once and retries its shard', async (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'lmpipe-workers-')), 'marker');
  const log: string[] = [];
  const results = await drain(workers<Echo, Shard>(shards(6), { stage: 'count', workers: 2, module, options: { mode: 'exit-once', at: 2, file }, log: (m) => log.push(m) }));
  t.same(results.map((r) => r.index), [0, 1, 2, 3, 4, 5], 'every shard counted once');
  t.match(log, [/died on shard 2 .*retrying/]);
});

t.test('workers() treats an uncaught exception in a worker as a death', async (t) => {
  const error = await drain(workers<Echo, Shard>(shards(4), { stage: 'count', workers: 1, module, options: { mode: 'uncaught', at: 1 } })).catch((e) => e);
  t.match(error, { code: 'INTERNAL', file: '/corpus/a.txt', position: 'bytes 100-200' });
  t.match(error.message, /it threw boom/);
});

t.test('workers() treats an unhandled rejection in a worker as a death', async (t) => {
  const error = await drain(workers<Echo, Shard>(shards(4), { stage: 'count', workers: 1, module, options: { mode: 'reject', at: 2 } })).catch((e) => e);
  t.match(error, { code: 'INTERNAL', file: '/corpus/a.txt', position: 'bytes 200-300' });
  t.match(error.message, /died twice on shard 2 \(it threw rejected\)/);
});

t.test('workers() passes on an error a worker threw, with its code, file and position, without retrying', async (t) => {
  const log: string[] = [];
  const error = await drain(workers<Echo, Shard>(shards(4), { stage: 'count', workers: 2, module, options: { mode: 'throw', at: 1 }, log: (m) => log.push(m) })).catch((e) => e);
  t.ok(error instanceof LmpipeError);
  t.match(error, { code: 'INPUT', stage: 'count', file: '/corpus/a.txt', position: 'byte 7', message: 'Unexpected token' });
  t.same(log, [], 'no retry');
});

t.test('transferables() lists every buffer of a shard result, so none is copied', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lmpipe-workers-'));
  writeFileSync(join(dir, 'a.txt'), 'the time machine, by h g wells\nthe time traveller\n');
  const shard: Shard = { index: 0, path: join(dir, 'a.txt'), format: 'text', start: 0, end: 51, continuesDocument: false };
  const result = await countShard(shard, { tokenizer: 'd2l-word', lowercase: false, jsonField: 'text', order: 3 });
  const arrays = [result.stream, result.head, result.tail, ...result.keys, ...result.counts];
  t.ok([result.stream, result.tail, ...result.keys].every((array) => array.byteLength > 0));
  structuredClone(result, { transfer: transferables(result) });
  t.ok(arrays.every((array) => array.byteLength === 0), 'every array was detached by the transfer');
});

t.test('the count stage with 2 workers fails on malformed JSON with the file named', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lmpipe-workers-'));
  writeFileSync(join(dir, 'a.txt'), 'fine text\n');
  writeFileSync(join(dir, 'b.json'), '[{"text": "ok"}, {"text": oops}]');
  const ctx = stageContext(join(dir, 'run'), { input: [join(dir, 'a.txt'), join(dir, 'b.json')], workers: 2 });
  const error = await drain(countStage.run(ctx)).catch((e) => e);
  ctx.close();
  t.ok(error instanceof LmpipeError, String(error));
  t.match(error, { code: 'INPUT', file: join(dir, 'b.json') });
});

const root = fileURLToPath(new URL('../../..', import.meta.url));
const deno = join(root, 'node_modules', '.bin', 'deno');

t.test('the count stage under Deno (node:worker_threads, node:sqlite) writes what Node writes', { skip: !existsSync(deno) && 'deno is not installed' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lmpipe-workers-'));
  const next = random(4);
  const inputs = [join(dir, 'a.txt'), join(dir, 'b.jsonl')];
  writeFileSync(inputs[0], randomText(next, 1200));
  writeFileSync(inputs[1], Array.from({ length: 5 }, () => JSON.stringify({ text: randomText(next, 20) })).join('\n'));
  const script = fileURLToPath(new URL('../../helpers/count-deno.ts', import.meta.url));
  const run = spawnSync(deno, ['run', '-A', '--config', join(root, 'deno.json'), script, join(dir, 'deno'), '2', 'char', ...inputs], {
    cwd: root, encoding: 'utf8',
  });
  t.equal(run.status, 0, run.stderr);
  t.equal(run.stdout.trim(), 'node:sqlite');
  const node = stageContext(join(dir, 'node'), { input: inputs, tokenizer: 'char', order: 4, workers: 2, shardMb: 0.001 });
  await drain(countStage.run(node));
  const denoRun = stageContext(join(dir, 'deno'), {});
  t.equal(dumpTables(denoRun.db), dumpTables(node.db), 'same tables');
  t.ok(readFileSync(join(dir, 'deno', 'tokens.bin')).equals(readFileSync(join(dir, 'node', 'tokens.bin'))), 'same tokens.bin');
  node.close();
  denoRun.close();
});
