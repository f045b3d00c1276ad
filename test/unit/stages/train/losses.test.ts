import t from 'tap';
import * as tf from '@tensorflow/tfjs-core';
import { backend } from '../../../../stages/train/backend.ts';
import { pendingLosses } from '../../../../stages/train/_losses.ts';
import { Rng } from '../../../../lib/rng.ts';

await backend('cpu');

t.test('pendingLosses() reads waiting losses in one readback and adds loss·tokens to the running sums', async (t) => {
  const rng = new Rng(3);
  const steps = Array.from({ length: 70 }, () => ({ loss: Math.fround(rng.normal() + 4), tokens: rng.int(1, 50) }));
  const sums = { epochLossSum: 0.125, epochTokens: 7, epochSeconds: 0 };
  const losses = pendingLosses(sums);
  const backendReads = tf.backend() as unknown as { read(...args: unknown[]): unknown };
  const read = backendReads.read;
  let reads = 0;
  backendReads.read = (...args) => (reads++, read.apply(backendReads, args));
  t.teardown(() => void (backendReads.read = read));
  const before = tf.memory().numTensors;
  const last = [];
  for (const [i, step] of steps.entries()) {
    losses.add(tf.scalar(step.loss), step.tokens);
    if (losses.full || i === steps.length - 1) last.push(await losses.read());
  }
  t.same(last, [steps[63].loss, steps[69].loss], 'a read is forced at 64 waiting losses; each read gives the latest');
  t.equal(reads, 2, 'one readback per read');
  // The trainer's old per-step sum, as an independent loop.
  let expected = 0.125;
  for (const step of steps) expected += step.loss * step.tokens;
  t.equal(sums.epochLossSum, expected, 'the float64 sum of loss·tokens over every step, added to what was there');
  t.equal(sums.epochTokens, 7 + steps.reduce((n, step) => n + step.tokens, 0));
  t.ok(sums.epochSeconds >= 0);
  t.equal(tf.memory().numTensors, before, 'read losses are freed');
  losses.add(tf.scalar(1), 1);
  losses.dispose();
  t.equal(tf.memory().numTensors, before, 'dispose frees the unread ones');
  t.ok(Number.isNaN(await pendingLosses({ epochLossSum: 0, epochTokens: 0 }).read()), 'nothing read yet: NaN');
});
