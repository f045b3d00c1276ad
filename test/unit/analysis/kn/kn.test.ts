import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { countStage } from '../../../../stages/count/index.ts';
import { queries } from '../../../../storage/queries.ts';
import { arpaChunks, estimateKneserNey, storedKneserNey } from '../../../../analysis/kn/index.ts';
import { heldOutKnPerplexity } from '../../../../analysis/query/index.ts';
import { LmpipeError } from '../../../../lib/errors.ts';
import { drain, stageContext } from '../../../oracles/count-oracle.ts';

const oracle = fileURLToPath(new URL('../../../oracles/kn_oracle.py', import.meta.url));
const timeMachine = fileURLToPath(new URL('../../../../../shared/corpora/timemachine/timemachine.txt', import.meta.url));
const python = spawnSync('python3', ['--version'], { encoding: 'utf8' });
const skip = !existsSync(timeMachine) ? 'The Time Machine not found' : python.status !== 0 ? 'python3 not found' : false;

function runOracle(args: string[]): string {
  const result = spawnSync('python3', [oracle, ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
  if (result.status !== 0) throw new Error(`kn_oracle.py ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

/**
 * ARPA text -> its lines with the numbers taken out (the layout: header, sections, n-grams in
 * order) and n-gram (words joined by ' ') -> [log10 p, log10 backoff].
 */
function parseArpa(text: string): { layout: string[]; grams: Map<string, number[]> } {
  const layout: string[] = [];
  const grams = new Map<string, number[]>();
  for (const line of text.split('\n')) {
    const fields = line.split('\t');
    layout.push(fields.length >= 2 ? `${fields[1]}${fields.length > 2 ? ' +backoff' : ''}` : line);
    if (fields.length >= 2) grams.set(fields[1], fields.slice(0, 1).concat(fields.slice(2)).map(Number));
  }
  return { layout, grams };
}

/** The two ARPA texts have the same layout and every log10 value within 1e-4. */
function sameArpa(t: Test, ours: string, theirs: string, label: string): void {
  const [a, b] = [parseArpa(ours), parseArpa(theirs)];
  t.same(a.layout, b.layout, `${label}: the same header, sections and n-grams, line for line`);
  let worst = 0;
  for (const [gram, values] of b.grams) values.forEach((value, i) => (worst = Math.max(worst, Math.abs(value - (a.grams.get(gram)?.[i] ?? NaN)))));
  t.ok(worst <= 1e-4, `${label}: every log10 value within 1e-4 (max difference ${worst})`);
}

t.test('the ARPA file equals the independent oracle (lmplz formulas) on The Time Machine, orders 2..5', { skip }, async (t) => {
  const ctx = stageContext(mkdtempSync(join(tmpdir(), 'lmpipe-kn-')), { input: [timeMachine], tokenizer: 'd2l-word', order: 5, workers: 1 });
  await drain(countStage.run(ctx));
  const q = queries(ctx.db);
  const tokens = q.tokens();
  for (const order of [2, 3, 4, 5]) {
    const ours = [...arpaChunks(storedKneserNey(q, { order }), (id) => tokens[id])].join('');
    const theirs = runOracle(['arpa', '--order', String(order), timeMachine]);
    sameArpa(t, ours, theirs, `order ${order}`);
  }
  ctx.close();
});

t.test("KN perplexity equals the oracle's (KenLM query's) including and excluding OOVs", { skip }, async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'lmpipe-kn-'));
  const lines = ['the time traveller smiled', '', 'zebra quantum machine', 'it was a glittering metallic framework'];
  const train = join(root, 'train.txt');
  const held = join(root, 'held.txt');
  writeFileSync(held, lines.join('\n') + '\n');
  // Train on a slice of the book so that the discounts exist and some held-out words are OOV.
  const book = spawnSync('head', ['-n', '1200', timeMachine], { encoding: 'utf8' }).stdout;
  writeFileSync(train, book);
  const ctx = stageContext(join(root, 'run'), { input: [train], tokenizer: 'd2l-word', order: 3, workers: 1 });
  await drain(countStage.run(ctx));
  const q = queries(ctx.db);
  const arpa = join(root, 'model.arpa');
  writeFileSync(arpa, runOracle(['arpa', '--order', '3', train]));
  const expected = Object.fromEntries(runOracle(['perplexity', '--arpa', arpa, held]).trim().split('\n').map((line) => line.split('\t')));
  const ours = await heldOutKnPerplexity(q, held, storedKneserNey(q, { order: 3 }));
  t.equal(ours.tokens, Number(expected['Tokens:']), 'tokens: words and </s>');
  t.equal(ours.oovs, Number(expected['OOVs:']));
  t.ok(ours.oovs > 0, 'the held-out text has OOVs');
  t.ok(Math.abs(ours.includingOovs - Number(expected['Perplexity including OOVs:'])) < 1e-4 * ours.includingOovs, `including OOVs ${ours.includingOovs}`);
  t.ok(Math.abs(ours.excludingOovs - Number(expected['Perplexity excluding OOVs:'])) < 1e-4 * ours.excludingOovs, `excluding OOVs ${ours.excludingOovs}`);
  ctx.close();
});

t.test("too little data: lmplz's error, or its fallback discounts with a warning, as the oracle", { skip }, async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'lmpipe-kn-'));
  const toy = join(root, 'toy.txt');
  writeFileSync(toy, 'a a b a\nb a a b\n');
  const ctx = stageContext(join(root, 'run'), { input: [toy], tokenizer: 'd2l-word', order: 3, workers: 1 });
  await drain(countStage.run(ctx));
  const q = queries(ctx.db);
  t.throws(() => storedKneserNey(q, { order: 3 }), LmpipeError, 'no 1-grams with adjusted count 1: an error');
  const warnings: string[] = [];
  const model = storedKneserNey(q, { order: 3, discountFallback: true, warn: (line) => warnings.push(line) });
  t.equal(warnings.length, 3, 'one warning per order');
  t.same(model.discounts, [[0.5, 1, 1.5], [0.5, 1, 1.5], [0.5, 1, 1.5]]);
  const tokens = q.tokens();
  sameArpa(t, [...arpaChunks(model, (id) => tokens[id])].join(''), runOracle(['arpa', '--order', '3', '--discount-fallback', toy]), 'fallback');
  t.throws(() => estimateKneserNey({ rows: () => [] }, { order: 6 }), RangeError);
  ctx.close();
});
