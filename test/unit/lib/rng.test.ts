import t from 'tap';
import { spawnSync } from 'node:child_process';
import { Rng } from '../../../lib/rng.ts';

const draws = (rng: Rng, n: number, draw: (rng: Rng) => number) => Array.from({ length: n }, () => draw(rng));

/** Pearson's chi-square statistic of observed counts against a uniform expectation. */
function chiSquare(counts: number[]): number {
  const total = counts.reduce((sum, count) => sum + count, 0);
  const expected = total / counts.length;
  return counts.reduce((sum, count) => sum + (count - expected) ** 2 / expected, 0);
}

t.test('Rng is deterministic per seed and differs across seeds', async (t) => {
  t.same(draws(new Rng(7), 100, (r) => r.nextUint32()), draws(new Rng(7), 100, (r) => r.nextUint32()));
  t.notSame(draws(new Rng(7), 10, (r) => r.nextUint32()), draws(new Rng(8), 10, (r) => r.nextUint32()));
  t.notSame(draws(new Rng(1), 10, (r) => r.nextUint32()), draws(new Rng(2 ** 32 + 1), 10, (r) => r.nextUint32()));
  t.ok(draws(new Rng(0), 1000, (r) => r.nextUint32()).every((x) => Number.isInteger(x) && x >= 0 && x < 2 ** 32));
});

const noPython = spawnSync('python3', ['--version']).status !== 0 && 'python3 is not installed';

t.test('Rng.nextUint32() matches an independent Python sfc32 + splitmix32 on big integers', { skip: noPython }, async (t) => {
  // Written from the algorithm's definition with arbitrary-precision ints masked to 32 bits.
  const script = `
import sys
M = 0xffffffff
def mix(x):
    x = ((x ^ (x >> 16)) * 0x85ebca6b) & M
    x = ((x ^ (x >> 13)) * 0xc2b2ae35) & M
    return x ^ (x >> 16)
seed = int(sys.argv[1])
z = mix(seed >> 32) ^ (seed & M)
words = []
for _ in range(3):
    z = (z + 0x9e3779b9) & M
    words.append(mix(z))
a, b, c, d = words[0], words[1], words[2], 1
out = []
for i in range(12 + 20):
    t = (a + b + d) & M
    d = (d + 1) & M
    a = b ^ (b >> 9)
    b = (c + (c << 3)) & M
    c = ((c << 21) | (c >> 11)) & M
    c = (c + t) & M
    if i >= 12: out.append(t)
print(" ".join(map(str, out)))
`;
  for (const seed of [0, 42, 2 ** 32 - 1, 2 ** 40 + 12345]) {
    const result = spawnSync('python3', ['-c', script, String(seed)], { encoding: 'utf8' });
    t.equal(result.status, 0, result.stderr);
    t.same(draws(new Rng(seed), 20, (r) => r.nextUint32()), result.stdout.trim().split(' ').map(Number), `seed ${seed}`);
  }
});

t.test('Rng.state() round-trips through JSON mid-stream and continues identically', async (t) => {
  const rng = new Rng(123);
  draws(rng, 37, (r) => r.nextUint32());
  rng.normal();
  const restored = new Rng(JSON.parse(JSON.stringify(rng.state())));
  const sequence = (r: Rng) => [
    ...draws(r, 5, (x) => x.nextUint32()),
    ...draws(r, 5, (x) => x.nextFloat()),
    ...draws(r, 5, (x) => x.int(-3, 1000)),
    ...draws(r, 5, (x) => x.normal()),
    ...r.shuffle(Int32Array.from({ length: 50 }, (_, i) => i)),
  ];
  t.same(sequence(restored), sequence(rng));
  t.same(restored.state(), rng.state());
});

t.test('Rng rejects bad seeds and states', async (t) => {
  t.throws(() => new Rng(1.5), RangeError);
  t.throws(() => new Rng(Number.NaN), RangeError);
  t.throws(() => new Rng({ algorithm: 'sfc32', words: [1, 2, 3] } as never), TypeError);
  t.throws(() => new Rng({ algorithm: 'sfc32', words: [1, 2, 3, 2 ** 32] }), TypeError);
  t.throws(() => new Rng(1).int(5, 4), RangeError);
  t.throws(() => new Rng(1).int(0, 2 ** 32), RangeError);
});

