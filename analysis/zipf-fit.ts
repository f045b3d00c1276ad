/**
 * Least-squares fit of Zipf's law, log n_i = -α·log i + c, where n_i is the count of the i-th most
 * frequent n-gram (d2l section 8.3). Ranks are ordinal: tied counts get consecutive ranks.
 *
 *   zipfFit([{ count: 4, types: 1 }, { count: 1, types: 3 }])   // the counts 4, 1, 1, 1
 *
 * The input is the count spectrum (how many n-grams have each count, counts descending), so a
 * table of 10M n-grams arrives as a few thousand rows; the ranks themselves are walked in a loop.
 */

import type { SpectrumRow } from '../storage/queries.ts';

export type { SpectrumRow };

export interface ZipfFitOptions {
  /** First rank fitted (1-based). Default 1. */
  from?: number;
  /**
   * Last rank fitted. Default: the last rank whose count is above 1, because the n-grams seen once
   * (often half of all types) share one count, and their arbitrary ranks form a flat tail that
   * drags α down; when that leaves fewer than 2 ranks, the last rank.
   */
  to?: number;
}

export interface ZipfFit {
  alpha: number;
  c: number;
  /** Coefficient of determination; null when every fitted count is equal. */
  r2: number | null;
  points: number;
  from: number;
  to: number;
  /** Number of ranks available (distinct n-grams). */
  ranks: number;
}

function defaultTo(spectrum: readonly SpectrumRow[], ranks: number): number {
  const aboveOne = spectrum.filter((row) => row.count > 1).reduce((sum, row) => sum + row.types, 0);
  return aboveOne >= 2 ? aboveOne : ranks;
}

export function zipfFit(spectrum: readonly SpectrumRow[], options: ZipfFitOptions = {}): ZipfFit {
  const ranks = spectrum.reduce((sum, row) => sum + row.types, 0);
  const { from = 1, to = defaultTo(spectrum, ranks) } = { ...options };
  if (!Number.isInteger(from) || from < 1) throw new RangeError(`Expected \`--from\` to be an integer of at least 1, got \`${from}\``);
  if (!Number.isInteger(to) || to < from + 1 || to > ranks) {
    throw new RangeError(`Expected \`--to\` to be an integer from ${from + 1} to ${ranks} (the number of ranks), got \`${to}\``);
  }
  // Welford-style running means and co-moments: stable where plain sums of squares over millions
  // of points would cancel.
  let points = 0, meanX = 0, meanY = 0, sxx = 0, sxy = 0, syy = 0;
  let rank = 0;
  for (const { count, types } of spectrum) {
    if (rank >= to) break;
    const y = Math.log(count);
    const first = Math.max(rank + 1, from);
    const last = Math.min(rank + types, to);
    for (let i = first; i <= last; i++) {
      const x = Math.log(i);
      points++;
      const dx = x - meanX;
      const dy = y - meanY;
      meanX += dx / points;
      meanY += dy / points;
      sxx += dx * (x - meanX);
      sxy += dx * (y - meanY);
      syy += dy * (y - meanY);
    }
    rank += types;
  }
  const slope = sxy / sxx;
  return {
    alpha: -slope,
    c: meanY - slope * meanX,
    r2: syy === 0 ? null : Math.min(1, (sxy * sxy) / (sxx * syy)),
    points,
    from,
    to,
    ranks,
  };
}
