/**
 * One run per run directory at a time. The lock is a file holding the owner's pid; a lock whose
 * owner no longer exists (a run killed with -9) is stale and taken over, so it never stays stuck.
 */
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { LmpipeError } from '../lib/errors.ts';
import { runPaths } from '../storage/run-paths.ts';

export interface Lock {
  release(): void;
}

function ownerAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function acquireLock(dir: string): Lock {
  mkdirSync(dir, { recursive: true });
  const path = runPaths(dir).lock;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() }));
      closeSync(fd);
      return { release: () => rmSync(path, { force: true }) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    let owner: { pid?: number; host?: string; since?: string } = {};
    try {
      owner = JSON.parse(readFileSync(path, 'utf8'));
    } catch {
      // Half-written by an owner killed mid-write: treat as stale.
    }
    const sameHost = owner.host === undefined || owner.host === hostname();
    if (owner.pid && owner.pid !== process.pid && sameHost && ownerAlive(owner.pid)) {
      throw new LmpipeError(
        'STATE',
        `Another lmpipe run (pid ${owner.pid}, since ${owner.since}) is using ${dir}; wait for it or stop it first`,
      );
    }
    rmSync(path, { force: true });
  }
  throw new LmpipeError('STATE', `Could not take the lock ${path}`);
}
