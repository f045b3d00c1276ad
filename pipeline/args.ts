/**
 * The one argument parser of every script: flags described by specs, optional subcommands with
 * their own flags and positionals, the same rules everywhere.
 *
 *   const args = parseCommandLine(argv, { flags: { out: { kind: 'string', help: 'Run directory' } } });
 *
 * - `--flag value` and `--flag=value`; a boolean is `--flag`, `--no-flag` or `--flag=false`.
 * - A list (`--given the time`, `--input a.txt b.txt`) takes the words up to the next `--` word;
 *   `--reserved ""` is an empty list, and a list flag with no word after it is an error.
 * - `--` ends flags, so a word that itself starts with `--` can still be given (`count -- --foo`).
 * - An unknown flag or subcommand is a TypeError that names it and the nearest known one.
 * - `--help` / `-h` anywhere asks for help (`helpText`).
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
  /** Further validation of a parsed value; throws a TypeError naming the flag. */
  check?(value: FlagValue, flag: string): void;
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

export interface ParsedCommandLine {
  command?: CommandSpec;
  positionals: string[];
  /** Flag values by name without dashes ("eps1"), defaults filled in. */
  flags: Record<string, FlagValue | undefined>;
  /** Only the flags given on the command line. */
  given: Record<string, FlagValue>;
  help: boolean;
}

export interface CommandLine {
  /** Flags of every subcommand (or of the script, when it has no subcommands). */
  flags: Record<string, FlagSpec>;
  commands?: readonly CommandSpec[];
  /** Flag names are written in camelCase in `flags` and in kebab-case on the command line. */
  kebab?: boolean;
}

/** "maxTokens" -> "max-tokens" */
export const toKebab = (name: string) => name.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
/** "max-tokens" -> "maxTokens" */
export const toCamel = (name: string) => name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/** Levenshtein distance, for "did you mean". */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length];
}

/** The known name closest to `name` (a typo, a missing letter, a prefix), if any is close enough. */
export function nearest(name: string, known: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = candidate.startsWith(name) || name.startsWith(candidate) ? Math.min(1, distance(name, candidate)) : distance(name, candidate);
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best !== undefined && bestDistance <= Math.floor(name.length / 3) ? best : undefined;
}

/** " (did you mean `--order`?)" or "" */
export const didYouMean = (suggestion: string | undefined) => (suggestion ? ` (did you mean \`${suggestion}\`?)` : '');

function parseValue(flag: string, spec: FlagSpec, raw: string | undefined): FlagValue {
  if (raw === undefined) throw new TypeError(`Expected a value after \`${flag}\``);
  if (spec.kind === 'string') return raw;
  const value = Number(raw);
  if (spec.min === undefined) {
    if (raw.trim() === '' || Number.isNaN(value)) throw new TypeError(`Expected \`${flag}\` to be a number, got \`${raw}\``);
    return value;
  }
  const min = spec.min;
  if (spec.kind === 'integer' && (!/^-?\d+$/.test(raw.trim()) || value < min)) {
    throw new TypeError(`Expected \`${flag}\` to be an integer of at least ${min}, got \`${raw}\``);
  }
  if (raw.trim() === '' || !Number.isFinite(value) || value < min) {
    throw new TypeError(`Expected \`${flag}\` to be a number of at least ${min}, got \`${raw}\``);
  }
  return value;
}

function withDefaults(specs: Record<string, FlagSpec>): Record<string, FlagValue | undefined> {
  return Object.fromEntries(Object.entries(specs).map(([name, spec]) => [name, spec.default]));
}

