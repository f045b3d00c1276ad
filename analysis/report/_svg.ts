/**
 * Tiny SVG charts for the run report, with no dependencies: one x/y chart with linear or log axes,
 * series drawn as dots or lines, a legend and notes. The output is a standalone `<svg>` element
 * (with xmlns), so the same string is written as `zipf.svg` and inlined in report.html.
 *
 *   svgChart([{ label: 'unigrams', points: [[1, 2261], [2, 1267]], style: 'dots', color: '#1f77b4' }],
 *     { title: 'Zipf', xLabel: 'rank', yLabel: 'frequency', xLog: true, yLog: true });
 */

export interface ChartSeries {
  label: string;
  /** [x, y] in data units; points that a log axis cannot show (<= 0, NaN) are dropped. */
  points: ReadonlyArray<readonly [number, number]>;
  /** 'dots' draws one marker per point (all in one path), 'line' a polyline. */
  style: 'dots' | 'line';
  color: string;
  dashed?: boolean;
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  xLog?: boolean;
  yLog?: boolean;
  width?: number;
  height?: number;
  /** Short lines shown under the title, e.g. the fitted α. */
  notes?: string[];
  /** Prefix of the element ids, so that two charts inlined in one page stay distinct. */
  id?: string;
  /** Shown in the frame when there is nothing to draw. */
  empty?: string;
  /** Linear x axis of whole numbers (epochs): ticks at integers only. */
  xInteger?: boolean;
}

const DEFAULTS = { xLog: false, yLog: false, xInteger: false, width: 800, height: 460, notes: [] as string[], id: 'chart', empty: 'no data' };
const MARGIN = { left: 64, right: 20, top: 48, bottom: 52 };

/** Escapes text for SVG/HTML element content and attribute values. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Renders the chart. An empty chart (no drawable points) shows its axes frame and "no data". */
export function svgChart(series: ChartSeries[], options: ChartOptions): string {
  const o = { ...DEFAULTS, ...options };
  const plot = { x0: MARGIN.left, x1: o.width - MARGIN.right, y0: o.height - MARGIN.bottom, y1: MARGIN.top + 14 * o.notes.length };
  const toX = o.xLog ? Math.log10 : (v: number) => v;
  const toY = o.yLog ? Math.log10 : (v: number) => v;
  const drawable = series.map((s) => ({
    ...s,
    points: s.points.map(([x, y]) => [toX(x), toY(y)] as const).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)),
  }));
  const all = drawable.flatMap((s) => s.points);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" id="${o.id}" viewBox="0 0 ${o.width} ${o.height}" width="${o.width}" height="${o.height}" font-family="system-ui, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="${o.width / 2}" y="20" text-anchor="middle" font-size="15" font-weight="600">${escapeXml(o.title)}</text>`,
    ...o.notes.map((note, i) => `<text x="${o.width / 2}" y="${38 + 14 * i}" text-anchor="middle" fill="#444">${escapeXml(note)}</text>`),
    `<rect class="frame" x="${plot.x0}" y="${plot.y1}" width="${plot.x1 - plot.x0}" height="${plot.y0 - plot.y1}" fill="none" stroke="#999"/>`,
  ];
  if (all.length === 0) {
    parts.push(`<text x="${(plot.x0 + plot.x1) / 2}" y="${(plot.y0 + plot.y1) / 2}" text-anchor="middle" fill="#888">${escapeXml(o.empty)}</text>`, '</svg>');
    return parts.join('\n');
  }
  const xDomain = _domain(all.map((p) => p[0]));
  const yDomain = _domain(all.map((p) => p[1]));
  const px = (v: number) => _round(plot.x0 + ((v - xDomain[0]) / (xDomain[1] - xDomain[0])) * (plot.x1 - plot.x0));
  const py = (v: number) => _round(plot.y0 - ((v - yDomain[0]) / (yDomain[1] - yDomain[0])) * (plot.y0 - plot.y1));
  parts.push(..._axis('x', _ticks(xDomain, o.xLog, o.xInteger), px, plot), ..._axis('y', _ticks(yDomain, o.yLog), py, plot));
  parts.push(
    `<text x="${(plot.x0 + plot.x1) / 2}" y="${o.height - 12}" text-anchor="middle">${escapeXml(o.xLabel)}</text>`,
    `<text transform="translate(16 ${(plot.y0 + plot.y1) / 2}) rotate(-90)" text-anchor="middle">${escapeXml(o.yLabel)}</text>`,
  );
  drawable.forEach((s, i) => {
    if (s.points.length === 0) return;
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : '';
    const cls = `series series-${i}`;
    if (s.style === 'line') {
      const points = s.points.map(([x, y]) => `${px(x)},${py(y)}`).join(' ');
      parts.push(`<polyline class="${cls}" points="${points}" fill="none" stroke="${s.color}" stroke-width="2"${dash}/>`);
    } else {
      // Zero-length subpaths with round caps draw as dots: one element for thousands of points.
      const d = s.points.map(([x, y]) => `M${px(x)} ${py(y)}h0`).join('');
      parts.push(`<path class="${cls}" d="${d}" stroke="${s.color}" stroke-width="5" stroke-linecap="round" fill="none"/>`);
    }
  });
  parts.push(_legend(drawable, plot), '</svg>');
  return parts.join('\n');
}

type Plot = { x0: number; x1: number; y0: number; y1: number };

function _axis(which: 'x' | 'y', ticks: { at: number; label: string }[], scale: (v: number) => number, plot: Plot): string[] {
  return ticks.map(({ at, label }) => {
    const p = scale(at);
    return which === 'x'
      ? `<line x1="${p}" x2="${p}" y1="${plot.y1}" y2="${plot.y0}" stroke="#eee"/><text x="${p}" y="${plot.y0 + 16}" text-anchor="middle">${label}</text>`
      : `<line x1="${plot.x0}" x2="${plot.x1}" y1="${p}" y2="${p}" stroke="#eee"/><text x="${plot.x0 - 6}" y="${p + 4}" text-anchor="end">${label}</text>`;
  });
}

function _legend(series: { label: string; color: string; style: string; dashed?: boolean }[], plot: Plot): string {
  const rows = series.map((s, i) => {
    const y = plot.y1 + 14 + 18 * i;
    const x = plot.x1 - 170;
    const swatch = s.style === 'line'
      ? `<line x1="${x}" x2="${x + 22}" y1="${y - 4}" y2="${y - 4}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`
      : `<circle cx="${x + 11}" cy="${y - 4}" r="3" fill="${s.color}"/>`;
    return `${swatch}<text x="${x + 28}" y="${y}">${escapeXml(s.label)}</text>`;
  });
  return `<g class="legend">${rows.join('')}</g>`;
}

