/** Rank arithmetic for log-log charts, read off a count spectrum without expanding it. */
import type { SpectrumRow } from '../zipf-fit.ts';

/** The count at each rank in `ranks` (1-based, ascending), read off the spectrum. */
export function countsAtRanks(spectrum: readonly SpectrumRow[], ranks: number[]): [number, number][] {
  const out: [number, number][] = [];
  let row = 0;
  let last = spectrum[0]?.types ?? 0; // highest rank covered by spectrum[0..row]
  for (const rank of ranks) {
    while (row < spectrum.length - 1 && rank > last) last += spectrum[++row].types;
    if (rank <= last) out.push([rank, spectrum[row].count]);
  }
  return out;
}

/** About `perDecade` integer ranks per factor of ten from 1 to `max`, always including 1 and `max`. */
export function logSpacedRanks(max: number, perDecade = 24): number[] {
  const ranks = new Set<number>();
  if (max < 1) return [];
  const steps = Math.ceil(Math.log10(max) * perDecade);
  for (let i = 0; i <= steps; i++) ranks.add(Math.min(max, Math.round(10 ** (i / perDecade))));
  ranks.add(max);
  return [...ranks].sort((a, b) => a - b);
}
