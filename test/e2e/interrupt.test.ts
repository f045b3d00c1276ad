/**
 * Stopping scripts/run-pipeline.ts from outside: SIGTERM stops at a safe point as Ctrl-C does (exit
 * 130, the resume command), and the resumed run warns when it trains on another backend; a second
 * Ctrl-C quits at once while the first waits for a safe point that has not come.
 */
import t from 'tap';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeCorpus } from '../helpers/corpus-fixture.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const script = join(root, 'scripts/run-pipeline.ts');
const tmp = () => mkdtempSync(join(tmpdir(), 'lmpipe-interrupt-'));

/** Starts the pipeline; `stderr()` is what it wrote so far, `until(re)` waits for it to match. */
function start(args: string[]) {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const until = (pattern: RegExp) => new Promise<void>((resolve, reject) => {
    const check = () => {
      if (pattern.test(stderr)) return resolve();
      if (child.exitCode !== null) return reject(new Error(`exited (${child.exitCode}) before ${pattern}: ${stderr}`));
      setTimeout(check, 50);
    };
    check();
  });
  return { child: child as ChildProcess, stderr: () => stderr, exited, until };
}

t.test('SIGTERM stops at a safe point; the resumed run on another backend warns and finishes', async (t) => {
  const dir = tmp();
  const inputs = writeCorpus(dir, { files: 2, lines: 150 });
  const flags = ['--input', ...inputs, '--out', join(dir, 'run'), '--tokenizer', 'd2l-char', '--max-tokens', '0',
    '--hidden', '16', '--epochs', '3', '--batch', '4', '--steps', '8', '--checkpoint-every', '20', '--until', 'train'];
  const first = start([...flags, '--backend', 'cpu']);
  t.teardown(() => first.child.kill('SIGKILL'));
  await first.until(/train: started/);
  first.child.kill('SIGTERM');
  t.equal(await first.exited, 130, 'exit 130');
  t.match(first.stderr(), /\ntrain: Interrupted at a safe point; run the same command again to resume\nResume with: npm run pipeline -- --input /, 'the safe point and the resume command');
  const resumed = spawnSync(process.execPath, ['--import', 'tsx', script, ...flags, '--backend', 'wasm'], { cwd: root, encoding: 'utf8' });
  t.equal(resumed.status, 0, 'the resumed run finishes');
  if (resumed.status !== 0) t.comment(resumed.stderr.slice(-500));
  t.match(resumed.stderr, /train: started \(resuming from its checkpoint\)/, 'it resumes');
  t.match(resumed.stderr, /train: the checkpoint was written on cpu and continues on wasm: the run stays valid but will not match an uninterrupted one bit for bit/, 'and warns of the other backend');
});

t.test('a second Ctrl-C quits at once while the first waits for a safe point', async (t) => {
  // Reading standard input that stays open and silent: counting cannot reach its next safe point.
  const run = start(['--input', '-', '--out', join(tmp(), 'run'), '--tokenizer', 'd2l-word', '--until', 'vocab']);
  t.teardown(() => run.child.kill('SIGKILL'));
  run.child.stdin!.write('the time traveller was expounding a recondite matter to us\n'.repeat(100));
  await run.until(/count: started/);
  run.child.kill('SIGINT');
  await run.until(/Stopping at the next safe point \(Ctrl-C again to quit now\)/);
  t.equal(run.child.exitCode, null, 'the first Ctrl-C waits for a safe point');
  // A signal within a second of the first is the same key press forwarded by npm (lib/interrupt.ts).
  await new Promise((resolve) => setTimeout(resolve, 1500));
  t.equal(run.child.exitCode, null, 'still waiting for the safe point');
  run.child.kill('SIGINT');
  t.equal(await run.exited, 130, 'the second quits with 130');
  t.notMatch(run.stderr(), /Interrupted at a safe point/, 'without waiting for the safe point');
});
