/**
 * What every script does around its work, written once:
 *
 *   runMain('generate', async ({ signal }) => { ... });
 *
 * - A failure is one line on stderr, `error: <stage or command>: <message>`, and the exit code its
 *   kind maps to (lib/errors.ts); the stack only for an internal error with LMPIPE_DEBUG=1. With
 *   `--json` on the command line, the failure is also a JSON `error` event on stdout.
 * - Ctrl-C and SIGTERM abort `signal`: the work stops at its next safe point and the script exits
 *   with 130, printing `interrupted` (e.g. the command that resumes). A second Ctrl-C leaves at
 *   once; the last checkpoint still holds. A clean stop is not printed as an error.
 * - A closed pipe (`generate ... | head`) ends the program quietly, as `head` expects.
 */
import { resolve } from 'node:path';
import { endQuietlyOnClosedPipe } from '../lib/closed-pipe.ts';
import { describeFailure, EXIT_CODES, LmpipeError } from '../lib/errors.ts';
import { interruptSignal } from '../lib/interrupt.ts';

export interface MainContext {
  /** Aborted on the first Ctrl-C or SIGTERM. */
  signal: AbortSignal;
}

export interface MainOptions {
  /** What to print after a clean stop (Ctrl-C at a safe point), e.g. the command that resumes. */
  interrupted?(): string;
  /** The signals that stop the work at a safe point (default: SIGINT and SIGTERM). */
  stopOn?: NodeJS.Signals[];
}

/**
 * A path given by the user, made absolute against the directory they ran the command in: npm run
 * moves to the package root and keeps the user's directory in INIT_CWD. Only when this process runs
 * in that root (npm moved it) is INIT_CWD used: a child started elsewhere keeps its own directory.
 */
export function userPath(path: string): string {
  if (path === '-') return path;
  const npmRoot = process.env.npm_package_json ? resolve(process.env.npm_package_json, '..') : undefined;
  const base = process.env.INIT_CWD && npmRoot === process.cwd() ? process.env.INIT_CWD : process.cwd();
  return resolve(base, path);
}

/** A run directory the user named: relative paths stay relative when the user is in this directory. */
export function userDir(path: string): string {
  const absolute = userPath(path);
  return absolute === resolve(path) ? path : absolute;
}

/** Runs a script's `main`, then exits with the code its outcome maps to. */
export function runMain(command: string, main: (context: MainContext) => Promise<void> | void, options: MainOptions = {}): void {
  endQuietlyOnClosedPipe();
  const { signal } = interruptSignal({
    signals: options.stopOn,
    onStop: () => process.stderr.write('\nStopping at the next safe point (Ctrl-C again to quit now)...\n'),
  });
  Promise.resolve()
    .then(() => main({ signal }))
    .then(
      () => process.exit(process.exitCode ?? 0),
      (error: unknown) => process.exit(reportFailure(command, error, options)),
    );
}

/** The one line of a failure, naming the stage it happened in, or else the command. */
export function failureLine(command: string, error: unknown): { line: string; exitCode: number } {
  const { line, exitCode } = describeFailure(error);
  return { line: error instanceof LmpipeError && error.stage ? line : line.replace(/^error: /, `error: ${command}: `), exitCode };
}

/** Prints a failure as one line (and a JSON event with --json); returns the exit code. */
export function reportFailure(command: string, error: unknown, options: MainOptions = {}): number {
  const { line: named, exitCode } = failureLine(command, error);
  if (error instanceof LmpipeError && error.code === 'INTERRUPTED') {
    process.stderr.write(`${error.stage ?? command}: ${error.message}\n`);
    if (options.interrupted) process.stderr.write(options.interrupted() + '\n');
  } else {
    process.stderr.write(named + '\n');
  }
  if (process.argv.includes('--json')) {
    const place = error instanceof LmpipeError ? { code: error.code, stage: error.stage, file: error.file, position: error.position } : {};
    process.stdout.write(JSON.stringify({ time: new Date().toISOString(), type: 'error', message: named.replace(/^error: /, ''), exitCode, ...place }) + '\n');
  }
  if (exitCode === EXIT_CODES.INTERNAL && error instanceof Error && process.env.LMPIPE_DEBUG) process.stderr.write(`${error.stack}\n`);
  return exitCode;
}
