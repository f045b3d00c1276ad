// Adds up tap's closing "# { total: N, pass: N, fail: N, skip: N }" and deno test's
// "ok | N passed | N failed" into the one line CI reads: "N passed, N failed, N skipped", then
// lists each skipped test with its reason ("# SKIP reason" in tap's output) and the coverage
// summary. Exits 1 when anything failed or was skipped: CI has every oracle, corpus and browser.
// A log with no summary line (other than the coverage log) counts as one failure.
import { existsSync, readFileSync } from 'node:fs';

let passed = 0;
let failed = 0;
let skipped = 0;
const skips = [];
const coverage = [];
for (const file of process.argv.slice(2)) {
  const log = existsSync(file) ? readFileSync(file, 'utf8').replace(/\x1b\[[0-9;]*m/g, '') : '';
  const tap = [...log.matchAll(/^# \{ (total: \d+.*?) \}\s*$/gm)].at(-1);
  const deno = [...log.matchAll(/^(?:ok|FAILED) \| (\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed(?: \(\d+ steps?\))?(?: \| (\d+) ignored)?/gm)].at(-1);
  for (const line of log.matchAll(/^\s*ok \d+ - (.*) # (?:SKIP|TODO)\b ?(.*)$/gm)) skips.push(`${line[1]}: ${line[2] || 'no reason given'}`);
  coverage.push(...[...log.matchAll(/^coverage (\w+): (.*)$/gm)].map((line) => `${line[1]} ${line[2].trim()}`));
  if (tap) {
    const fields = Object.fromEntries(tap[1].split(',').map((part) => part.split(':').map((s) => s.trim())).map(([k, v]) => [k, Number(v)]));
    passed += fields.pass ?? 0;
    failed += (fields.fail ?? 0) + (fields.total === 0 ? 1 : 0);
    skipped += (fields.skip ?? 0) + (fields.todo ?? 0);
  } else if (deno) {
    passed += Number(deno[1]);
    failed += Number(deno[2]);
    skipped += Number(deno[3] ?? 0);
  } else if (!/^coverage /m.test(log)) {
    failed += 1;
    console.error(`no test summary found in ${file}`);
  }
}
if (coverage.length) console.log(`coverage (.ci/coverage.mjs): ${coverage.join('; ')}`);
for (const skip of skips) console.log(`skipped: ${skip}`);
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exitCode = failed > 0 || skipped > 0 ? 1 : 0;
