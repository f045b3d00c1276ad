import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, describeSettings } from '../../../pipeline/cli.ts';
import { DEFAULTS, resolveConfig, flagToKey, keyToFlag, STAGE_ALIASES, STAGE_ORDER } from '../../../pipeline/config.ts';

t.test('parseArgs() reads scalars, booleans, lists and an empty list', async (t) => {
  const { settings, positionals } = parseArgs(['--input', 'a.txt', 'b.txt', '--order', '4', '--fresh', '--reserved', '', '--lr=0.5']);
  t.same(positionals, []);
  t.same(settings, { input: ['a.txt', 'b.txt'], order: 4, fresh: true, reserved: [], lr: 0.5 });
  t.same(parseArgs(['status', '--out', 'x']).positionals, ['status']);
  t.equal(parseArgs(['--no-lowercase']).settings.lowercase, false);
});

t.test('parseArgs() rejects unknown flags and bad values, naming the flag', async (t) => {
  t.throws(() => parseArgs(['--orderr', '3']), { name: 'TypeError', message: 'Unknown flag `--orderr` (did you mean `--order`?); see --help' });
  t.throws(() => parseArgs(['--epoch', '3']), { message: 'Unknown flag `--epoch` (did you mean `--epochs`?); see --help' });
  t.throws(() => parseArgs(['--zzz']), { message: 'Unknown flag `--zzz`; see --help' }, 'no suggestion when nothing is close');
  t.throws(() => parseArgs(['--input']), { message: 'Expected a value after `--input` (give `--input ""` for an empty list)' });
  t.throws(() => parseArgs(['--input', '--order', '3']), /Expected a value after `--input`/);
  t.throws(() => parseArgs(['--order', '7']), { message: 'Expected `--order` to be an integer from 1 to 5, got `7`' });
  t.throws(() => parseArgs(['--order', 'x']), { message: 'Expected `--order` to be a number, got `x`' });
  t.throws(() => parseArgs(['--tokenizer', 'bpe']), /Expected `--tokenizer` to be one of d2l-word, d2l-char, word, char, got `"bpe"`/);
  t.throws(() => parseArgs(['--until', 'nowhere']), /Expected `--until` to be one of read, tokenize, count/);
});

t.test('--config file is validated; flags override it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lmpipe-config-'));
  const good = join(dir, 'good.json');
  writeFileSync(good, JSON.stringify({ order: 2, tokenizer: 'd2l-word' }));
  t.same(parseArgs(['--config', good, '--order', '4']).settings, { order: 4, tokenizer: 'd2l-word' });
  const unknown = join(dir, 'unknown.json');
  writeFileSync(unknown, JSON.stringify({ ordr: 2 }));
  t.throws(() => parseArgs(['--config', unknown]), { message: `Unknown setting \`ordr\` in \`${unknown}\` (did you mean \`order\`?)` });
  const kebab = join(dir, 'kebab.json');
  writeFileSync(kebab, JSON.stringify({ 'max-tokens': 5 }));
  t.throws(() => parseArgs(['--config', kebab]), { message: `Unknown setting \`max-tokens\` in \`${kebab}\` (did you mean \`maxTokens\`?)` });
  const single = join(dir, 'single.json');
  writeFileSync(single, JSON.stringify({ input: 'file.txt', reserved: '<pad>' }));
  t.same(parseArgs(['--config', single]).settings, { input: ['file.txt'], reserved: ['<pad>'] }, 'a single string is a one-element list');
  const badType = join(dir, 'bad.json');
  writeFileSync(badType, JSON.stringify({ epochs: '10' }));
  t.throws(() => parseArgs(['--config', badType]), { message: `Expected \`epochs\` in \`${badType}\` to be an integer of at least 1, got \`"10"\`` });
  const broken = join(dir, 'broken.json');
  writeFileSync(broken, '{"order": ');
  t.throws(() => parseArgs(['--config', broken]), { name: 'LmpipeError', code: 'USAGE', file: broken });
});

t.test('resolveConfig() layers defaults, file and flags', async (t) => {
  const config = resolveConfig({ order: 2 }, { order: 5, hidden: 8 });
  t.equal(config.order, 5);
  t.equal(config.hidden, 8);
  t.equal(config.tokenizer, DEFAULTS.tokenizer);
  t.throws(() => resolveConfig({ hidden: 0 }), /Expected `--hidden` to be an integer of at least 1, got `0`/);
});

t.test('--help lists the stages --until and --from take, in pipeline order, and each is accepted', async (t) => {
  const help = describeSettings().split('\n');
  for (const flag of ['--until', '--from']) {
    const listed = /\(([a-z |]+)\) \[default/.exec(help.find((line) => line.trimStart().startsWith(`${flag} `))!)?.[1].split(' | ');
    t.same(listed, ['read', 'tokenize', 'count', 'vocab', 'encode', 'train', 'sample'], `${flag} lists every stage`);
    t.same(new Set(listed), new Set([...STAGE_ORDER, ...Object.keys(STAGE_ALIASES)]), `${flag}: the stages the runner knows`);
    const key = flag === '--until' ? 'until' : 'from';
    for (const name of listed ?? []) t.equal(resolveConfig(parseArgs([flag, name]).settings)[key], name);
  }
  t.equal(resolveConfig({ from: '' }).from, '', '--from may be empty: no stage');
});

t.test('flag names and help cover every setting', async (t) => {
  t.equal(flagToKey('--max-tokens'), 'maxTokens');
  t.equal(keyToFlag('maxTokens'), '--max-tokens');
  const help = describeSettings();
  for (const key of Object.keys(DEFAULTS)) {
    const line = help.split('\n').find((l) => l.trimStart().startsWith(keyToFlag(key) + ' '));
    t.ok(line && /\w.*\[default:/.test(line.slice(22)), `${key} has a described flag`);
  }
});