t.test('Rng.nextFloat() lies in [0, 1) with mean 1/2', async (t) => {
  const values = draws(new Rng(5), 20000, (r) => r.nextFloat());
  t.ok(values.every((x) => x >= 0 && x < 1));
  const mean = values.reduce((s, x) => s + x, 0) / values.length;
  t.ok(Math.abs(mean - 0.5) < 0.01, `mean ${mean}`);
});

t.test('Rng.int() is uniform over [lo, hi] (chi-square) and unbiased for ranges near 2^32', async (t) => {
  const counts = new Array(10).fill(0);
  for (const x of draws(new Rng(11), 6000, (r) => r.int(3, 12))) counts[x - 3]++;
  t.equal(counts.reduce((s, c) => s + c, 0), 6000, 'every draw inside [3, 12]');
  // 9 degrees of freedom: P(chi2 > 27.9) = 0.001.
  t.ok(chiSquare(counts) < 27.9, `chi-square ${chiSquare(counts)} of ${counts}`);
  // range = 3 * 2^30: plain modulo would put half the draws in the lowest third instead of a third.
  const range = 3 * 2 ** 30;
  const low = draws(new Rng(12), 3000, (r) => r.int(0, range - 1)).filter((x) => x < 2 ** 30).length / 3000;
  t.ok(Math.abs(low - 1 / 3) < 0.04, `share of the lowest third ${low}`);
});

t.test('Rng.shuffle() returns a permutation in place, each order equally likely', async (t) => {
  const array = Int32Array.from({ length: 1000 }, (_, i) => i);
  const shuffled = new Rng(3).shuffle(array);
  t.equal(shuffled, array, 'in place');
  t.same(Array.from(array).sort((a, b) => a - b), Array.from({ length: 1000 }, (_, i) => i));
  t.notSame(Array.from(array.subarray(0, 20)), Array.from({ length: 20 }, (_, i) => i));
  const rng = new Rng(4);
  const counts = new Map<string, number>();
  for (let i = 0; i < 6000; i++) {
    const key = rng.shuffle(['a', 'b', 'c']).join('');
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  t.equal(counts.size, 6);
  // 5 degrees of freedom: P(chi2 > 20.5) = 0.001.
  t.ok(chiSquare([...counts.values()]) < 20.5, `chi-square of ${[...counts.entries()]}`);
});

t.test('Rng.normal() has mean 0 and variance 1', async (t) => {
  const values = draws(new Rng(9), 20000, (r) => r.normal());
  const mean = values.reduce((s, x) => s + x, 0) / values.length;
  const variance = values.reduce((s, x) => s + (x - mean) ** 2, 0) / (values.length - 1);
  t.ok(Math.abs(mean) < 0.03, `mean ${mean}`);
  t.ok(Math.abs(variance - 1) < 0.05, `variance ${variance}`);
  t.ok(values.every(Number.isFinite));
});

t.test('Rng.fork() gives stable independent streams and leaves the parent untouched', async (t) => {
  const parent = new Rng(42);
  const before = parent.state();
  const init = draws(parent.fork('init'), 10, (r) => r.nextUint32());
  t.same(parent.state(), before, 'fork does not advance the parent');
  t.same(draws(parent.fork('init'), 10, (r) => r.nextUint32()), init, 'same label, same stream');
  t.notSame(draws(parent.fork('batches'), 10, (r) => r.nextUint32()), init);
  t.notSame(draws(parent.fork(1), 10, (r) => r.nextUint32()), draws(parent.fork(2), 10, (r) => r.nextUint32()));
  t.notSame(draws(new Rng(42), 10, (r) => r.nextUint32()), init, 'differs from the parent stream');
  t.notSame(draws(new Rng(43).fork('init'), 10, (r) => r.nextUint32()), init, 'depends on the parent state');
});
