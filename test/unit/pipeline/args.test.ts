import t from 'tap';
import { resolve } from 'node:path';
import { flagLines, nearest, parseCommandLine, type CommandSpec, type FlagSpec } from '../../../pipeline/args.ts';
import { failureLine, userPath } from '../../../pipeline/run-main.ts';
import { LmpipeError } from '../../../lib/errors.ts';

const FLAGS: Record<string, FlagSpec> = {
  out: { kind: 'string', help: 'Run directory', default: 'runs/x' },
  maxTokens: { kind: 'integer', min: 0, help: 'Tokens', default: 5 },
  json: { kind: 'boolean', help: 'JSON', default: false },
  given: { kind: 'list', help: 'History' },
};
const TOP: CommandSpec = { name: 'top', usage: 'top', summary: '', flags: { k: { kind: 'integer', min: 1, help: 'k', default: 10 } }, positionals: { min: 0, max: 0, name: '' }, notes: [] };

t.test('parseCommandLine() fills defaults, reads kebab flags, negated booleans, lists and --', async (t) => {
  const parsed = parseCommandLine(['--max-tokens', '7', '--no-json', '--given', 'the', 'time', '--out=o', '--', '--x'], { flags: FLAGS, kebab: true });
  t.same(parsed.flags, { out: 'o', maxTokens: 7, json: false, given: ['the', 'time'] });
  t.same(parsed.given, { maxTokens: 7, json: false, given: ['the', 'time'], out: 'o' });
  t.same(parsed.positionals, ['--x'], 'a word after -- is a positional even if it starts with --');
  t.same(parseCommandLine(['--given', ''], { flags: FLAGS }).flags.given, [], '"" is an empty list');
});

t.test('parseCommandLine() names the nearest known flag or subcommand when one is unknown', async (t) => {
  t.throws(() => parseCommandLine(['--max-token', '3'], { flags: FLAGS, kebab: true }), { message: 'Unknown flag `--max-token` (did you mean `--max-tokens`?); see --help' });
  t.throws(() => parseCommandLine(['tops'], { flags: FLAGS, commands: [TOP] }), { message: 'Unknown subcommand `tops` (did you mean `top`?); expected one of top' });
  t.throws(() => parseCommandLine(['top', '--jsn'], { flags: FLAGS, commands: [TOP] }), { message: 'Unknown flag `--jsn` for `top` (did you mean `--json`?); see `top --help`' });
  t.throws(() => parseCommandLine(['--given'], { flags: FLAGS }), /Expected a value after `--given`/);
  t.throws(() => parseCommandLine(['--json=maybe'], { flags: FLAGS }), { message: 'Expected `--json` to be true or false, got `maybe`' });
});

t.test('flagLines() puts every help text in one column, a wide flag\'s on the next line', async (t) => {
  const lines = flagLines({ ...FLAGS, discountFallback: { kind: 'boolean', help: 'Fallback' } }, { kebab: true, width: 16 }).join('\n').split('\n');
  t.same(lines, [
    '  --out S          Run directory [default: runs/x]',
    '  --max-tokens N   Tokens [default: 5]',
    '  --json           JSON',
    '  --given          History',
    '  --discount-fallback',
    '                   Fallback',
  ]);
});

t.test('nearest() takes typos and prefixes, not far-off names', async (t) => {
  t.equal(nearest('epoch', ['epochs', 'order']), 'epochs');
  t.equal(nearest('ordr', ['epochs', 'order']), 'order');
  t.equal(nearest('m', ['n', 'k']), undefined, 'one letter is too short to guess from');
  t.equal(nearest('zebra', ['epochs', 'order']), undefined);
});

t.test('userPath() resolves against INIT_CWD only where npm moved the process to the package root', async (t) => {
  const saved = { INIT_CWD: process.env.INIT_CWD, npm_package_json: process.env.npm_package_json };
  t.teardown(() => Object.assign(process.env, saved));
  process.env.npm_package_json = resolve(process.cwd(), 'package.json');
  process.env.INIT_CWD = '/somewhere/else';
  t.equal(userPath('../in.txt'), '/somewhere/in.txt', 'npm run from /somewhere/else');
  t.equal(userPath('-'), '-', 'stdin stays stdin');
  process.env.npm_package_json = '/another/package/package.json';
  t.equal(userPath('in.txt'), resolve('in.txt'), 'a process started elsewhere keeps its own directory');
});

t.test('failureLine() names the stage, else the command', async (t) => {
  t.same(failureLine('generate', new TypeError('Expected `--length` to be an integer')), { line: 'error: generate: Expected `--length` to be an integer', exitCode: 2 });
  t.same(failureLine('pipeline', new LmpipeError('INPUT', 'Looks binary', { stage: 'count', file: 'a.bin', position: 'byte 5' })),
    { line: 'error: count: a.bin at byte 5: Looks binary', exitCode: 3 });
  t.same(failureLine('query', new Error('boom')), { line: 'error: query: boom', exitCode: 1 });
});
