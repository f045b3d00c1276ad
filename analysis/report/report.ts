/**
 * The run report: DIR/report.html (self-contained: inline CSS and SVG, no scripts, no network)
 * plus DIR/zipf.svg and DIR/training.svg, rebuilt from the run database alone. Parts of the run
 * that have not happened yet (no training, no samples) say "not run yet" instead of failing.
 *
 *   const db = openRunDatabase('runs/tm/lmpipe.sqlite', { readonly: true });
 *   writeReport('runs/tm', db);   // -> { html: 'runs/tm/report.html', svgs: [...] }
 */
import type { Database } from '../../storage/driver.ts';
import { writeFileAtomic } from '../../lib/checkpoint.ts';
import { escapeXml as esc, svgChart, type ChartSeries } from './_svg.ts';
import { gatherReportData, type ReportData } from '../../storage/report-data.ts';
import { countsAtRanks, logSpacedRanks } from './_ranks.ts';
import { zipfFit, type ZipfFit } from '../zipf-fit.ts';
import { EVAL_UNITS } from '../../storage/evaluations.ts';
import { runPaths } from '../../storage/run-paths.ts';

const ORDER_NAMES = ['unigrams', 'bigrams', 'trigrams'];
const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728'];
const NOT_RUN = 'not run yet';

/** Writes report.html, zipf.svg and training.svg into `dir` (each via temp file + rename). */
export function writeReport(dir: string, db: Database): { html: string; svgs: string[] } {
  const data = gatherReportData(db);
  const zipf = _zipfChart(data);
  const training = _trainingChart(data);
  const paths = runPaths(dir);
  const svgs = [_writeAtomic(paths.zipfSvg, zipf.svg), _writeAtomic(paths.trainingSvg, training)];
  const html = _writeAtomic(paths.report, _page(dir, data, zipf, training));
  return { html, svgs };
}

function _writeAtomic(path: string, text: string): string {
  writeFileAtomic(path, [new TextEncoder().encode(text)]);
  return path;
}

function _zipfChart(data: ReportData): { svg: string; fit: ZipfFit | undefined } {
  const profiles = data.profiles.filter((p) => p.n <= 3);
  const series: ChartSeries[] = profiles.map((p, i) => ({
    label: `${ORDER_NAMES[p.n - 1]} (${_num(p.distinct)})`,
    points: countsAtRanks(p.spectrum, logSpacedRanks(p.distinct)),
    style: 'dots',
    color: COLORS[i],
  }));
  // The query tool's fit and defaults (`npm run query -- zipf --n 1`), so both print the same α.
  const unigrams = profiles[0]?.n === 1 && profiles[0].distinct >= 2 ? profiles[0] : undefined;
  const fit = unigrams ? zipfFit(unigrams.spectrum) : undefined;
  const notes: string[] = [];
  if (fit) {
    const line = [fit.from, fit.to].map((rank) => [rank, Math.exp(fit.c) * rank ** -fit.alpha] as const);
    series.push({ label: `fit α = ${fit.alpha.toFixed(3)}`, points: line, style: 'line', color: '#555', dashed: true });
    const r2 = fit.r2 === null ? '' : `, R² = ${fit.r2.toFixed(3)}`;
    notes.push(`unigrams: ln n = −${fit.alpha.toFixed(3)} · ln rank + ${fit.c.toFixed(2)}${r2}, least squares over ranks ${_num(fit.from)} to ${_num(fit.to)}`);
  }
  const svg = svgChart(series, {
    id: 'zipf-chart', title: 'Zipf plot: frequency by rank', xLabel: 'rank (log)', yLabel: 'frequency (log)',
    xLog: true, yLog: true, notes, empty: `counts ${NOT_RUN}`,
  });
  return { svg, fit };
}

function _trainingChart(data: ReportData): string {
  const epochs = data.training?.epochs ?? [];
  const split = (name: 'train' | 'valid', color: string): ChartSeries => {
    const points = epochs.flatMap((e) => (e[name] ? [[e.epoch, e[name]!.perplexity] as const] : []));
    return { label: `${name} perplexity`, points, style: points.length > 1 ? 'line' : 'dots', color, dashed: name === 'valid' };
  };
  const series = [split('train', COLORS[0]), split('valid', COLORS[1])];
  const values = series.flatMap((s) => s.points.map(([, y]) => y));
  const speed = _medianTokensPerS(data);
  return svgChart(series, {
    id: 'training-chart', title: `Training curve${data.training ? ` (${data.training.run})` : ''}`,
    xLabel: 'epoch', yLabel: 'perplexity', xInteger: true, yLog: Math.max(...values) / Math.min(...values) > 20,
    notes: speed === undefined ? [] : [`median ${Math.round(speed).toLocaleString('en-US')} tokens/s (training)`],
    empty: `training ${NOT_RUN}`,
  });
}

