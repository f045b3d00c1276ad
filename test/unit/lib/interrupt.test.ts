/**
 * lib/interrupt.ts: one Ctrl-C, however many copies of it arrive (the terminal's and a relaying
 * parent's), stops at a safe point; a second, later one quits.
 */
import t from 'tap';
import { EventEmitter } from 'node:events';
import { interruptSignal } from '../../../lib/interrupt.ts';

const turn = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

t.test('interruptSignal() aborts on the first signal and takes copies within the grace period for the same Ctrl-C', async (t) => {
  const target = new EventEmitter();
  let stops = 0;
  let quits = 0;
  const { signal, dispose } = interruptSignal({ target: target as never, graceMs: 20, onStop: () => stops++, onQuit: () => quits++ });
  t.teardown(dispose);
  t.notOk(signal.aborted);
  target.emit('SIGINT'); // the terminal's
  target.emit('SIGINT'); // npm's copy, delivered in the same turn
  target.emit('SIGTERM');
  t.ok(signal.aborted);
  t.equal(stops, 1, 'one stop message');
  t.equal(quits, 0, 'a relayed copy is not a second Ctrl-C');
  await turn(60);
  target.emit('SIGINT');
  t.equal(quits, 1, 'a later Ctrl-C quits');
});

t.test('interruptSignal() still takes a copy delivered after a long synchronous step for the same Ctrl-C', async (t) => {
  const target = new EventEmitter();
  let quits = 0;
  const { dispose } = interruptSignal({ target: target as never, graceMs: 5, onQuit: () => quits++ });
  t.teardown(dispose);
  target.emit('SIGINT');
  // The copy arrives while the loop is blocked past the grace period, and is delivered with I/O.
  setImmediate(() => target.emit('SIGINT'));
  const until = Date.now() + 30;
  while (Date.now() < until); // a training step holding the event loop
  await turn(30);
  t.equal(quits, 0);
});

t.test('interruptSignal() dispose() removes its handlers', async (t) => {
  const target = new EventEmitter();
  const { dispose } = interruptSignal({ target: target as never });
  t.equal(target.listenerCount('SIGINT'), 1);
  dispose();
  t.equal(target.listenerCount('SIGINT') + target.listenerCount('SIGTERM'), 0);
});