/** Parses argv (after the script name); throws TypeError naming the flag on bad input. */
export function parseCommandLine(argv: readonly string[], line: CommandLine): ParsedCommandLine {
  const commands = line.commands ?? [];
  const dashed = (name: string) => (line.kebab ? toKebab(name) : name);
  const undashed = (name: string) => (line.kebab ? toCamel(name) : name);
  let command: CommandSpec | undefined;
  const positionals: string[] = [];
  const given: Record<string, FlagValue> = {};
  let help = false;
  let flagsEnded = false;
  const specs = () => ({ ...line.flags, ...command?.flags });
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!flagsEnded && (arg === '--help' || arg === '-h')) {
      help = true;
    } else if (!flagsEnded && arg === '--') {
      flagsEnded = true;
    } else if (!flagsEnded && arg.startsWith('--')) {
      const equals = arg.indexOf('=');
      const [flag, inline] = equals > 0 ? [arg.slice(0, equals), arg.slice(equals + 1)] : [arg, undefined];
      let name = undashed(flag.slice(2));
      let negated = false;
      if (!specs()[name] && flag.startsWith('--no-') && specs()[undashed(flag.slice(5))]?.kind === 'boolean') {
        [name, negated] = [undashed(flag.slice(5)), true];
      }
      const spec = specs()[name];
      if (!spec) {
        const suggestion = nearest(flag.slice(2), Object.keys(specs()).map(dashed));
        const see = command ? `\`${command.name} --help\`` : '--help';
        throw new TypeError(`Unknown flag \`${flag}\`${command ? ` for \`${command.name}\`` : ''}${didYouMean(suggestion && `--${suggestion}`)}; see ${see}`);
      }
      if (spec.kind === 'boolean') {
        if (inline !== undefined && inline !== 'true' && inline !== 'false') {
          throw new TypeError(`Expected \`${flag}\` to be true or false, got \`${inline}\``);
        }
        given[name] = (inline !== 'false') !== negated;
      } else if (spec.kind === 'list') {
        const items = inline === undefined ? [] : [inline];
        while (inline === undefined && i + 1 < argv.length && !argv[i + 1].startsWith('--')) items.push(argv[++i]);
        if (items.length === 0) throw new TypeError(`Expected a value after \`${flag}\` (give \`${flag} ""\` for an empty list)`);
        given[name] = items.filter((item) => item !== '');
      } else {
        given[name] = parseValue(flag, spec, inline ?? argv[++i]);
      }
      spec.check?.(given[name], flag);
    } else if (!command && commands.length > 0 && positionals.length === 0 && !flagsEnded) {
      command = commands.find((candidate) => candidate.name === arg);
      if (!command) {
        const suggestion = nearest(arg, commands.map((c) => c.name));
        throw new TypeError(`Unknown subcommand \`${arg}\`${didYouMean(suggestion)}; expected one of ${commands.map((c) => c.name).join(', ')}`);
      }
    } else {
      positionals.push(arg);
    }
  }
  if (command && !help) checkPositionals(command, positionals);
  return { command, positionals, flags: { ...withDefaults(specs()), ...given }, given, help };
}

function checkPositionals(command: CommandSpec, positionals: string[]): void {
  const { min, max, name } = command.positionals;
  if (positionals.length < min) throw new TypeError(`Expected ${name} after \`${command.name}\`; usage: ${command.usage}`);
  if (max !== undefined && positionals.length > max) {
    throw new TypeError(`Unexpected argument \`${positionals[max]}\` for \`${command.name}\`; usage: ${command.usage}`);
  }
}

/**
 * One line per flag: "  --n N            Order [default: 2]". A flag wider than the column
 * (`--discount-fallback`) has its help on the next line, in the column, as GNU tools do.
 */
export function flagLines(flags: Record<string, FlagSpec>, options: { kebab?: boolean; width?: number } = {}): string[] {
  const width = options.width ?? 16;
  return Object.entries(flags).map(([name, spec]) => {
    const dashed = options.kebab ? toKebab(name) : name;
    const shown = spec.kind === 'boolean' || (spec.kind === 'list' && !spec.value)
      ? `--${dashed}`
      : `--${dashed} ${spec.value ?? (spec.kind === 'string' ? 'S' : 'N')}`;
    const fallback = spec.default === undefined || spec.kind === 'boolean'
      ? ''
      : ` [default: ${Array.isArray(spec.default) ? spec.default.join(' ') || '(none)' : spec.default}]`;
    const column = shown.length < width ? shown.padEnd(width) : `${shown}\n${' '.repeat(width + 2)}`;
    return `  ${column} ${spec.help}${fallback}`;
  });
}
