/**
 * What a real pipeline run leaves for its user, checked from outside: the report built from that
 * run (against counts computed here from the d2l spec, and the database), the generate CLI on its
 * model, exit 1 with one line (the stack only with LMPIPE_DEBUG) on an internal error, a changed
 * input file forcing a redo, and a smoke run of the repro-d2l CLI with one epoch.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openRunDatabase } from '../../storage/schema.ts';
import { writeCorpus } from '../helpers/corpus-fixture.ts';
import { corpusSkip } from '../helpers/train-fixture.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = (script: string, args: string[], env: NodeJS.ProcessEnv = {}) =>
  spawnSync(process.execPath, ['--import', 'tsx', join(root, 'scripts', script), ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, ...env } });

/** d2l-char from its spec: each line cleaned (letters only, lowercased, trimmed), joined with nothing. */
const d2lChars = (text: string) => Array.from(text.split('\n').map((line) => line.replace(/[^A-Za-z]+/g, ' ').trim().toLowerCase()).join(''));

/** Per order n: distinct n-grams, total, the top count and how many are seen once, over documents. */
function profiles(documents: string[][], order: number) {
  return Array.from({ length: order }, (_, k) => {
    const n = k + 1;
    const counts = new Map<string, number>();
    for (const tokens of documents) {
      for (let i = 0; i + n <= tokens.length; i++) counts.set(tokens.slice(i, i + n).join('\u0000'), (counts.get(tokens.slice(i, i + n).join('\u0000')) ?? 0) + 1);
    }
    const values = [...counts.values()];
    return { n, distinct: counts.size, total: values.reduce((a, b) => a + b, 0), top: Math.max(...values), once: values.filter((c) => c === 1).length };
  });
}

const dir = mkdtempSync(join(tmpdir(), 'lmpipe-outputs-'));
const inputs = writeCorpus(dir, { files: 2, lines: 100 });
const out = join(dir, 'run');
const flags = ['--input', ...inputs, '--out', out, '--tokenizer', 'd2l-char', '--order', '3', '--max-tokens', '0', '--hidden', '16',
  '--epochs', '2', '--batch', '4', '--steps', '8', '--backend', 'cpu', '--prefix', 'the time', '--sample-length', '20'];

