/**
 * Flags for every setting in pipeline/config.ts, parsed the same way for every key:
 * `--max-tokens 5000`, `--fresh` / `--no-fresh`, lists as `--input a.txt b.txt` (up to the next flag),
 * an empty list as `--reserved ""`. `--config FILE` reads a JSON object of settings first.
 */
import { readFileSync } from 'node:fs';
import { DEFAULTS, checkValue, flagToKey, keyToFlag, validateConfigObject, type Config } from './config.ts';
import { LmpipeError } from '../lib/errors.ts';

export interface ParsedArgs {
  /** Words before the first flag, e.g. ["status"]. */
  positionals: string[];
  /** Settings from --config, then flags (later wins). */
  settings: Partial<Config>;
  help: boolean;
}

function parseScalar(key: string, flag: string, raw: string | undefined): unknown {
  const kind = typeof DEFAULTS[key as keyof Config];
  if (raw === undefined) throw new TypeError(`Expected a value after \`${flag}\``);
  if (kind === 'number') {
    const value = Number(raw);
    if (raw.trim() === '' || Number.isNaN(value)) throw new TypeError(`Expected \`${flag}\` to be a number, got \`${raw}\``);
    return value;
  }
  return raw;
}

export function parseArgs(argv: string[]): ParsedArgs {
  const positionals: string[] = [];
  const flags: Record<string, unknown> = {};
  let fileSettings: Partial<Config> = {};
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') {
      help = true;
      continue;
    }
    if (!arg.startsWith('--') || arg === '-') {
      if (Object.keys(flags).length > 0) throw new TypeError(`Unexpected argument \`${arg}\`; lists follow their flag, e.g. --input a.txt b.txt`);
      positionals.push(arg);
      continue;
    }
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    if (flag === '--config') {
      const file = inline ?? argv[++i];
      if (!file) throw new TypeError('Expected a file after `--config`');
      fileSettings = readConfigFile(file);
      continue;
    }
    const negated = flag.startsWith('--no-') && typeof DEFAULTS[flagToKey('--' + flag.slice(5)) as keyof Config] === 'boolean';
    const key = flagToKey(negated ? '--' + flag.slice(5) : flag);
    if (!(key in DEFAULTS)) throw new TypeError(`Unknown flag \`${flag}\`; see --help`);
    const defaultValue = DEFAULTS[key as keyof Config];
    if (typeof defaultValue === 'boolean') {
      flags[key] = inline === undefined ? !negated : inline === 'true';
    } else if (Array.isArray(defaultValue)) {
      const items: string[] = inline === undefined ? [] : [inline];
      while (inline === undefined && i + 1 < argv.length && (!argv[i + 1].startsWith('--'))) items.push(argv[++i]);
      flags[key] = items.filter((item) => item !== '');
    } else {
      flags[key] = parseScalar(key, flag, inline ?? argv[++i]);
    }
    checkValue(key, flags[key], flag);
  }
  return { positionals, settings: { ...fileSettings, ...flags } as Partial<Config>, help };
}

function readConfigFile(file: string): Partial<Config> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new LmpipeError('USAGE', `Cannot read config file (${(error as NodeJS.ErrnoException).code})`, { file });
  }
  try {
    return validateConfigObject(JSON.parse(text), file);
  } catch (error) {
    if (error instanceof SyntaxError) throw new LmpipeError('USAGE', `Invalid JSON: ${error.message}`, { file });
    throw error;
  }
}

/**
 * One line per setting, taken from the doc comments in pipeline/config.ts so that the defaults
 * object stays the single source of every flag's meaning.
 */
export function describeSettings(): string {
  const source = readFileSync(new URL('./config.ts', import.meta.url), 'utf8');
  const docs = new Map<string, string>();
  for (const match of source.matchAll(/\/\*\*\s*(.*?)\s*\*\/\s*\n\s*(\w+):/g)) docs.set(match[2], match[1]);
  const rows = Object.entries(DEFAULTS).map(([key, value]) => {
    const shown = Array.isArray(value) ? value.join(' ') || '(none)' : String(value);
    return `  ${keyToFlag(key).padEnd(20)} ${docs.get(key) ?? ''} [default: ${shown}]`;
  });
  return rows.join('\n');
}
