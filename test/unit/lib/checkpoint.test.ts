import t from 'tap';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readCheckpoint, readCheckpointRecord, writeCheckpoint, writeFileAtomic } from '../../../lib/checkpoint.ts';

t.test('writeCheckpoint and readCheckpoint round-trip the record and float32 values bit for bit', async (t) => {
  const dir = t.testdir(); // removed when the test ends
  const path = join(dir, 'checkpoints', 'train.ckpt');
  const odd = Float32Array.of(-0, Number.MIN_VALUE, 3.4028234663852886e38, Number.NaN, Infinity, 1 / 3);
  const record = { step: 12, lr: 0.25, history: [{ epoch: 1, loss: Math.PI }], rng: { words: [1, 2, 3, 4294967295] } };
  writeCheckpoint(path, record, { 'param/a': { shape: [2, 3], values: odd }, 'param/empty': { shape: [0], values: new Float32Array(0) } });
  const read = readCheckpoint(path)!;
  t.same(read.record, record);
  t.same(read.tensors['param/a'].shape, [2, 3]);
  t.same(Buffer.from(read.tensors['param/a'].values.buffer), Buffer.from(odd.buffer), 'same bytes, NaN and -0 included');
  t.equal(read.tensors['param/empty'].values.length, 0);
  t.same(readdirSync(join(dir, 'checkpoints')), ['train.ckpt'], 'no temporary file left behind');
  t.equal(readCheckpoint(join(dir, 'none.ckpt')), undefined);
  t.same(readCheckpointRecord(path), record, 'readCheckpointRecord: the same record from the header alone');
  t.equal(readCheckpointRecord(join(dir, 'none.ckpt')), undefined);
});

t.test('readCheckpoint refuses damaged files with a STATE error that says how to start over', async (t) => {
  const dir = t.testdir(); // removed when the test ends
  const path = join(dir, 'train.ckpt');
  writeCheckpoint(path, { step: 1 }, { w: { shape: [4], values: Float32Array.of(1, 2, 3, 4) } });
  const good = readFileSync(path);
  const flipped = Buffer.from(good);
  flipped[flipped.length - 2] ^= 1;
  const cases: [string, Buffer, RegExp][] = [
    ['a flipped payload bit', flipped, /values that do not match their sha256/],
    ['a truncated file', good.subarray(0, 20), /truncated file/],
    ['another file', Buffer.from('{"not": "a checkpoint"}'), /another kind of file/],
  ];
  for (const [what, bytes, message] of cases) {
    writeFileSync(path, bytes);
    t.throws(() => readCheckpoint(path), { name: 'LmpipeError', code: 'STATE', message }, what);
    t.throws(() => readCheckpoint(path), { message: /--from train/ });
    if (what !== 'a flipped payload bit') t.throws(() => readCheckpointRecord(path), { code: 'STATE', message }, `readCheckpointRecord: ${what}`);
  }
});

t.test('writeFileAtomic replaces the whole file', async (t) => {
  const dir = t.testdir(); // removed when the test ends
  const path = join(dir, 'f.bin');
  writeFileAtomic(path, [new Uint8Array(1000).fill(7)]);
  writeFileAtomic(path, [Uint8Array.of(1, 2), Uint8Array.of(3)]);
  t.same([...readFileSync(path)], [1, 2, 3]);
  t.same(readdirSync(dir), ['f.bin']);
});
