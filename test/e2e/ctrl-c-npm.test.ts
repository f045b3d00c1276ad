/**
 * Ctrl-C through the documented command, `npm run pipeline`, as a terminal delivers it: SIGINT to
 * the whole foreground process group (npm and the pipeline), which npm then forwards once more.
 * The run must stop at a safe point, print the resume command, exit 130 only after the stop, and
 * leave no lock or WAL behind. (Through tsx's CLI the child was SIGKILLed 60 ms after a signal its
 * busy event loop had not acknowledged, and `sh -c` died at once, so npm returned mid-stop.)
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeCorpus } from '../helpers/corpus-fixture.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** Starts `npm run pipeline` in its own process group; resolves once `ready` matches its stderr. */
function startPipeline(args: string[], ready: RegExp) {
  const child = spawn('npm', ['run', 'pipeline', '--', ...args], { cwd: root, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const started = new Promise<void>((resolve) => {
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
      if (ready.test(stderr)) resolve();
    });
  });
  return { child, started, exited, stderr: () => stderr };
}

const groupAlive = (pid: number) => {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
};

t.test('npm run pipeline: Ctrl-C sent to the process group stops at a safe point before npm returns', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lmpipe-ctrl-c-'));
  const out = join(dir, 'run');
  const inputs = writeCorpus(dir, { files: 1, lines: 150 });
  const run = startPipeline(['--input', ...inputs, '--out', out, '--max-tokens', '0', '--hidden', '32',
    '--epochs', '100000', '--batch', '4', '--steps', '8', '--backend', 'cpu'], /train: epoch 1\//);
  t.teardown(() => {
    if (groupAlive(run.child.pid!)) process.kill(-run.child.pid!, 'SIGKILL');
  });
  await run.started;
  process.kill(-run.child.pid!, 'SIGINT'); // as a terminal does: npm and the pipeline both get it
  const code = await run.exited;
  t.equal(code, 130, 'npm exits with the pipeline\'s code');
  t.match(run.stderr(), /Stopping at the next safe point/);
  t.match(run.stderr(), /Resume with: npm run pipeline -- --input/);
  t.notOk(groupAlive(run.child.pid!), 'nothing of the run is left running after npm returns');
  for (const leftover of ['lock', 'lmpipe.sqlite-wal', 'lmpipe.sqlite-shm']) t.notOk(existsSync(join(out, leftover)), `no ${leftover}`);
});
