/**
 * `npm run generate -- ... | head -c 300`: when the reader closes the pipe, the writer ends quietly
 * (no EPIPE stack trace, exit 0), as Unix filters do.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fixedModel } from '../helpers/fixed-model.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

t.test('generate ends quietly when its reader closes the pipe', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lmpipe-epipe-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  fixedModel(dir, [0.1, 0.2, 0.3, 0.2, 0.2]);
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/generate.ts', '--out', dir, '--prefix', 'a',
    '--length', '300', '--temperature', '1', '--json', '--backend', 'cpu'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.destroy(); // the reader is gone before the first write, as `head` is after its bytes
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const code = await new Promise((resolve) => child.on('close', resolve));
  t.equal(stderr, '', 'nothing on stderr');
  t.equal(code, 0);
});
