import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { query } from '../../../scripts/query.ts';
import { QUERY_COMMANDS } from '../../../analysis/query/index.ts';
import { openRunDatabase } from '../../../storage/schema.ts';
import { bruteCounts, generateDocuments, key, writeDatabase } from '../../helpers/query-fixture.ts';

const dir = mkdtempSync(join(tmpdir(), 'lmpipe-query-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const documents = generateDocuments(7, { documents: 40, length: 120, types: 60 });
const brute = bruteCounts(documents, 3);
const db = join(dir, 'run', 'lmpipe.sqlite');
writeDatabase(db, brute, { tokenizer: 'word', lowercase: 'false' });

/** Runs the tool in-process and returns its exit code and output. */
async function run(...argv: string[]) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await query(argv, { stdout: (s) => stdout.push(s), stderr: (s) => stderr.push(s) });
  return { code, stdout: stdout.join('\n'), stderr: stderr.join('\n') };
}

async function json(...argv: string[]) {
  const result = await run(...argv, '--db', db, '--json');
  if (result.code !== 0) throw new Error(`query ${argv.join(' ')} failed: ${result.stderr}`);
  return JSON.parse(result.stdout);
}

const total = (n: number) => [...brute.orders[n - 1].values()].reduce((a, b) => a + b, 0);
const n1 = (tokens: string[]) => brute.orders[tokens.length - 1].get(key(tokens)) ?? 0;

t.test('top lists the most frequent n-grams with ties in first-occurrence order', async (t) => {
  for (const n of [1, 2, 3]) {
    const id = (token: string) => brute.tokens.indexOf(token);
    const expected = [...brute.orders[n - 1]].map(([k, count]) => ({ tokens: k.split('\u0000'), count }))
      .sort((a, b) => b.count - a.count || a.tokens.map(id).reduce((c, x, i) => c || x - id(b.tokens[i]), 0))
      .slice(0, 15);
    const answer = await json('top', '--n', String(n), '--k', '15');
    t.same(answer.rows.map((row: { tokens: string[]; count: number }) => ({ tokens: row.tokens, count: row.count })), expected, `order ${n}`);
    t.equal(answer.total, total(n));
    t.equal(answer.distinct, brute.orders[n - 1].size);
    t.equal(answer.rows[0].frequency, expected[0].count / total(n));
    t.same(Object.keys(answer.rows[0]).sort(), ['count', 'frequency', 'rank', 'tokens']);
  }
  const text = await run('top', '--n', '2', '--k', '3', '--db', db);
  t.equal(text.stdout.split('\n').length, 5, 'a title, a header and three rows');
  t.match(text.stdout, /rank\s+n-gram\s+count\s+frequency/);
});

t.test('count returns brute-force counts, 0 for unseen n-grams and unknown tokens', async (t) => {
  const [document] = documents.filter((d) => d.length >= 5);
  for (const tokens of [document.slice(0, 1), document.slice(1, 3), document.slice(2, 5), ['w0', 'w0', 'w0']]) {
    const answer = await json('count', ...tokens);
    t.same(answer, { tokens, n: tokens.length, count: n1(tokens), unknown: [] }, tokens.join(' '));
  }
  const unknown = await json('count', 'w1', 'nonsense');
  t.same(unknown, { tokens: ['w1', 'nonsense'], n: 2, count: 0, unknown: ['nonsense'] });
  const text = await run('count', 'w1', 'nonsense', '--db', db);
  t.match(text.stdout, /unknown token\s+nonsense/);
  const tooLong = await run('count', 'w1', 'w1', 'w1', 'w1', '--db', db);
  t.equal(tooLong.code, 2);
  t.match(tooLong.stderr, /at most 3 \(the order this run counted\), got `4`/);
});

t.test('vocab shows the first k entries and the size', async (t) => {
  const answer = await json('vocab', '--k', '6');
  t.equal(answer.size, brute.vocab.length);
  t.same(answer.rows, brute.vocab.slice(0, 6).map((entry, id) => ({ id, ...entry })));
  const text = await run('vocab', '--k', '2', '--db', db);
  t.match(text.stdout, /^Vocabulary of \d+ tokens \(first 2 shown\)\nid\s+token\s+count\n 0\s+<unk>\s+0/);
});

t.test('prob gives the d2l MLE and Laplace estimates, recomputed by hand', async (t) => {
  const [x, y, z] = documents.find((d) => d.length >= 3)!;
  const n = total(1);
  const m = brute.tokens.length;
  const [e1, e2, e3] = [0.5, 2, 3];
  const eps = ['--eps1', String(e1), '--eps2', String(e2), '--eps3', String(e3)];
  const pz = (n1([z]) + e1 / m) / (n + e1);
  const pzGivenY = (n1([y, z]) + e2 * pz) / (n1([y]) + e2);
  const pzGivenXY = (n1([x, y, z]) + e3 * pzGivenY) / (n1([x, y]) + e3);

  const unigram = await json('prob', z, ...eps);
  t.equal(unigram.mle, n1([z]) / n);
  t.ok(Math.abs(unigram.smoothed - pz) < 1e-15, 'P(z)');
  const bigram = await json('prob', z, '--given', y, ...eps);
  t.equal(bigram.mle, n1([y, z]) / n1([y]));
  t.ok(Math.abs(bigram.smoothed - pzGivenY) < 1e-15, 'P(z | y)');
  const trigram = await json('prob', z, '--given', x, y, ...eps);
  t.equal(trigram.mle, n1([x, y, z]) / n1([x, y]));
  t.ok(Math.abs(trigram.smoothed - pzGivenXY) < 1e-15, 'P(z | x y)');
  t.same(trigram.levels.map((level: { given: string[] }) => level.given), [[], [y], [x, y]]);
  t.same([trigram.tokens, trigram.types, trigram.eps], [n, m, [e1, e2, e3]]);

  const defaults = await json('prob', z, '--given', y);
  const pz1 = (n1([z]) + 1 / m) / (n + 1);
  t.ok(Math.abs(defaults.smoothed - (n1([y, z]) + pz1) / (n1([y]) + 1)) < 1e-15, 'ε defaults to 1');

  const unseen = await json('prob', z, '--given', 'nonsense');
  t.equal(unseen.mle, null, 'MLE undefined for an unseen history');
  t.ok(Math.abs(unseen.smoothed - pz1) < 1e-15, 'an unseen history backs off to the unigram');
  const tooLong = await run('prob', z, '--given', x, y, z, '--db', db);
  t.equal(tooLong.code, 2);
  t.match(tooLong.stderr, /Expected at most 2 tokens after `--given`/);
  const badEps = await run('prob', z, '--eps2', '-1', '--db', db);
  t.equal(badEps.stderr, 'error: query: Expected `--eps2` to be a number of at least 0, got `-1`');
});

t.test('zipf matches a direct least-squares fit of the same ranks', async (t) => {
  const counts = [...brute.orders[0].values()].sort((a, b) => b - a);
  const fit = (from: number, to: number) => {
    const xs = counts.slice(from - 1, to).map((_, i) => Math.log(from + i));
    const ys = counts.slice(from - 1, to).map(Math.log);
    const k = xs.length;
    const [sx, sy] = [xs.reduce((a, b) => a + b), ys.reduce((a, b) => a + b)];
    const sxx = xs.reduce((a, x) => a + x * x, 0);
    const sxy = xs.reduce((a, x, i) => a + x * ys[i], 0);
    const slope = (k * sxy - sx * sy) / (k * sxx - sx * sx);
    const c = (sy - slope * sx) / k;
    const residual = ys.reduce((a, y, i) => a + (y - (slope * xs[i] + c)) ** 2, 0);
    const spread = ys.reduce((a, y) => a + (y - sy / k) ** 2, 0);
    return { alpha: -slope, c, r2: 1 - residual / spread, points: k };
  };
  const lastAboveOne = counts.filter((count) => count > 1).length;
  for (const [argv, from, to] of [[[], 1, lastAboveOne], [['--from', '3', '--to', '20'], 3, 20]] as const) {
    const answer = await json('zipf', ...argv);
    const expected = fit(from, to);
    t.same([answer.from, answer.to, answer.points], [from, to, expected.points]);
    t.ok(Math.abs(answer.alpha - expected.alpha) < 1e-9, `alpha ${answer.alpha} vs ${expected.alpha}`);
    t.ok(Math.abs(answer.c - expected.c) < 1e-9, 'c');
    t.ok(Math.abs(answer.r2 - expected.r2) < 1e-9, 'R²');
  }
  const bad = await run('zipf', '--to', '100000', '--db', db);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /Expected `--to` to be an integer from 2 to \d+ \(the number of ranks\), got `100000`/);
});

