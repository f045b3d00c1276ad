/**
 * One run per run directory at a time. The lock file holds its owner's pid, host, start time and a
 * random token, as JSON: `{"pid":123,"host":"box","since":"2026-...Z","token":"..."}`.
 *
 * - It appears complete or not at all: written to a temp file, then hard-linked to `lock`, which
 *   fails when a lock exists. (The old open-then-write left a moment when another run could read
 *   an empty lock, judge it stale and take it.)
 * - A lock whose owner is gone (a run killed with -9) on this host is stale and taken over, so it
 *   never stays stuck; so is one that is not valid JSON (written by something else).
 * - A lock from another host is never taken over: its pid cannot be checked from here. The error
 *   names the host and says to delete the lock if that run is gone.
 * - Several runs may find one stale lock at once. Each moves it aside under a name of its own
 *   (rename is atomic: only one of them gets any one file) and deletes it only if it is the very
 *   lock it judged stale (same token); a fresh lock moved aside by mistake is linked back.
 */
import { linkSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { LmpipeError } from '../lib/errors.ts';
import { runPaths } from '../storage/run-paths.ts';

export interface Lock {
  release(): void;
}

export interface LockOptions {
  /** Called after a lock was judged stale and before it is taken over: tests race another run here. */
  onStale?: () => void;
}

interface Owner {
  pid?: number;
  host?: string;
  since?: string;
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

const errorCode = (error: unknown) => (error as NodeJS.ErrnoException).code;

/** The lock's text, or undefined when there is none (it was released or moved meanwhile). */
function readLock(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return undefined;
    throw error;
  }
}

function parseOwner(text: string): Owner {
  try {
    const owner = JSON.parse(text);
    return owner && typeof owner === 'object' ? owner : {};
  } catch {
    return {};
  }
}

/** Removes the lock at `path` if it still holds `stale`; puts back a lock another run made meanwhile. */
function takeOver(path: string, stale: string): void {
  const aside = `${path}.stale-${randomUUID()}`;
  try {
    renameSync(path, aside);
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return; // another run moved it first
    throw error;
  }
  if (readFileSync(aside, 'utf8') !== stale) {
    try {
      linkSync(aside, path);
    } catch (error) {
      if (errorCode(error) !== 'EEXIST') throw error;
    }
  }
  rmSync(aside, { force: true });
}

export function acquireLock(dir: string, options: LockOptions = {}): Lock {
  mkdirSync(dir, { recursive: true });
  const path = runPaths(dir).lock;
  const mine = JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString(), token: randomUUID() });
  const temp = `${path}.new-${randomUUID()}`;
  writeFileSync(temp, mine);
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        linkSync(temp, path);
        return { release: () => (readLock(path) === mine ? rmSync(path, { force: true }) : undefined) };
      } catch (error) {
        if (errorCode(error) !== 'EEXIST') throw error;
      }
      const text = readLock(path);
      if (text === undefined) continue;
      const owner = parseOwner(text);
      if (owner.host !== undefined && owner.host !== hostname()) {
        throw new LmpipeError('STATE', `The run directory ${dir} is locked by pid ${owner.pid} on host ${owner.host} (since ${owner.since}); ` +
          `if that run is gone, delete ${path}`);
      }
      if (owner.pid && owner.pid !== process.pid && ownerAlive(owner.pid)) {
        throw new LmpipeError('STATE', `Another lmpipe run (pid ${owner.pid}, since ${owner.since}) is using ${dir}; wait for it or stop it first`);
      }
      options.onStale?.();
      takeOver(path, text);
    }
    throw new LmpipeError('STATE', `Could not take the lock ${path}`);
  } finally {
    rmSync(temp, { force: true });
  }
}