function _medianTokensPerS(data: ReportData): number | undefined {
  const values = (data.training?.epochs ?? []).flatMap((e) => (e.train?.tokensPerS ? [e.train.tokensPerS] : [])).sort((a, b) => a - b);
  return values.length === 0 ? undefined : values[Math.floor(values.length / 2)];
}

const CSS = `
body{font:15px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
.cards{display:flex;flex-wrap:wrap;gap:.8em}.card{border:1px solid #ddd;border-radius:6px;padding:.5em .9em;min-width:9em}
.card b{display:block;font-size:1.3em}.card b.missing{font-size:1em;font-weight:normal}.card span{color:#666;font-size:.85em}
table{border-collapse:collapse;margin:.6em 0}td,th{border-bottom:1px solid #eee;padding:.2em .7em;text-align:left;vertical-align:top}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}.tops{display:flex;flex-wrap:wrap;gap:1.5em}
code.tok{background:#f3f3f3;border-radius:3px;padding:0 .25em;margin-right:.15em}
pre{background:#f7f7f7;padding:.7em;overflow:auto;max-height:26em}.missing{color:#888;font-style:italic}
table.meta{table-layout:fixed;width:100%}table.meta td:first-child{width:12em}table.meta code{overflow-wrap:anywhere}
svg{max-width:100%;height:auto}.side{display:flex;flex-wrap:wrap;gap:1.5em;align-items:flex-start}.side>svg{flex:1 1 560px}.side>div{flex:0 1 22em}caption{text-align:left;font-weight:bold}.vocab{line-height:2}.entry{white-space:nowrap;margin-right:.6em}sub{color:#888}blockquote{margin:.4em 0;padding:.3em .8em;border-left:3px solid #ccc;white-space:pre-wrap}
`;

