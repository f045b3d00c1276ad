/**
 * The house rules, checked on the source text: imports point one way, down the layers
 *   scripts/, bench/ -> analysis/ -> stages/ -> pipeline/ -> storage/ -> lib/
 * (lib/ imports nothing of ours); a `_`-prefixed file is imported only from its own folder (tests
 * may reach into the folder they test); and no module imports itself through a cycle.
 */
import { test } from 'tap';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const LAYERS = ['lib', 'storage', 'pipeline', 'stages', 'analysis', 'scripts'] as const;
const SOURCE_FOLDERS = [...LAYERS, 'bench'];

function files(folder: string): string[] {
  return readdirSync(join(ROOT, folder)).flatMap((name) => {
    const path = join(folder, name);
    if (statSync(join(ROOT, path)).isDirectory()) return files(path);
    return /\.(ts|mjs)$/.test(name) ? [path] : [];
  });
}

/** Relative specifiers of static and dynamic imports, and of `new URL(..., import.meta.url)` modules. */
export function importsOf(source: string): string[] {
  const found: string[] = [];
  for (const match of source.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)['"](\.[^'"]+)['"]/g)) found.push(match[1]);
  for (const match of source.matchAll(/new URL\(['"](\.[^'"]+\.(?:ts|mjs))['"],\s*import\.meta\.url\)/g)) found.push(match[1]);
  return found;
}

const layerOf = (path: string) => {
  const top = path.split(sep)[0];
  return top === 'bench' ? LAYERS.indexOf('scripts') : LAYERS.indexOf(top as (typeof LAYERS)[number]);
};

function edges(folders: string[]) {
  const graph = new Map<string, string[]>();
  for (const file of folders.flatMap(files)) {
    const targets = importsOf(readFileSync(join(ROOT, file), 'utf8')).map((spec) => relative(ROOT, resolve(ROOT, dirname(file), spec)));
    graph.set(file, targets);
  }
  return graph;
}

test('layers: every import points down the layers or stays in its layer', async (t) => {
  const wrong: string[] = [];
  for (const [file, targets] of edges(SOURCE_FOLDERS)) {
    for (const target of targets) {
      if (layerOf(target) > layerOf(file)) wrong.push(`${file} imports ${target}`);
    }
  }
  t.same(wrong, [], 'no upward imports');
});

test('layers: a `_` file is imported only from its own folder', async (t) => {
  const wrong: string[] = [];
  const graph = edges([...SOURCE_FOLDERS, 'test']);
  for (const [file, targets] of graph) {
    for (const target of targets) {
      const name = target.split(sep).pop()!;
      if (!name.startsWith('_')) continue;
      const home = dirname(target);
      // A unit test may reach into the folder it mirrors: test/unit/stages/count/ tests stages/count/.
      const mirror = dirname(file) === join('test', 'unit', home);
      if (dirname(file) !== home && !mirror) wrong.push(`${file} imports ${target}`);
    }
  }
  t.same(wrong, [], 'private files stay private');
});

test('layers: no import cycles', async (t) => {
  const graph = edges(SOURCE_FOLDERS);
  const state = new Map<string, 'open' | 'done'>();
  const cycles: string[] = [];
  const visit = (file: string, path: string[]) => {
    if (state.get(file) === 'done') return;
    if (state.get(file) === 'open') {
      cycles.push([...path.slice(path.indexOf(file)), file].join(' -> '));
      return;
    }
    state.set(file, 'open');
    for (const target of graph.get(file) ?? []) visit(target, [...path, file]);
    state.set(file, 'done');
  };
  for (const file of graph.keys()) visit(file, []);
  t.same(cycles, [], 'the import graph is acyclic');
});

test('layers: the checker sees upward imports, private reaches and cycles', async (t) => {
  t.same(importsOf(`import { a } from '../pipeline/x.ts';\nconst m = await import('./y.ts');\nnew URL('./w.ts', import.meta.url)`),
    ['../pipeline/x.ts', './y.ts', './w.ts']);
  t.ok(layerOf(join('storage', 'x.ts')) < layerOf(join('pipeline', 'y.ts')), 'storage sits below pipeline');
  t.ok(layerOf(join('bench', 'x.ts')) === layerOf(join('scripts', 'y.ts')), 'bench sits with scripts');
});