t.test('a whole pipeline run: its report, generate on its model, and a changed input forcing a redo', async (t) => {
  const run = cli('run-pipeline.ts', [...flags, '--quiet']);
  t.equal(run.status, 0, 'the run finishes');
  if (run.status !== 0) return void t.comment(run.stderr);

  const db = openRunDatabase(join(out, 'lmpipe.sqlite'), { readonly: true });
  const metrics = db.prepare('SELECT epoch, split, perplexity FROM metrics ORDER BY epoch, split').all() as { epoch: number; split: string; perplexity: number }[];
  const sample = db.prepare('SELECT text FROM samples').get()!.text as string;
  db.close();
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  const number = (text: string) => Number(text.replace(/,/g, ''));
  const rows = [...html.matchAll(/<tr><td>(\d)<\/td>((?:<td class="num">[\d,]+<\/td>){4})<\/tr>/g)]
    .map((m) => { const [distinct, total, top, once] = [...m[2].matchAll(/>([\d,]+)</g)].map((c) => number(c[1])); return { n: Number(m[1]), distinct, total, top, once }; });
  const documents = inputs.map((path) => d2lChars(readFileSync(path, 'utf8')));
  t.same(rows, profiles(documents, 3), 'the n-gram table: distinct, total, top count and seen once for each order, as counted from the spec');
  const types = new Set(documents.flat()).size;
  t.match(html, new RegExp(`<strong>${types + 4}</strong>\\s*<span>vocabulary size</span>|>${types + 4}<[^]*?vocabulary size`), `vocabulary size ${types + 4} (the tokens and <unk> <pad> <bos> <eos>)`);
  const epochRows = [...html.matchAll(/<tr><td class="num">(\d+)<\/td><td class="num">([\d.]+)<\/td><td class="num">([\d.]+)<\/td>/g)].map((m) => [Number(m[1]), m[2], m[3]]);
  const perplexity = (epoch: number, split: string) => metrics.find((m) => m.epoch === epoch && m.split === split)!.perplexity.toFixed(3);
  t.same(epochRows, [1, 2].map((epoch) => [epoch, perplexity(epoch, 'train'), perplexity(epoch, 'valid')]), 'one row per epoch with the perplexities in metrics');
  t.ok(html.includes(sample), `the sample "${sample}" is shown`);

  const greedy = cli('generate.ts', ['--out', out, '--prefix', 'the time', '--length', '20', '--json']);
  t.equal(greedy.status, 0, 'generate runs');
  t.match(JSON.parse(greedy.stdout), { text: sample, strategy: 'greedy', unknown: [], finished: true }, 'greedy generate equals the sample stage');
  const sampled = (seed: string) => cli('generate.ts', ['--out', out, '--prefix', 'the time', '--length', '20', '--temperature', '0.8', '--seed', seed]);
  const [a, b, c] = [sampled('7'), sampled('7'), sampled('8')];
  t.match(a.stdout, /^the time[a-z ]{20}\n$/, 'the prefix and 20 generated characters');
  t.equal(a.stdout, b.stdout, 'the same seed gives the same text');
  t.not(a.stdout, c.stdout, 'another seed another text');
  const bad = cli('generate.ts', ['--out', out, '--temperature', 'hot']);
  t.same([bad.status, bad.stderr], [2, 'error: generate: Expected `--temperature` to be a number of at least 0, got `hot`\n'], 'a bad flag: exit 2, one line');

  appendFileSync(inputs[1], 'the time machine\n');
  const again = cli('run-pipeline.ts', [...flags, '--until', 'vocab']);
  t.equal(again.status, 0, 'the rerun finishes');
  t.match(again.stderr, /^count: redo \(changed: input files\)$/m, 'a changed input file redoes count');
  t.match(again.stderr, /^vocab: redo \(an earlier stage changed\)$/m, 'and what follows');
  const recounted = openRunDatabase(join(out, 'lmpipe.sqlite'), { readonly: true });
  const tokens = Number(recounted.prepare("SELECT value FROM meta WHERE key = 'tokens'").get()!.value);
  recounted.close();
  t.equal(tokens, inputs.map((path) => d2lChars(readFileSync(path, 'utf8')).length).reduce((x, y) => x + y, 0), 'the counts are of the new text');
});

t.test('an internal error exits 1 with one line; LMPIPE_DEBUG=1 adds the stack', async (t) => {
  const broken = join(mkdtempSync(join(tmpdir(), 'lmpipe-outputs-')), 'run');
  cli('run-pipeline.ts', ['--input', inputs[0], '--out', broken, '--until', 'count', '--quiet']);
  writeFileSync(join(broken, 'lmpipe.sqlite'), 'this is not a database, and it is long enough to have a header');
  const plain = cli('run-pipeline.ts', ['--input', inputs[0], '--out', broken, '--until', 'count', '--quiet']);
  t.equal(plain.status, 1, 'exit 1');
  t.equal(plain.stderr, 'error: pipeline: file is not a database\n', 'one line');
  const debug = cli('run-pipeline.ts', ['--input', inputs[0], '--out', broken, '--until', 'count', '--quiet'], { LMPIPE_DEBUG: '1' });
  t.equal(debug.status, 1, 'exit 1 with LMPIPE_DEBUG too');
  t.match(debug.stderr, /^error: pipeline: file is not a database\n\w*Error: file is not a database\n\s+at /, 'the stack follows');
});

t.test('repro-d2l runs the book\'s setting and reports on it (one epoch)', { skip: corpusSkip }, async (t) => {
  const repro = cli('repro-d2l.ts', ['--epochs', '1', '--out', join(dir, 'repro'), '--backend', 'wasm']);
  t.equal(repro.status, 1, 'one epoch is far from d2l\'s perplexity near 1, so it exits 1');
  t.match(repro.stdout, new RegExp([
    `d2l reproduction in ${join(dir, 'repro')} \\(backend wasm\\): 1 epochs`,
    '  training perplexity: epoch 1 \\d+\\.\\d\\d, epoch 1 \\d+\\.\\d{3} \\(d2l: about 1\\.0\\)',
    '  greedy from "time traveller": "time traveller.{50}"',
    '  appears verbatim in the training text: (yes|no \\(its first \\d+ characters do\\))',
    '  training speed: [\\d,]+ tokens/s on average; this command took \\d+\\.\\d min',
  ].join('\n')), 'its five lines of report');
});
