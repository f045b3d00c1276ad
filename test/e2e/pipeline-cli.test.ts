/**
 * scripts/run-pipeline.ts as a user meets it: help, one-line errors with documented exit codes, the
 * one-run-per-directory lock, Ctrl-C at a safe point with a resume hint, status, skip on rerun.
 */
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeCorpus } from '../helpers/corpus-fixture.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const script = join(root, 'scripts/run-pipeline.ts');
const pipeline = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', script, ...args], { cwd: root, encoding: 'utf8' });
const tmp = () => mkdtempSync(join(tmpdir(), 'lmpipe-cli-'));

t.test('--help lists every flag group and the exit codes', async (t) => {
  const run = pipeline(['--help']);
  t.equal(run.status, 0);
  for (const flag of ['--input', '--out', '--tokenizer', '--order', '--until', '--fresh', '--epochs', '--sampler', '--cell', '--config']) {
    t.match(run.stdout, flag);
  }
  t.match(run.stdout, /130 interrupted/);
});

t.test('bad flags and inputs fail with one line and a documented exit code', async (t) => {
  const badFlag = pipeline(['--order', '9']);
  t.equal(badFlag.status, 2);
  t.equal(badFlag.stderr, 'error: pipeline: Expected `--order` to be an integer from 1 to 5, got `9`\n');
  const missing = join(tmp(), 'nope.txt');
  const badInput = pipeline(['--input', missing, '--out', tmp(), '--until', 'count']);
  t.equal(badInput.status, 3);
  t.equal(badInput.stderr.trim().split('\n').length, 1, 'one line');
  t.match(badInput.stderr, missing);
  const binary = join(tmp(), 'blob.txt');
  writeFileSync(binary, Buffer.from('text\n\0more'));
  const refused = pipeline(['--input', binary, '--out', tmp(), '--until', 'count', '--quiet']);
  t.equal(refused.status, 3);
  t.match(refused.stderr, /blob\.txt at byte 5: .*binary/);
});

t.test('a second run on the same directory fails at once; Ctrl-C stops at a safe point', async (t) => {
  const dir = tmp();
  const inputs = writeCorpus(dir, { files: 2, lines: 100 });
  const out = join(dir, 'run');
  const flags = ['--input', ...inputs, '--out', out, '--tokenizer', 'd2l-char', '--max-tokens', '0',
    '--hidden', '16', '--epochs', '200', '--batch', '4', '--steps', '8', '--backend', 'cpu'];
  const first = spawn(process.execPath, ['--import', 'tsx', script, ...flags], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  first.stderr.on('data', (chunk) => (stderr += chunk));
  // Wait until training is under way, then try a second run and interrupt the first.
  await new Promise<void>((resolve) => {
    const check = setInterval(() => {
      if (/train: (started|epoch)/.test(stderr)) {
        clearInterval(check);
        resolve();
      }
    }, 100);
  });
  const second = pipeline([...flags, '--quiet']);
  t.equal(second.status, 4, 'locked');
  t.match(second.stderr, /^error: pipeline: Another lmpipe run \(pid \d+, since .*\) is using .*; wait for it or stop it first\n$/);
  first.kill('SIGINT');
  const code = await new Promise((resolve) => first.on('exit', resolve));
  t.equal(code, 130);
  t.match(stderr, /\ntrain: Interrupted at a safe point; run the same command again to resume/);
  t.match(stderr, /Resume with: npm run pipeline -- --input/);
  const status = pipeline(['status', '--out', out]);
  t.match(status.stdout, /read\+tokenize\+count\s+done/);
  t.match(status.stdout, /train\s+partly done/);
});

t.test('a finished run is skipped when nothing changed', async (t) => {
  const dir = tmp();
  const inputs = writeCorpus(dir, { files: 1, lines: 80 });
  const args = ['--input', ...inputs, '--out', join(dir, 'run'), '--tokenizer', 'd2l-word', '--until', 'vocab'];
  t.equal(pipeline(args).status, 0);
  const again = pipeline(args);
  t.equal(again.status, 0);
  t.match(again.stderr, /count: up to date, skipped\nvocab: up to date, skipped/);
  t.match(again.stdout, /corpus\s+[\d,]+ tokens/);
});
