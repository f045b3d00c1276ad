// Turns tap's closing "# { total: N, pass: N, fail: N, skip: N }" into the line CI reads:
// "N passed, N failed, N skipped". With no such line the run is reported as failed.
import { readFileSync } from 'node:fs';

const log = readFileSync(process.argv[2], 'utf8');
const matches = [...log.matchAll(/^# \{ (total: \d+.*?) \}\s*$/gm)];
if (matches.length === 0) {
  console.log('0 passed, 1 failed');
  process.exit(0);
}
const fields = Object.fromEntries(
  matches.at(-1)[1].split(',').map((part) => part.trim().split(':').map((s) => s.trim())).map(([k, v]) => [k, Number(v)]),
);
const failed = (fields.fail ?? 0) + (fields.total === 0 ? 1 : 0);
const skipped = (fields.skip ?? 0) + (fields.todo ?? 0);
console.log(`${fields.pass ?? 0} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