t.test('zipf recovers α from exact power-law counts with R² = 1', async (t) => {
  // n_i = 27720² / i² is an integer for i = 1..12 (27720 = lcm(1..12)): an exact α of 2.
  const path = join(dir, 'zipf.sqlite');
  const handle = openRunDatabase(path);
  handle.transaction(() => {
    for (let i = 1; i <= 12; i++) {
      handle.prepare('INSERT INTO tokens VALUES (?, ?)').run(i, `t${i}`);
      handle.prepare('INSERT INTO ngram1 VALUES (?, ?)').run(i, 27720 ** 2 / i ** 2);
    }
  })();
  handle.close();
  const result = await run('zipf', '--db', path, '--json');
  const answer = JSON.parse(result.stdout);
  t.ok(Math.abs(answer.alpha - 2) < 1e-12, `alpha ${answer.alpha}`);
  t.ok(Math.abs(answer.c - Math.log(27720 ** 2)) < 1e-9, 'c = log n_1');
  t.ok(Math.abs(answer.r2 - 1) < 1e-12, 'R² = 1');
  t.equal(answer.points, 12);
});

t.test('sql runs read-only statements and rejects writes', async (t) => {
  const [x, y] = documents.find((d) => d.length >= 2)!;
  const answer = await json('sql', `SELECT n, tokens, count FROM ngram_counts WHERE tokens = json_array('${x}', '${y}')`);
  t.same(answer, { columns: ['n', 'tokens', 'count'], rows: [{ n: 2, tokens: JSON.stringify([x, y]), count: n1([x, y]) }], truncated: false });
  const limited = await json('sql', 'SELECT id FROM vocab ORDER BY id', '--max-rows', '3');
  t.same([limited.rows.length, limited.truncated], [3, true]);
  const text = await run('sql', 'SELECT id, token FROM vocab ORDER BY id LIMIT 2', '--db', db);
  t.equal(text.stdout, 'id  token\n 0  <unk>\n 1  <pad>');

  const insert = await run('sql', "INSERT INTO meta VALUES ('x', 'y')", '--db', db);
  t.equal(insert.code, 2);
  t.match(insert.stderr, /^error: query: Expected a read-only statement .*got `INSERT INTO meta/);
  const pragma = await run('sql', 'PRAGMA user_version = 9', '--db', db);
  t.equal(pragma.code, 2);
  const sneaky = await run('sql', 'WITH x AS (SELECT 1) DELETE FROM vocab', '--db', db);
  t.equal(sneaky.code, 2, 'a write behind WITH is stopped by the read-only connection');
  t.match(sneaky.stderr, /^error: query: Expected a read-only statement .*got `WITH x AS/);
  const syntax = await run('sql', 'SELECT FROM', '--db', db);
  t.same([syntax.code, syntax.stderr], [2, 'error: query: SQL error: near "FROM": syntax error']);
  t.equal((await json('vocab', '--k', '0')).size, brute.vocab.length, 'vocab is intact');
  const reads = await json('sql', 'PRAGMA table_info(vocab)');
  t.same(reads.rows.map((row: { name: string }) => row.name), ['id', 'token', 'count']);
});

