import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeReport } from '../../../../analysis/report/report.ts';
import { countsAtRanks, logSpacedRanks } from '../../../../analysis/report/_ranks.ts';
import { openRunDatabase } from '../../../../storage/schema.ts';
import { bruteCounts, buildFixture, d2lWords, haveTimeMachine, timeMachineWords } from '../../../helpers/report-fixture.ts';
import { random } from '../../../helpers/tokenize-fixtures.ts';

const tempDir = (t: Test) => {
  const dir = mkdtempSync(join(tmpdir(), 'lmpipe-report-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
};

const ORACLE = [
  'import json, math, sys',
  'counts = sorted(json.load(sys.stdin), reverse=True); to = sum(1 for c in counts if c > 1)',
  'xs = [math.log(r) for r in range(1, to + 1)]; ys = [math.log(c) for c in counts[:to]]',
  'n = len(xs); sx = sum(xs); sy = sum(ys); sxx = sum(x*x for x in xs); sxy = sum(x*y for x, y in zip(xs, ys))',
  'slope = (n*sxy - sx*sy) / (n*sxx - sx*sx); c = (sy - slope*sx) / n',
  'print(json.dumps([-slope, c, to]))',
].join('\n');
const havePython = spawnSync('python3', ['-c', 'pass']).status === 0;
const pythonSkip = !havePython ? 'python3 not found' : !haveTimeMachine() ? 'timemachine.txt not found' : false;

t.test('writeReport() prints the Zipf α that a least-squares fit in python3 gives', { skip: pythonSkip }, async (t) => {
  const dir = tempDir(t);
  const words = timeMachineWords();
  const db = buildFixture(join(dir, 'lmpipe.sqlite'), words, { order: 1 });
  writeReport(dir, db);
  db.close();
  const counts = [...bruteCounts(words, 1).values()];
  const python = spawnSync('python3', ['-c', ORACLE], { input: JSON.stringify(counts), encoding: 'utf8' });
  t.equal(python.status, 0, python.stderr);
  const [alpha, c, to] = JSON.parse(python.stdout) as number[];
  const zipf = readFileSync(join(dir, 'zipf.svg'), 'utf8');
  t.match(zipf, `fit α = ${alpha.toFixed(3)}`, `α ${alpha}`);
  t.match(zipf, `+ ${c.toFixed(2)}`, `c ${c}`);
  t.match(zipf, `over ranks 1 to ${to.toLocaleString('en-US')}`, 'ranks of words seen more than once, as the query tool');
  t.match(readFileSync(join(dir, 'report.html'), 'utf8'), `<b>${alpha.toFixed(3)}</b><span>Zipf α (unigrams)`);
});

t.test('countsAtRanks() reads the same counts as sorting every n-gram', async (t) => {
  const next = random(11);
  for (let trial = 0; trial < 20; trial++) {
    const counts = Array.from({ length: 1 + Math.floor(next() * 3000) }, () => 1 + Math.floor(next() ** 4 * 500));
    const sorted = [...counts].sort((a, b) => b - a);
    const byCount = new Map<number, number>();
    for (const c of counts) byCount.set(c, (byCount.get(c) ?? 0) + 1);
    const spectrum = [...byCount.entries()].sort((a, b) => b[0] - a[0]).map(([count, types]) => ({ count, types }));
    const ranks = logSpacedRanks(counts.length);
    t.equal(ranks[0], 1);
    t.equal(ranks.at(-1), counts.length);
    t.same(countsAtRanks(spectrum, ranks), ranks.map((r) => [r, sorted[r - 1]]), `trial ${trial}`);
  }
  t.same(logSpacedRanks(0), []);
});

t.test('writeReport() on The Time Machine shows the d2l figures and brute-force top n-grams', { skip: haveTimeMachine() ? false : 'timemachine.txt not found' }, async (t) => {
  const dir = tempDir(t);
  const words = timeMachineWords();
  const db = buildFixture(join(dir, 'lmpipe.sqlite'), words, { vocab: true, epochs: 5, samples: ['time traveller <script>alert(1)</script>'] });
  const { html, svgs } = writeReport(dir, db);
  db.close();
  t.same(svgs, [join(dir, 'zipf.svg'), join(dir, 'training.svg')]);
  const page = readFileSync(html, 'utf8');
  // Published d2l figures (issue 2): tokens, types, distinct bigrams and trigrams, the top bigram.
  for (const figure of ['32,775', '4,579', '20,234', '29,882']) t.match(page, `>${figure}<`, `shows ${figure}`);
  t.match(page, /<code class="tok">of<\/code><code class="tok">the<\/code><\/td><td class="num">309</);
  const firstSeen = new Map<string, number>();
  words.forEach((w) => firstSeen.has(w) || firstSeen.set(w, firstSeen.size));
  for (const n of [1, 2, 3]) {
    const rank = (key: string) => key.split('\u0001').map((w) => firstSeen.get(w)!);
    const top = [...bruteCounts(words, n)].sort((a, b) => b[1] - a[1] || _compare(rank(a[0]), rank(b[0]))).slice(0, 10);
    const cells = top.map(([key, count]) => key.split('\u0001').map((w) => `<code class="tok">${w}</code>`).join('') + `</td><td class="num">${count.toLocaleString('en-US')}<`);
    const table = page.slice(page.indexOf(`<th colspan="3">${n}-grams</th>`));
    let at = 0;
    for (const cell of cells) {
      const found = table.indexOf(cell, at);
      t.ok(found > at, `${n}-gram row ${cell.slice(0, 60)} in order`);
      at = found;
    }
  }
  t.match(page, '<b>4,583</b> entries', 'vocabulary size: 4,579 words plus <unk> and 3 reserved');
  t.notMatch(page, '<script>', 'sample text is escaped');
  t.match(page, 'time traveller &#60;script&#62;');
  t.match(page, '<b>cpu</b>', 'the backend from the runs table');
  t.match(page, '&#34;hidden&#34;: 256', 'the run settings');
  const zipf = readFileSync(svgs[0], 'utf8');
  t.ok(page.includes(zipf), 'report.html inlines exactly the SVG file');
  const alpha = Number(/fit α = (\d\.\d+)/.exec(zipf)?.[1]);
  t.ok(alpha > 0.8 && alpha < 1.2, `Zipf α of English words is near 1, got ${alpha}`);
  const trainingSvg = readFileSync(svgs[1], 'utf8');
  const lines = [...trainingSvg.matchAll(/<polyline class="series[^"]*" points="([^"]+)"/g)].map((m) => m[1].split(' ').length);
  t.same(lines, [5, 5], 'one point per epoch for train and valid');
  t.same(readdirSync(dir).filter((f) => f.includes('.tmp-')), [], 'no temp files left behind');
});

t.test('writeReport() says "not run yet" for every part that is missing', async (t) => {
  const dir = tempDir(t);
  const db = buildFixture(join(dir, 'lmpipe.sqlite'), [], {});
  const { html, svgs } = writeReport(dir, db);
  db.close();
  const page = readFileSync(html, 'utf8');
  for (const part of ['Counting', 'Vocabulary', 'Training', 'Sampling']) t.match(page, `${part}: not run yet`);
  t.notMatch(page, '<svg', 'no empty charts in the page');
  t.match(readFileSync(svgs[0], 'utf8'), 'counts not run yet', 'zipf.svg still exists and says why it is empty');
  t.match(readFileSync(svgs[1], 'utf8'), 'training not run yet');
});

t.test('writeReport() with counts only draws every counted order up to 3, and no more', async (t) => {
  const dir = tempDir(t);
  const db = buildFixture(join(dir, 'lmpipe.sqlite'), d2lWords('a b c a b d a b c e f a b c '.repeat(20)), { order: 5 });
  writeReport(dir, db);
  db.close();
  const zipf = readFileSync(join(dir, 'zipf.svg'), 'utf8');
  t.same([...zipf.matchAll(/class="series series-\d"/g)].length, 4, 'unigrams, bigrams, trigrams and the fit');
  const page = readFileSync(join(dir, 'report.html'), 'utf8');
  t.match(page, '<th colspan="3">5-grams</th>', 'the top tables cover every counted order');
  t.match(page, 'Training: not run yet');
});

t.test('writeReport() keeps the Zipf plot small for a large vocabulary and is self-contained', async (t) => {
  const dir = tempDir(t);
  const db = openRunDatabase(join(dir, 'lmpipe.sqlite'));
  db.transaction(() => {
    const insert = db.prepare('INSERT INTO ngram1 (w1, count) VALUES (?, ?)');
    for (let r = 1; r <= 200_000; r++) insert.run(r, Math.floor(1e6 / r) + 1);
  })();
  writeReport(dir, db);
  db.close();
  const zipf = readFileSync(join(dir, 'zipf.svg'), 'utf8');
  t.ok(zipf.length < 20_000, `zipf.svg is ${zipf.length} bytes for 200,000 types`);
  const alpha = Number(/fit α = (\d\.\d+)/.exec(zipf)?.[1]);
  t.ok(alpha > 0.95 && alpha < 1.01, `count = floor(1e6/rank) + 1 gives α just under 1, got ${alpha}`);
  const page = readFileSync(join(dir, 'report.html'), 'utf8');
  t.notMatch(page, /<script|<link|<img|<iframe|url\(|src=/i, 'nothing to load');
  t.same(page.match(/https?:\/\/[^"'\s<]+/g)?.filter((u) => u !== 'http://www.w3.org/2000/svg') ?? [], [], 'no network address but the SVG namespace');
});

t.test('writeReport() shows the latest run that has metrics', async (t) => {
  const dir = tempDir(t);
  const db = buildFixture(join(dir, 'lmpipe.sqlite'), d2lWords('x y z x y'), { epochs: 3 });
  db.prepare("INSERT INTO runs VALUES ('run-2', 'wasm', '{}', '2024-02-01T00:00:00Z')").run();
  db.prepare("INSERT INTO metrics VALUES ('run-2', 1, 10, 'train', 2.0, 7.389, 1234.5)").run();
  writeReport(dir, db);
  db.close();
  const training = readFileSync(join(dir, 'training.svg'), 'utf8');
  t.match(training, 'Training curve (run-2)');
  t.match(training, 'median 1,235 tokens/s');
  t.match(readFileSync(join(dir, 'report.html'), 'utf8'), '<b>wasm</b>', 'backend of the latest run');
});

t.test('npm run report rebuilds the files from the database and explains a missing one', async (t) => {
  const dir = tempDir(t);
  buildFixture(join(dir, 'lmpipe.sqlite'), d2lWords('one two three one two'), { epochs: 2 }).close();
  const script = new URL('../../../../scripts/report.ts', import.meta.url).pathname;
  const run = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', script, ...args], { encoding: 'utf8' });
  const ok = run('--out', dir);
  t.equal(ok.status, 0, ok.stderr);
  t.same(ok.stdout.trim().split('\n'), ['report.html', 'zipf.svg', 'training.svg'].map((f) => join(dir, f)));
  t.match(readFileSync(join(dir, 'report.html'), 'utf8'), '<b>cpu</b>');
  const missing = run('--out', join(dir, 'nothing-here'));
  t.equal(missing.status, 4, 'exit code of a run-directory state error');
  t.match(missing.stderr, /^error: report: No run database at .*nothing-here.*lmpipe\.sqlite; run `npm run pipeline -- --out /);
  t.equal(run('--order', '3').status, 2, 'unknown flags are usage errors');
});

function _compare(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}
