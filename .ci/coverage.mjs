// Coverage of the test suite from tap's raw V8 files (.tap/coverage), held to the floors in .taprc.
//
// Why not tap's own summary: worker threads (and CLIs started by e2e tests) load our TypeScript
// through tsx, whose whitespace-minified output maps each source file to a handful of lines. c8
// then sees a one-statement file, and merging keeps whichever map came first, so the suite's
// figures collapsed as tests were added. Here an entry is kept only when its source map spans the
// source file (at least half its lines): what the test processes themselves ran, through tap's
// TypeScript loader.
//
//   node .ci/coverage.mjs            # prints the summary; exits 1 below a floor
import { readFileSync, readdirSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Report } from 'c8';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const raw = join(root, '.tap', 'coverage');
const kept = join(root, '.tap', 'coverage-kept');
rmSync(kept, { recursive: true, force: true });
mkdirSync(kept, { recursive: true });
const lines = new Map();
const linesOf = (path) => {
  if (!lines.has(path)) lines.set(path, readFileSync(path, 'utf8').split('\n').length);
  return lines.get(path);
};
for (const name of readdirSync(raw)) {
  const data = JSON.parse(readFileSync(join(raw, name), 'utf8'));
  const maps = data['source-map-cache'] ?? {};
  const ours = (url) => url.startsWith(`file://${root}/`) && !url.includes('/node_modules/') && /\.(ts|mts)$/.test(url);
  // c8 pools the source maps of every file by URL, so a bad map must go too, not only its entry.
  const spans = (url) => (maps[url]?.lineLengths?.length ?? 0) >= linesOf(fileURLToPath(url)) / 2;
  data.result = data.result.filter(({ url }) => !ours(url) || spans(url));
  for (const url of Object.keys(maps)) if (ours(url) && !spans(url)) delete maps[url];
  writeFileSync(join(kept, name), JSON.stringify(data));
}
const taprc = readFileSync(join(root, '.taprc'), 'utf8');
const floor = (key) => Number(taprc.match(new RegExp(`^${key}:\\s*(\\d+(?:\\.\\d+)?)`, 'm'))?.[1] ?? 0);
const report = new Report({ reporter: ['text-summary'], tempDirectory: kept, reportsDirectory: join(root, '.tap', 'report'), excludeNodeModules: true });
const summary = (await report.getCoverageMapFromAllCoverageFiles()).getCoverageSummary().toJSON();
let failed = false;
for (const key of ['statements', 'branches', 'functions', 'lines']) {
  const { pct, covered, total } = summary[key];
  const below = pct < floor(key);
  failed ||= below;
  console.log(`coverage ${key}: ${pct}% (${covered}/${total})${below ? `, below the floor of ${floor(key)}%` : ''}`);
}
process.exitCode = failed ? 1 : 0;
