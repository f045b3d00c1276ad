/**
 * The pipeline's command line: a flag for every setting in pipeline/config.ts (`--max-tokens 5000`,
 * `--fresh` / `--no-fresh`, lists as `--input a.txt b.txt`, an empty list as `--reserved ""`),
 * parsed by the scripts' shared parser (pipeline/args.ts). `--config FILE` reads a JSON object of
 * settings first; flags override it.
 */
import { readFileSync } from 'node:fs';
import { LmpipeError } from '../lib/errors.ts';
import { parseCommandLine, type FlagSpec } from './args.ts';
import { checkValue, SETTINGS, validateConfigObject, type Config } from './config.ts';
import { userPath } from './run-main.ts';

export interface ParsedArgs {
  /** Words that are not flags, e.g. ["status"]. */
  positionals: string[];
  /** Settings from --config, then flags (later wins). */
  settings: Partial<Config>;
  help: boolean;
}

/** The flag of each setting, its kind taken from the default's type. */
const SETTING_FLAGS: Record<string, FlagSpec> = Object.fromEntries(
  Object.entries(SETTINGS).map(([key, setting]) => {
    const value = setting.default as unknown;
    const kind = Array.isArray(value) ? 'list' : typeof value === 'boolean' ? 'boolean' : typeof value === 'number' ? 'number' : 'string';
    return [key, { kind, help: setting.doc, check: (parsed: unknown, flag: string) => checkValue(key, parsed, flag) } satisfies FlagSpec];
  }),
);
const CONFIG_FLAG: FlagSpec = { kind: 'string', value: 'FILE', help: 'A JSON object of settings, read before the flags' };

export function parseArgs(argv: readonly string[]): ParsedArgs {
  const { positionals, given, help } = parseCommandLine(argv, { flags: { config: CONFIG_FLAG, ...SETTING_FLAGS }, kebab: true });
  const { config: file, ...flags } = given;
  const fileSettings = typeof file === 'string' ? readConfigFile(userPath(file)) : {};
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

export { describeSettings } from './config.ts';
