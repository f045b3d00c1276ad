/** The summary printed at the end of a run: what was counted, learned and generated, and where it is. */
import type { RunSummary } from '../storage/summary.ts';
import type { Config } from './config.ts';
import { formatDuration } from './progress.ts';
import { runPaths } from '../storage/run-paths.ts';

const int = (value: number) => value.toLocaleString('en-US');
const ppl = (value: number | undefined) => (value === undefined ? '?' : value.toFixed(2));

export interface SummaryContext {
  config: Config;
  seconds: number;
  report?: string;
  /** Zipf fit of the unigram counts, when computed. */
  zipf?: { alpha: number; r2: number };
  /** The n-gram vs RNN table (analysis/eval.ts), when computed. */
  evaluation?: { rows: { model: string; perplexity: number }[] };
}

export function formatSummary(summary: RunSummary, context: SummaryContext): string {
  const { config } = context;
  const lines = [`lmpipe: ${config.out} (${formatDuration(context.seconds)})`];
  const row = (label: string, text: string) => lines.push(`  ${label.padEnd(9)} ${text}`);
  if (summary.tokens > 0) {
    row('corpus', `${int(summary.tokens)} tokens, ${int(summary.types)} distinct (${config.tokenizer})`);
    row('n-grams', summary.distinct.map(({ n, rows }) => `${n}: ${int(rows)}`).join('  ') + ' distinct');
  }
  if (context.zipf) row('zipf', `alpha ${context.zipf.alpha.toFixed(3)} (R² ${context.zipf.r2.toFixed(3)}) on unigram counts`);
  if (summary.vocabSize > 0) row('vocab', `${int(summary.vocabSize)} entries (min-freq ${config.minFreq})`);
  const { firstEpoch: first, lastEpoch: last } = summary;
  if (first && last) {
    row(
      'training',
      `${config.cell}, ${config.layers}x${config.hidden} hidden, epochs ${first.epoch}..${last.epoch} on ${summary.backend ?? '?'}: ` +
        `train ppl ${ppl(first.train)} -> ${ppl(last.train)}, ` +
        (last.valid === undefined ? 'no validation split' : `valid ppl ${ppl(first.valid)} -> ${ppl(last.valid)}`) +
        (last.tokensPerSecond ? `, ${int(Math.round(last.tokensPerSecond))} tokens/s` : ''),
    );
  }
  if (summary.sample) row('sample', JSON.stringify(summary.sample.text));
  if (context.evaluation) {
    const shown = context.evaluation.rows.filter((r) => ['laplace-3', 'kn-3', 'kn-5'].includes(r.model) || !/^(laplace|kn)-/.test(r.model));
    row('eval', `valid ppl ${shown.map((r) => `${r.model} ${ppl(r.perplexity)}`).join(', ')} (same tokens; npm run eval)`);
  }
  row('database', `${runPaths(config.out).database}  (try: npm run query -- top --n 2 --out ${config.out})`);
  if (context.report) row('report', context.report);
  return lines.join('\n');
}