t.test('usage errors: unknown flag, bad value, missing arguments', async (t) => {
  const flag = await run('top', '--m', '2', '--db', db);
  t.same([flag.code, flag.stderr], [2, 'error: query: Unknown flag `--m` for `top`; see `top --help`']);
  const value = await run('top', '--k', 'ten', '--db', db);
  t.same([value.code, value.stderr], [2, 'error: query: Expected `--k` to be an integer of at least 1, got `ten`']);
  const missing = await run('count', '--db', db);
  t.equal(missing.code, 2);
  t.match(missing.stderr, /Expected one or more tokens after `count`/);
  const unknown = await run('frobnicate');
  t.match(unknown.stderr, /Unknown subcommand `frobnicate`; expected one of top, count/);
  const help = await run('prob', '--help');
  t.equal(help.code, 0);
  t.match(help.stdout, /Usage: npm run query -- prob <token>.*\n[\s\S]*--eps3 N/);
  const noDb = await run('top', '--out', join(dir, 'nowhere'));
  t.equal(noDb.code, 4);
  t.equal(noDb.stderr, `error: query: No database at ${join(dir, 'nowhere', 'lmpipe.sqlite')}; run \`npm start\` (or \`npm run pipeline -- --out DIR\`) first, or pass \`--db PATH\``);
});

