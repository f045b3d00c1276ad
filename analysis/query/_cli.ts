/**
 * The query tool's command line: global flags (`--db`, `--out`, `--json`, `--help`) anywhere, then
 * one subcommand with its own flags and positionals, parsed by the scripts' shared parser
 * (pipeline/args.ts).
 */
import { flagLines, parseCommandLine, type CommandSpec, type FlagSpec, type ParsedCommandLine } from '../../pipeline/args.ts';

export const GLOBAL_FLAGS: Record<string, FlagSpec> = {
  db: { kind: 'string', value: 'PATH', help: 'Run database (default: DIR/lmpipe.sqlite)' },
  out: { kind: 'string', value: 'DIR', help: 'Run directory', default: 'runs/timemachine' },
  json: { kind: 'boolean', help: 'Print one JSON document instead of a table', default: false },
};

/** Parses argv (after the script name); throws TypeError naming the flag on bad input. */
export function parseQueryArgs(argv: readonly string[], commands: readonly CommandSpec[]): ParsedCommandLine {
  return parseCommandLine(argv, { flags: GLOBAL_FLAGS, commands });
}

/** The tool's help, or one subcommand's. */
export function helpText(commands: readonly CommandSpec[], command?: CommandSpec): string {
  const global = ['Flags for every subcommand:', ...flagLines(GLOBAL_FLAGS), '  --help           This help'];
  if (command) {
    const own = Object.keys(command.flags).length > 0 ? ['Flags:', ...flagLines(command.flags), ''] : [];
    return [`Usage: npm run query -- ${command.usage}`, '', command.summary, '', ...own, ...global, '', ...command.notes].join('\n');
  }
  const width = Math.max(...commands.map((c) => c.usage.length));
  return [
    'Usage: npm run query -- <subcommand> [--db PATH | --out DIR] [--json] ...',
    '',
    'Reads the n-gram counts and vocabulary of a run database (read-only).',
    '',
    'Subcommands:',
    ...commands.map((c) => `  ${c.usage.padEnd(width)}  ${c.summary}`),
    '',
    ...global,
    '',
    'Run `npm run query -- <subcommand> --help` for its flags and examples.',
  ].join('\n');
}