/** [min, max] padded by 4%, widened when every value is equal. */
function _domain(values: number[]): [number, number] {
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (max - min < 1e-9) return [min - 0.5, max + 0.5];
  const pad = (max - min) * 0.04;
  return [min - pad, max + pad];
}

/** Ticks inside a (transformed) domain: powers of ten on a log axis, 1-2-5 steps on a linear one. */
function _ticks([lo, hi]: [number, number], log: boolean, integer = false): { at: number; label: string }[] {
  if (log) {
    const ticks = [];
    // Few decades: also mark 2× and 5× so the reader can still read values off the axis.
    const steps = hi - lo < 2.5 ? [1, 2, 5] : [1];
    for (let e = Math.floor(lo); e <= Math.ceil(hi); e++) {
      for (const m of steps) {
        const at = e + Math.log10(m);
        if (at >= lo && at <= hi) ticks.push({ at, label: _compact(m * 10 ** e) });
      }
    }
    if (ticks.length >= 2) return ticks;
    // Less than a decade visible: label the linear ticks of the data range instead.
    return _ticks([10 ** lo, 10 ** hi], false).filter((t) => t.at > 0).map((t) => ({ at: Math.log10(t.at), label: t.label }));
  }
  const raw = (hi - lo) / 5;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const nice = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw)!;
  const step = integer ? Math.max(1, Math.round(nice)) : nice;
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-12; v += step) ticks.push({ at: v, label: _compact(v) });
  return ticks;
}

/** 1500 -> "1.5k", 2e6 -> "2M", 0.25 -> "0.25". */
function _compact(v: number): string {
  const abs = Math.abs(v);
  const fixed = (x: number) => String(Number(x.toPrecision(3)));
  if (abs >= 1e9) return fixed(v / 1e9) + 'G';
  if (abs >= 1e6) return fixed(v / 1e6) + 'M';
  if (abs >= 1e4) return fixed(v / 1e3) + 'k';
  return fixed(v);
}

const _round = (v: number) => Math.round(v * 10) / 10;
