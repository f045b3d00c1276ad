/**
 * acquireLock() when runs race for a run directory: two takeovers of one stale lock, a lock that is
 * not valid JSON, a lock from another host, and a release that must not remove another run's lock.
 */
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { acquireLock } from '../../../pipeline/lock.ts';

const holderScript = fileURLToPath(new URL('../../helpers/lock-holder.ts', import.meta.url));
const tmp = () => mkdtempSync(join(tmpdir(), 'lmpipe-lock-'));
const owner = (dir: string) => JSON.parse(readFileSync(join(dir, 'lock'), 'utf8'));

/** A pid that belonged to a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => child.on('exit', resolve));
  return child.pid!;
}

/** Blocks this thread until `check()` holds (the other process runs on meanwhile). */
function waitSync(check: () => boolean, what: string): void {
  const deadline = Date.now() + 60_000;
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    Atomics.wait(sleeper, 0, 0, 20);
  }
}

t.test('acquireLock(): of two runs taking over one stale lock, one wins and the other is refused', async (t) => {
  const dir = tmp();
  writeFileSync(join(dir, 'lock'), JSON.stringify({ pid: await deadPid(), host: hostname(), since: 'yesterday' }));
  let holder: ChildProcess | undefined;
  t.teardown(() => holder?.kill('SIGKILL'));
  // This run judges the lock stale; before it takes it over, another process takes it over.
  const race = () => {
    holder = spawn(process.execPath, ['--import', 'tsx', holderScript, dir], { stdio: 'ignore' });
    waitSync(() => existsSync(join(dir, 'lock')) && readFileSync(join(dir, 'lock'), 'utf8').includes(`"pid":${holder!.pid},`), 'the other run to take the lock');
  };
  t.throws(() => acquireLock(dir, { onStale: race }), { code: 'STATE', message: new RegExp(`Another lmpipe run \\(pid ${holder?.pid ?? '\\d+'}`) }, 'the late one is refused');
  t.equal(owner(dir).pid, holder!.pid, 'the winner still holds its lock');
  t.same(readdirSync(dir), ['lock'], 'no temp file is left behind');
  holder!.kill('SIGKILL');
  await new Promise((resolve) => holder!.on('exit', resolve));
  const lock = acquireLock(dir);
  t.equal(owner(dir).pid, process.pid, 'once the winner is gone its lock is stale and taken over');
  lock.release();
  t.same(readdirSync(dir), [], 'released');
});

t.test('acquireLock() takes over a lock that is not valid JSON', async (t) => {
  const dir = tmp();
  writeFileSync(join(dir, 'lock'), '{"pid": 12');
  const lock = acquireLock(dir);
  t.equal(owner(dir).pid, process.pid);
  lock.release();
});

t.test('acquireLock() refuses a lock from another host and leaves it', async (t) => {
  const dir = tmp();
  const foreign = JSON.stringify({ pid: await deadPid(), host: `not-${hostname()}`, since: '2026-01-01T00:00:00.000Z' });
  writeFileSync(join(dir, 'lock'), foreign);
  t.throws(() => acquireLock(dir), {
    code: 'STATE',
    message: `The run directory ${dir} is locked by pid ${JSON.parse(foreign).pid} on host not-${hostname()} (since 2026-01-01T00:00:00.000Z); if that run is gone, delete ${join(dir, 'lock')}`,
  });
  t.equal(readFileSync(join(dir, 'lock'), 'utf8'), foreign, 'the lock is left as it was');
});

t.test('Lock.release() leaves alone a lock that is no longer its own', async (t) => {
  const dir = tmp();
  const lock = acquireLock(dir);
  const other = JSON.stringify({ pid: process.pid, host: hostname(), since: 'now', token: 'another run' });
  writeFileSync(join(dir, 'lock'), other);
  lock.release();
  t.equal(readFileSync(join(dir, 'lock'), 'utf8'), other);
});
