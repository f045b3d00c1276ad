import t from 'tap';
import { PassThrough } from 'node:stream';
import { createReporter, formatDuration, progressLine } from '../../../pipeline/progress.ts';

const capture = () => {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk) => (text += chunk));
  return { stream, read: () => text };
};

t.test('progressLine() shows amount, rate and ETA', async (t) => {
  t.equal(progressLine('count', { done: 50e6, total: 100e6, unit: 'bytes' }, 10, 0), 'count   50.0 MB / 100.0 MB  5.00 MB/s  ETA 10s');
  t.equal(formatDuration(125), '2m05s');
});

t.test('createReporter() plain, quiet and JSON modes', async (t) => {
  const plain = capture();
  const out = capture();
  const reporter = createReporter({ err: plain.stream, out: out.stream, plainEvery: 0 });
  reporter.stage('count', 'start');
  reporter.progress('count', { done: 1e6, total: 2e6, unit: 'bytes' });
  reporter.progress('train', { done: 1, unit: 'epochs', message: 'epoch 1: ppl 9' });
  t.match(plain.read(), /count: started\ncount   1\.00 MB \/ 2\.00 MB\ntrain: epoch 1: ppl 9\n/);

  const quiet = capture();
  const silent = createReporter({ quiet: true, err: quiet.stream, out: capture().stream });
  silent.stage('count', 'start');
  silent.progress('count', { done: 1, unit: 'bytes', message: 'x' });
  t.equal(quiet.read(), '');

  const json = capture();
  const machine = createReporter({ json: true, err: capture().stream, out: json.stream });
  machine.stage('count', 'skip');
  machine.progress('count', { done: 5, total: 10, unit: 'rows' });
  machine.summary('ignored', { tokens: 3 });
  const events = json.read().trim().split('\n').map((line) => JSON.parse(line));
  t.same(events.map((e) => e.type), ['stage', 'progress', 'summary']);
  t.match(events[1], { stage: 'count', done: 5, total: 10, unit: 'rows' });
  t.equal(events[2].tokens, 3);
});

t.test('createReporter() on a terminal: rate over the recent window, ETA of the whole stage, the stage\'s detail', async (t) => {
  const err = Object.assign(capture().stream, { isTTY: true, columns: 200 });
  let text = '';
  err.on('data', (chunk) => (text += chunk));
  let now = 0;
  const reporter = createReporter({ err, out: capture().stream, now: () => now });
  const step = (at: number, done: number) => {
    now = at * 1000;
    text = '';
    reporter.progress('train', { done, total: 1000, unit: 'steps', detail: 'epoch 2/10  loss 2.314' });
    return text.replace('\r\x1b[2K', '');
  };
  step(0, 0);
  step(20, 100); // a slow start: 5 steps/s
  step(25, 200);
  // The last 10 s ran at 20 steps/s: (300 − 100) / (30 − 20); 700 steps are left.
  t.equal(step(30, 300), 'train   300 steps / 1,000 steps  20 steps/s  ETA 35s  epoch 2/10  loss 2.314');
});