function _page(dir: string, data: ReportData, zipf: { svg: string; fit: ZipfFit | undefined }, training: string): string {
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>lmpipe report: ${esc(dir)}</title><style>${CSS}</style></head><body>`,
    `<h1>lmpipe report</h1><p>Run directory <code>${esc(dir)}</code></p>`,
    _cards(data, zipf.fit),
    '<h2 id="corpus">Corpus: Zipf plot</h2>', data.profiles.length > 0 ? zipf.svg : '', _orderTable(data),
    '<h2 id="top">Top n-grams</h2>', _topTables(data),
    '<h2 id="vocab">Vocabulary</h2>', _vocab(data),
    '<h2 id="training">Training</h2>', `<div class="side">${data.training ? training : ''}${_evaluations(data)}</div>`, _epochTable(data),
    '<h2 id="samples">Samples</h2>', _samples(data),
    '<h2 id="settings">Settings</h2>', _settings(data),
    '</body></html>',
  ].join('\n');
}

const _num = (v: number) => v.toLocaleString('en-US');
const _missing = (what: string) => `<p class="missing">${esc(what)}: ${NOT_RUN}</p>`;
const _tokens = (tokens: string[]) => tokens.map((t) => `<code class="tok">${esc(t === ' ' ? '␣' : t)}</code>`).join('');

function _cards(data: ReportData, fit: ZipfFit | undefined): string {
  const latest = data.runs.at(-1);
  const last = data.training?.epochs.at(-1);
  const cards: [string, string][] = [
    ['tokens', data.profiles[0] ? _num(data.profiles[0].total) : NOT_RUN],
    ['token types', data.profiles[0] ? _num(data.profiles[0].distinct) : NOT_RUN],
    ['vocabulary size', data.vocab.size > 0 ? _num(data.vocab.size) : NOT_RUN],
    ['Zipf α (unigrams)', fit ? fit.alpha.toFixed(3) : NOT_RUN],
    ['backend', latest ? latest.backend : NOT_RUN],
    ['valid perplexity', last?.valid ? last.valid.perplexity.toFixed(2) : last?.train ? `train ${last.train.perplexity.toFixed(2)}` : NOT_RUN],
  ];
  const value = (v: string) => (v === NOT_RUN ? `<b class="missing">${v}</b>` : `<b>${esc(v)}</b>`);
  return `<div class="cards">${cards.map(([k, v]) => `<div class="card">${value(v)}<span>${esc(k)}</span></div>`).join('')}</div>`;
}

function _orderTable(data: ReportData): string {
  if (data.profiles.length === 0) return _missing('Counting');
  const rows = data.profiles.map((p) => `<tr><td>${p.n}</td><td class="num">${_num(p.distinct)}</td><td class="num">${_num(p.total)}</td><td class="num">${_num(p.spectrum[0].count)}</td><td class="num">${_num(p.spectrum.find((row) => row.count === 1)?.types ?? 0)}</td></tr>`);
  return `<table><tr><th>n</th><th class="num">distinct</th><th class="num">total</th><th class="num">top count</th><th class="num">seen once</th></tr>${rows.join('')}</table>`;
}

function _topTables(data: ReportData): string {
  if (data.top.length === 0) return _missing('Counting');
  const tables = data.top.map(({ n, rows }) => {
    const body = rows.map((r, i) => `<tr><td class="num">${i + 1}</td><td>${_tokens(r.tokens)}</td><td class="num">${_num(r.count)}</td></tr>`);
    return `<table><tr><th colspan="3">${n}-grams</th></tr>${body.join('')}</table>`;
  });
  return `<div class="tops">${tables.join('')}</div>`;
}

function _vocab(data: ReportData): string {
  if (data.vocab.size === 0) return _missing('Vocabulary');
  const head = data.vocab.head.map((v) => `<span class="entry"><sub>${v.id}</sub>${_tokens([v.token])}<sub>${_num(v.count)}</sub></span>`);
  const shown = data.vocab.head.length < data.vocab.size ? `the first ${_num(data.vocab.head.length)} of ` : 'all ';
  return `<p>${shown}<b>${_num(data.vocab.size)}</b> entries (id, token, count):</p><p class="vocab">${head.join(' ')}</p>`;
}

function _epochTable(data: ReportData): string {
  if (!data.training) return _missing('Training');
  const cell = (v: number | null | undefined, digits: number) => (v === undefined || v === null ? '' : v.toFixed(digits));
  const rows = data.training.epochs.map(
    (e) => `<tr><td class="num">${e.epoch}</td><td class="num">${cell(e.train?.perplexity, 3)}</td><td class="num">${cell(e.valid?.perplexity, 3)}</td><td class="num">${e.train?.tokensPerS ? _num(Math.round(e.train.tokensPerS)) : ''}</td></tr>`,
  );
  return `<details><summary>${data.training.epochs.length} epochs of run <code>${esc(data.training.run)}</code></summary><table><tr><th class="num">epoch</th><th class="num">train ppl</th><th class="num">valid ppl</th><th class="num">tokens/s</th></tr>${rows.join('')}</table></details>`;
}

/** The n-gram vs RNN table (npm run eval): the latest comparison of each split. */
function _evaluations(data: ReportData): string {
  if (data.evaluations.length === 0) return `<div>${_missing('n-gram vs RNN (npm run eval)')}</div>`;
  const splits = new Set<string>();
  const tables = data.evaluations.filter((e) => !splits.has(e.split) && splits.add(e.split)).map((e) => {
    const rows = e.rows.map((r) => `<tr><td>${esc(r.model)}</td><td class="num">${r.perplexity.toFixed(2)}</td><td class="num">${r.perplexityWithOov.toFixed(2)}</td></tr>`);
    const first = e.rows[0];
    const caption = `${e.split === 'valid' ? 'validation split' : esc(e.split)}: ${_num(first?.tokens ?? 0)} tokens, ${_num(first?.oov ?? 0)} OOV`;
    return `<table id="eval-${esc(e.split === 'valid' ? 'valid' : 'test')}"><caption>n-gram vs RNN, ${caption}</caption><tr><th>model</th><th class="num">perplexity</th><th class="num">with OOV</th></tr>${rows.join('')}</table>`;
  });
  return `<div>${tables.join('')}<p class="missing">${esc(EVAL_UNITS)}</p></div>`;
}

function _samples(data: ReportData): string {
  if (data.samples.length === 0) return _missing('Sampling');
  return data.samples
    .map((s) => `<p><b>${esc(s.strategy)}</b> from <code>${esc(s.prefix)}</code> <span class="missing">(${esc(s.run)})</span></p><blockquote>${esc(s.text)}</blockquote>`)
    .join('\n');
}

function _settings(data: ReportData): string {
  const parts: string[] = [];
  if (data.runs.length === 0) parts.push(_missing('Training settings (no runs recorded)'));
  for (const run of data.runs) {
    const config = typeof run.config === 'string' ? run.config : JSON.stringify(run.config, null, 2);
    parts.push(`<h3>Run <code>${esc(run.run)}</code> on ${esc(run.backend)}, started ${esc(run.startedAt)}</h3><pre>${esc(config)}</pre>`);
  }
  if (data.stages.length > 0) {
    const rows = data.stages.map((s) => `<tr><td>${esc(s.name)}</td><td>${esc(s.state)}</td><td>${esc(s.updatedAt)}</td></tr>`);
    parts.push(`<h3>Stages</h3><table><tr><th>stage</th><th>state</th><th>updated</th></tr>${rows.join('')}</table>`);
  }
  if (data.meta.length > 0) {
    const clip = (v: string) => (v.length > 400 ? `${v.slice(0, 400)}…` : v);
    const rows = data.meta.map((m) => `<tr><td><code>${esc(m.key)}</code></td><td><code>${esc(clip(m.value))}</code></td></tr>`);
    parts.push(`<h3>Meta</h3><table class="meta">${rows.join('')}</table>`);
  }
  return parts.join('\n');
}
