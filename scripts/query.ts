/**
 * `npm run query -- <subcommand> [--db PATH | --out DIR] [--json] ...`: reads a run database
 * (read-only) and answers questions about its counts: top, count, vocab, prob, zipf, perplexity, sql.
 *
 *   npm run query -- top --n 2 --k 10
 *   npm run query -- prob time --given the --json
 *
 * Errors are one line on stderr with a non-zero exit (2 for usage errors), never a stack trace.
 */
import { pathToFileURL } from 'node:url';
import { parseQueryArgs, helpText } from '../analysis/query/index.ts';
import { QUERY_COMMANDS } from '../analysis/query/index.ts';
import { openQueryDatabase } from '../storage/open-readonly.ts';
import { queries } from '../storage/queries.ts';
import { endQuietlyOnClosedPipe } from '../lib/closed-pipe.ts';
import { failureLine, userPath } from '../pipeline/run-main.ts';
import { runPaths } from '../storage/run-paths.ts';

export interface QueryIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

const processIo: QueryIo = {
  stdout: (text) => process.stdout.write(text + '\n'),
  stderr: (text) => process.stderr.write(text + '\n'),
};

/** Runs the query tool on `argv` (the words after the script name); resolves to the exit code. */
export async function query(argv: readonly string[], io: QueryIo = processIo): Promise<number> {
  try {
    const args = parseQueryArgs(argv, QUERY_COMMANDS);
    if (args.help || !args.command) {
      io.stdout(helpText(QUERY_COMMANDS, args.command));
      return args.help ? 0 : 2;
    }
    const command = QUERY_COMMANDS.find((candidate) => candidate.name === args.command!.name)!;
    const path = userPath((args.flags.db as string | undefined) ?? runPaths(args.flags.out as string).database);
    const db = openQueryDatabase(path);
    try {
      const q = queries(db);
      if (q.stageState('count') === 'running') {
        io.stderr('warning: the count stage has not finished in this run; counts are partial');
      }
      const answer = await command.run({ q, positionals: args.positionals, flags: args.flags });
      io.stdout(args.flags.json ? JSON.stringify(answer.json, null, 2) : answer.text);
      return 0;
    } finally {
      db.close();
    }
  } catch (error) {
    const { line, exitCode } = failureLine('query', error);
    io.stderr(line);
    return exitCode;
  }
}

const isMain = (globalThis as { Deno?: unknown }).Deno !== undefined
  ? (import.meta as { main?: boolean }).main === true
  : process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;

if (isMain) {
  endQuietlyOnClosedPipe();
  process.exitCode = await query(process.argv.slice(2));
}
