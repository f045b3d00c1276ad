/**
 * Flag parsing for `npm run query`: global flags (`--db`, `--out`, `--json`, `--help`) anywhere,
 * then one subcommand with its own flags and positionals. `--flag value` and `--flag=value`;
 * a list flag (`--given the time`) takes the words up to the next known flag; `--` ends flags, so
 * a token that itself starts with `--` can still be given (`count -- --foo`).
 */

export type FlagKind = 'integer' | 'number' | 'string' | 'boolean' | 'list';
export type FlagValue = number | string | boolean | string[];

export interface FlagSpec {
  kind: FlagKind;
  /** Shown in --help. */
  help: string;
  default?: FlagValue;
  /** Smallest accepted value of a number flag. */
  min?: number;
  /** The value's name in --help ("PATH"); N for numbers and S for strings otherwise. */
  value?: string;
}

export interface CommandSpec {
  name: string;
  /** `count <tokens...>` */
  usage: string;
  summary: string;
  flags: Record<string, FlagSpec>;
  /** Fewest and most positionals; most undefined: no limit. */
  positionals: { min: number; max?: number; name: string };
  /** Lines of examples and notes for --help. */
  notes: string[];
}

export interface ParsedQueryArgs {
  command?: CommandSpec;
  positionals: string[];
  /** Flag values by name without dashes ("eps1"), defaults filled in. */
  flags: Record<string, FlagValue | undefined>;
  help: boolean;
}

export const GLOBAL_FLAGS: Record<string, FlagSpec> = {
  db: { kind: 'string', value: 'PATH', help: 'Run database (default: DIR/lmpipe.sqlite)' },
  out: { kind: 'string', value: 'DIR', help: 'Run directory', default: 'runs/timemachine' },
  json: { kind: 'boolean', help: 'Print one JSON document instead of a table', default: false },
};

function parseValue(flag: string, spec: FlagSpec, raw: string | undefined): FlagValue {
  if (raw === undefined) throw new TypeError(`Expected a value after \`${flag}\``);
  if (spec.kind === 'string') return raw;
  const value = Number(raw);
  const min = spec.min ?? -Infinity;
  if (spec.kind === 'integer' && (!/^-?\d+$/.test(raw.trim()) || value < min)) {
    throw new TypeError(`Expected \`${flag}\` to be an integer of at least ${min}, got \`${raw}\``);
  }
  if (raw.trim() === '' || !Number.isFinite(value) || value < min) {
    throw new TypeError(`Expected \`${flag}\` to be a number of at least ${min}, got \`${raw}\``);
  }
  return value;
}

function withDefaults(command: CommandSpec | undefined): Record<string, FlagValue | undefined> {
  const specs = { ...GLOBAL_FLAGS, ...command?.flags };
  return Object.fromEntries(Object.entries(specs).map(([name, spec]) => [name, spec.default]));
}

/** Parses argv (after the script name); throws TypeError naming the flag on bad input. */
export function parseQueryArgs(argv: readonly string[], commands: readonly CommandSpec[]): ParsedQueryArgs {
  let command: CommandSpec | undefined;
  const positionals: string[] = [];
  const given: Record<string, FlagValue> = {};
  let help = false;
  let flagsEnded = false;
  const specOf = (name: string) => (command?.flags[name] ?? GLOBAL_FLAGS[name]) as FlagSpec | undefined;
  const isFlag = (arg: string) => arg === '--' || arg === '--help' || (arg.startsWith('--') && specOf(arg.slice(2).split('=')[0]) !== undefined);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!flagsEnded && (arg === '--help' || arg === '-h')) {
      help = true;
    } else if (!flagsEnded && arg === '--') {
      flagsEnded = true;
    } else if (!flagsEnded && arg.startsWith('--')) {
      const equals = arg.indexOf('=');
      const [flag, inline] = equals > 0 ? [arg.slice(0, equals), arg.slice(equals + 1)] : [arg, undefined];
      const spec = specOf(flag.slice(2));
      if (!spec) {
        throw new TypeError(`Unknown flag \`${flag}\`${command ? ` for \`${command.name}\`` : ''}; see ${command ? `\`${command.name} --help\`` : '--help'}`);
      }
      if (spec.kind === 'boolean') {
        if (inline !== undefined && inline !== 'true' && inline !== 'false') {
          throw new TypeError(`Expected \`${flag}\` to be true or false, got \`${inline}\``);
        }
        given[flag.slice(2)] = inline !== 'false';
      } else if (spec.kind === 'list') {
        const items = inline === undefined ? [] : [inline];
        while (inline === undefined && i + 1 < argv.length && !isFlag(argv[i + 1])) items.push(argv[++i]);
        given[flag.slice(2)] = items;
      } else {
        given[flag.slice(2)] = parseValue(flag, spec, inline ?? argv[++i]);
      }
    } else if (!command && positionals.length === 0 && !flagsEnded) {
      command = commands.find((candidate) => candidate.name === arg);
      if (!command) {
        throw new TypeError(`Unknown subcommand \`${arg}\`; expected one of ${commands.map((c) => c.name).join(', ')}`);
      }
    } else {
      positionals.push(arg);
    }
  }
  if (command && !help) checkPositionals(command, positionals);
  return { command, positionals, flags: { ...withDefaults(command), ...given }, help };
}

function checkPositionals(command: CommandSpec, positionals: string[]): void {
  const { min, max, name } = command.positionals;
  if (positionals.length < min) throw new TypeError(`Expected ${name} after \`${command.name}\`; usage: ${command.usage}`);
  if (max !== undefined && positionals.length > max) {
    throw new TypeError(`Unexpected argument \`${positionals[max]}\` for \`${command.name}\`; usage: ${command.usage}`);
  }
}

function flagLines(flags: Record<string, FlagSpec>): string[] {
  return Object.entries(flags).map(([name, spec]) => {
    const shown = spec.kind === 'boolean' || spec.kind === 'list' ? `--${name}` : `--${name} ${spec.value ?? (spec.kind === 'string' ? 'S' : 'N')}`;
    const fallback = spec.default !== undefined && spec.kind !== 'boolean' ? ` [default: ${spec.default}]` : '';
    return `  ${shown.padEnd(16)} ${spec.help}${fallback}`;
  });
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
