/**
 * report.html in a real browser (Debian's headless Chromium): the charts are there, their paths
 * are non-empty, they have a size on screen, and the dots are painted where the data says.
 */
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { writeReport } from '../../analysis/report/index.ts';
import { findChromium, launchChromium, type Page } from '../helpers/chromium.ts';
import { buildFixture, d2lWords, haveTimeMachine, timeMachineWords } from '../helpers/report-fixture.ts';

const chromium = findChromium();
const skip = chromium ? false : 'Chromium is not installed (Debian: apt-get install -y chromium); browser check skipped';

interface ChartFacts {
  present: boolean;
  width: number;
  height: number;
  series: { tag: string; geometry: number; bboxWidth: number; bboxHeight: number; paintedAtFirstPoint: boolean }[];
  text: string;
}

// Runs in the page: measures each chart's series and hit-tests the first point of each one.
const inspect = (id: string) => `(() => {
  const svg = document.getElementById(${JSON.stringify(id)});
  if (!svg) return { present: false, width: 0, height: 0, series: [], text: '' };
  const box = svg.getBoundingClientRect();
  const series = [...svg.querySelectorAll('.series')].map((el) => {
    const geometry = el.tagName === 'path' ? el.getAttribute('d') : el.getAttribute('points');
    const first = (geometry.match(/-?[0-9.]+/g) || []).slice(0, 2).map(Number);
    const point = svg.createSVGPoint();
    point.x = first[0]; point.y = first[1];
    const screen = point.matrixTransform(el.getScreenCTM());
    el.scrollIntoView({ block: 'center' });
    const again = point.matrixTransform(el.getScreenCTM());
    const painted = document.elementsFromPoint(again.x, again.y).includes(el);
    const b = el.getBBox();
    return { tag: el.tagName, geometry: geometry.length, bboxWidth: b.width, bboxHeight: b.height, paintedAtFirstPoint: painted };
  });
  return { present: true, width: box.width, height: box.height, series, text: svg.textContent };
})()`;

async function withPage(t: Test, html: string, fn: (page: Page) => Promise<void>) {
  const browser = await launchChromium(chromium);
  t.teardown(() => browser.close());
  await fn(await browser.open(pathToFileURL(html).href));
}

t.test('writeReport() charts render in headless Chromium', { skip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lmpipe-report-browser-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const words = haveTimeMachine() ? timeMachineWords() : d2lWords('the time traveller said the time machine '.repeat(300));
  const evaluations = ['laplace-3', 'kn-3', 'kn-5', 'lstm'].map((model, i) => ({ model, tokens: 999, oov: 12, perplexity: 300 - 50 * i, perplexityWithOov: 320 - 50 * i }));
  const db = buildFixture(join(dir, 'lmpipe.sqlite'), words, { vocab: true, epochs: 12, samples: ['the time traveller said'], evaluations });
  const { html } = writeReport(dir, db);
  db.close();
  await withPage(t, html, async (page) => {
    const zipf = await page.evaluate<ChartFacts>(inspect('zipf-chart'));
    t.ok(zipf.present, 'the Zipf chart is in the page');
    t.ok(zipf.width > 300 && zipf.height > 200, `the Zipf chart has a size on screen (${zipf.width}×${zipf.height})`);
    t.same(zipf.series.map((s) => s.tag), ['path', 'path', 'path', 'polyline'], 'dots for 1-, 2- and 3-grams, and the fitted line');
    for (const [i, s] of zipf.series.entries()) {
      t.ok(s.geometry > 0, `Zipf series ${i} has geometry`);
      t.ok(s.bboxWidth > 10 && s.bboxHeight > 10, `Zipf series ${i} has a non-empty bounding box`);
      t.ok(s.paintedAtFirstPoint, `Zipf series ${i} is painted at its first point`);
    }
    t.match(zipf.text, /α = \d\.\d{3}/, 'the fitted α is printed on the chart');
    const training = await page.evaluate<ChartFacts>(inspect('training-chart'));
    t.same(training.series.map((s) => s.tag), ['polyline', 'polyline'], 'train and valid perplexity lines');
    for (const s of training.series) t.ok(s.bboxWidth > 10 && s.bboxHeight > 10 && s.paintedAtFirstPoint, 'a painted training line');
    const table = await page.evaluate<{ rows: string[][]; box: number[]; chart: number[] } | null>(`(() => {
      const table = document.getElementById('eval-valid');
      if (!table) return null;
      const box = (el) => { const b = el.getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom]; };
      return { rows: [...table.rows].map((row) => [...row.cells].map((cell) => cell.innerText)), box: box(table), chart: box(document.getElementById('training-chart')) };
    })()`);
    t.ok(table, 'the n-gram vs RNN table is in the page');
    t.same(table!.rows, [['model', 'perplexity', 'with OOV'], ...evaluations.map((e) => [e.model, e.perplexity.toFixed(2), e.perplexityWithOov.toFixed(2)])], 'one row per model, as stored');
    const [left, top, right, bottom] = table!.box;
    t.ok(right - left > 100 && bottom - top > 60, `the table has a size on screen (${Math.round(right - left)}×${Math.round(bottom - top)})`);
    t.ok(left >= table!.chart[2] - 1 && top < table!.chart[3], 'the table stands beside the training curve');
    const scripts = await page.evaluate<number>('document.scripts.length');
    t.equal(scripts, 0, 'the report needs no scripts');
    const resources = await page.evaluate<string[]>("performance.getEntriesByType('resource').map((e) => e.name)");
    t.same(resources, [], 'the report loads nothing else');
  });
});

t.test('writeReport() without training renders "not run yet" in Chromium', { skip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lmpipe-report-browser-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const db = buildFixture(join(dir, 'lmpipe.sqlite'), d2lWords('a b a c a b d e a b'), {});
  const { html } = writeReport(dir, db);
  db.close();
  await withPage(t, html, async (page) => {
    const zipf = await page.evaluate<ChartFacts>(inspect('zipf-chart'));
    t.equal(zipf.series.length, 4, 'counts alone still give a Zipf chart with a fit');
    const training = await page.evaluate<ChartFacts>(inspect('training-chart'));
    t.notOk(training.present, 'no empty training chart is shown');
    const body = await page.evaluate<string>('document.body.innerText');
    t.match(body, /Training: not run yet/, 'the training section says it has not run yet');
    t.match(body, /Samples\s+Sampling: not run yet/, 'the samples section says it has not run yet');
    t.match(body, /n-gram vs RNN \(npm run eval\): not run yet/, 'the comparison says it has not run yet');
  });
});