t.test('each subcommand\'s --help names a flag\'s value as its usage line does, and every flag it names exists', async (t) => {
  for (const command of QUERY_COMMANDS) {
    const help = (await run(command.name, '--help')).stdout.split('\n');
    for (const [, flag, value] of command.usage.matchAll(/\[--([\w-]+)(?: ([^\]]+))?\]/g)) {
      t.ok(flag in command.flags, `${command.name}: --${flag} is one of its flags`);
      const line = help.find((l) => l.startsWith(`  --${flag} `) || l === `  --${flag}`);
      t.equal(line?.trim().split(/\s{2,}/)[0], value ? `--${flag} ${value}` : `--${flag}`, `${command.name} --${flag}`);
    }
  }
});

t.test('the CLI prints one line and exits non-zero on failure, JSON on success', async (t) => {
  const root = fileURLToPath(new URL('../../..', import.meta.url));
  const cli = (...argv: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'scripts/query.ts', ...argv], { cwd: root, encoding: 'utf8' });
  const missing = cli('vocab', '--out', join(dir, 'absent'));
  t.equal(missing.status, 4);
  t.equal(missing.stderr.trim().split('\n').length, 1);
  t.match(missing.stderr, /No database at .*absent\/lmpipe\.sqlite; run `npm start`/);
  const bad = cli('top', '--n', '9', '--db', db);
  t.equal(bad.status, 2);
  t.equal(bad.stderr.trim(), 'error: query: Expected `--n` to be at most 3 (the order this run counted), got `9`');
  const good = cli('count', 'w0', '--db', db, '--json');
  t.equal(good.status, 0, good.stderr);
  t.same(JSON.parse(good.stdout), { tokens: ['w0'], n: 1, count: n1(['w0']), unknown: [] });
});

t.test('a database whose count stage is still running warns that counts are partial', async (t) => {
  const path = join(dir, 'partial.sqlite');
  writeDatabase(path, bruteCounts([['a', 'b']], 2));
  const handle = openRunDatabase(path);
  handle.prepare("INSERT INTO stages VALUES ('count', 'running', 'f', '{}', 'now')").run();
  handle.close();
  const result = await run('count', 'a', 'b', '--db', path);
  t.equal(result.code, 0);
  t.match(result.stderr, /count stage has not finished/);
  writeFileSync(join(dir, 'not-sqlite.sqlite'), 'hello');
  const garbage = await run('top', '--db', join(dir, 'not-sqlite.sqlite'));
  t.equal(garbage.code, 4);
  t.match(garbage.stderr, /^error: query: Cannot (open|read) .*not-sqlite\.sqlite as SQLite/);
});
