import t from 'tap';
import { zipfFit, type SpectrumRow } from '../../../analysis/zipf-fit.ts';

/** Textbook least squares on explicit points, with plain sums (fine at this size). */
function direct(counts: number[], from: number, to: number) {
  const xs: number[] = [];
  const ys: number[] = [];
  for (let i = from; i <= to; i++) {
    xs.push(Math.log(i));
    ys.push(Math.log(counts[i - 1]));
  }
  const k = xs.length;
  const mx = xs.reduce((s, x) => s + x, 0) / k;
  const my = ys.reduce((s, y) => s + y, 0) / k;
  const slope = xs.reduce((s, x, i) => s + (x - mx) * (ys[i] - my), 0) / xs.reduce((s, x) => s + (x - mx) ** 2, 0);
  const c = my - slope * mx;
  const residual = ys.reduce((s, y, i) => s + (y - slope * xs[i] - c) ** 2, 0);
  const spread = ys.reduce((s, y) => s + (y - my) ** 2, 0);
  return { alpha: -slope, c, r2: 1 - residual / spread };
}

const spectrumOf = (counts: number[]): SpectrumRow[] => {
  const rows: SpectrumRow[] = [];
  for (const count of counts) {
    if (rows.at(-1)?.count === count) rows.at(-1)!.types++;
    else rows.push({ count, types: 1 });
  }
  return rows;
};

t.test('zipfFit() recovers the exponent of exact power-law counts with R² = 1', async (t) => {
  // 27720 = lcm(1..12), so 27720 / i is an exact integer count for every rank.
  const counts = Array.from({ length: 12 }, (_, i) => 27720 / (i + 1));
  const fit = zipfFit(spectrumOf(counts));
  t.ok(Math.abs(fit.alpha - 1) < 1e-12, `alpha ${fit.alpha}`);
  t.ok(Math.abs(fit.c - Math.log(27720)) < 1e-10);
  t.ok(Math.abs(fit.r2! - 1) < 1e-12);
  t.same([fit.from, fit.to, fit.points, fit.ranks], [1, 12, 12, 12]);
});

t.test('zipfFit() matches direct least squares on counts with ties, over any range', async (t) => {
  let seed = 3;
  const random = () => ((seed = (seed * 48271) % 2147483647) / 2147483647);
  const counts = Array.from({ length: 400 }, (_, i) => Math.max(1, Math.round(5000 / (i + 1) ** 1.1 * (0.8 + 0.4 * random()))))
    .sort((x, y) => y - x);
  const spectrum = spectrumOf(counts);
  t.ok(spectrum.length < counts.length, 'the counts have ties');
  const lastAboveOne = counts.filter((count) => count > 1).length;
  for (const [from, to] of [[1, lastAboveOne], [1, 400], [5, 50], [37, 38]]) {
    const fit = zipfFit(spectrum, { from, to });
    const expected = direct(counts, from, to);
    t.ok(Math.abs(fit.alpha - expected.alpha) < 1e-9, `alpha over ${from}..${to}`);
    t.ok(Math.abs(fit.c - expected.c) < 1e-9, `c over ${from}..${to}`);
    if (fit.r2 !== null) t.ok(Math.abs(fit.r2 - expected.r2) < 1e-9, `R² over ${from}..${to}`);
    t.equal(fit.points, to - from + 1);
  }
  t.equal(zipfFit(spectrum).to, lastAboveOne, 'the default range stops before the counts of 1');
});

t.test('zipfFit() falls back to every rank when fewer than 2 counts exceed 1, and checks its range', async (t) => {
  const fit = zipfFit([{ count: 4, types: 1 }, { count: 1, types: 3 }]);
  t.same([fit.from, fit.to], [1, 4]);
  const expected = direct([4, 1, 1, 1], 1, 4);
  t.ok(Math.abs(fit.alpha - expected.alpha) < 1e-12);
  t.equal(zipfFit([{ count: 3, types: 5 }]).r2, null, 'equal counts: R² is undefined');
  t.throws(() => zipfFit([{ count: 3, types: 5 }], { from: 0 }), { message: 'Expected `--from` to be an integer of at least 1, got `0`' });
  t.throws(() => zipfFit([{ count: 3, types: 5 }], { from: 5 }), { message: 'Expected `--to` to be an integer from 6 to 5 (the number of ranks), got `5`' });
});
