import t from 'tap';
import { mkdtempSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { resolveConfig, type Config } from '../../../pipeline/config.ts';
import { runPipeline } from '../../../pipeline/runner.ts';
import { acquireLock } from '../../../pipeline/lock.ts';
import { LmpipeError } from '../../../lib/errors.ts';
import type { Reporter } from '../../../pipeline/progress.ts';
import type { Stage, StageName } from '../../../pipeline/types.ts';
import { loadStage, markDone, saveCheckpoint } from '../../../storage/stages.ts';

/** A stage that counts its runs and keeps a checkpoint of how many "steps" it did (3 in all). */
function fakeStage(name: StageName, key: keyof Config, log: string[]): Stage {
  return {
    name,
    consumes: 'nothing',
    produces: 'a log line',
    checkpoint: '{step}',
    settings: (config) => ({ [key]: config[key] }),
    async *run(ctx) {
      const record = loadStage<{ step: number }>(ctx.db, name);
      let step = record?.checkpoint.step ?? 0;
      while (step < 3) {
        if (ctx.signal.aborted) return;
        step++;
        ctx.db.transaction(() => saveCheckpoint(ctx.db, name, ctx.fingerprint, { step }))();
        log.push(`${name}:${step}`);
        yield { done: step, total: 3, unit: 'steps' };
      }
      ctx.db.transaction(() => markDone(ctx.db, name, ctx.fingerprint, { step }))();
    },
    reset() {
      log.push(`${name}:reset`);
    },
  };
}

function recorder(): Reporter & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    stage: (name, state, note) => lines.push(`${name} ${state}${note ? ` ${note}` : ''}`),
    progress: () => {},
    log: (message) => lines.push(message),
    summary: () => {},
  };
}

const setup = () => {
  const out = mkdtempSync(join(tmpdir(), 'lmpipe-runner-'));
  const log: string[] = [];
  const stages = [fakeStage('count', 'order', log), fakeStage('vocab', 'minFreq', log), fakeStage('encode', 'maxTokens', log)];
  return { out, log, stages };
};

const run = async (stages: Stage[], config: Config, signal = new AbortController().signal) => {
  const reporter = recorder();
  const result = await runPipeline(config, { stages, reporter, signal });
  result.db.close();
  return { ...result, lines: reporter.lines };
};

t.test('runPipeline() skips finished stages and redoes a changed one and those after it', async (t) => {
  const { out, log, stages } = setup();
  const first = await run(stages, resolveConfig({ out, until: 'encode' }));
  t.same(first.ran, ['count', 'vocab', 'encode']);
  t.equal(log.length, 9);
  log.length = 0;
  const again = await run(stages, resolveConfig({ out, until: 'encode' }));
  t.same(again.skipped, ['count', 'vocab', 'encode'], 'unchanged settings: nothing runs');
  t.same(log, []);
  const changed = await run(stages, resolveConfig({ out, until: 'encode', minFreq: 2 }));
  t.same(changed.skipped, ['count']);
  t.same(changed.ran, ['vocab', 'encode']);
  t.ok(changed.lines.includes('vocab redo changed: minFreq'), 'says which setting changed');
  t.ok(changed.lines.includes('encode redo an earlier stage changed'));
  t.same(log.filter((l) => l.endsWith('reset')), ['vocab:reset', 'encode:reset']);
});

t.test('--until stops early; --from and --fresh redo', async (t) => {
  const { out, log, stages } = setup();
  t.same((await run(stages, resolveConfig({ out, until: 'tokenize' }))).ran, ['count'], 'tokenize is an alias of count');
  t.same((await run(stages, resolveConfig({ out, until: 'encode' }))).ran, ['vocab', 'encode']);
  log.length = 0;
  t.same((await run(stages, resolveConfig({ out, until: 'encode', from: 'vocab' }))).ran, ['vocab', 'encode']);
  t.same(log.filter((l) => l.endsWith('reset')), ['encode:reset', 'vocab:reset']);
  t.same((await run(stages, resolveConfig({ out, until: 'encode', fresh: true }))).ran, ['count', 'vocab', 'encode']);
});

t.test('an interrupted stage resumes from its checkpoint', async (t) => {
  const { out, log, stages } = setup();
  const controller = new AbortController();
  const stopping = [{ ...stages[0], run: async function* (ctx: Parameters<Stage['run']>[0]) {
    for await (const event of stages[0].run(ctx)) {
      yield event;
      if (event.done === 2) controller.abort();
    }
  } }, stages[1]];
  await t.rejects(run(stopping, resolveConfig({ out, until: 'vocab' }), controller.signal), { code: 'INTERRUPTED', stage: 'count' });
  t.same(log, ['count:1', 'count:2']);
  const resumed = await run(stages, resolveConfig({ out, until: 'vocab' }));
  t.same(resumed.ran, ['count', 'vocab']);
  t.same(log, ['count:1', 'count:2', 'count:3', 'vocab:1', 'vocab:2', 'vocab:3'], 'count continued at step 3');
  t.ok(resumed.lines.includes('count start resuming from its checkpoint'));
});

t.test('acquireLock() refuses a live owner and takes over a dead one', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lmpipe-lock-'));
  const lock = acquireLock(dir);
  const sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 20000)']);
  t.teardown(() => sleeper.kill('SIGKILL'));
  lock.release();
  writeFileSync(join(dir, 'lock'), JSON.stringify({ pid: sleeper.pid }));
  t.throws(() => acquireLock(dir), { code: 'STATE', message: new RegExp(`Another lmpipe run \\(pid ${sleeper.pid}`) });
  sleeper.kill('SIGKILL');
  await new Promise((resolve) => sleeper.on('exit', resolve));
  const taken = acquireLock(dir);
  t.equal(JSON.parse(readFileSync(join(dir, 'lock'), 'utf8')).pid, process.pid, 'stale lock of a killed run is taken over');
  taken.release();
  t.notOk(existsSync(join(dir, 'lock')));
});

t.test('runPipeline() invalidates every later stage when one is redone, those past --until included', async (t) => {
  const { out, log, stages } = setup();
  await run(stages, resolveConfig({ out, until: 'encode' }));
  log.length = 0;
  const redone = await run(stages, resolveConfig({ out, until: 'vocab', minFreq: 2 }));
  t.same(redone.ran, ['vocab']);
  t.same(log.filter((l) => l.endsWith('reset')), ['vocab:reset', 'encode:reset']);
  const { openRunDatabase } = await import('../../../storage/schema.ts');
  const db = openRunDatabase(join(out, 'lmpipe.sqlite'));
  t.equal(loadStage(db, 'encode'), undefined, 'encode is no longer marked done on the old vocabulary');
  db.close();
  const next = await run(stages, resolveConfig({ out, until: 'encode', minFreq: 2 }));
  t.same(next.ran, ['encode'], 'encode runs again rather than being skipped');
});

t.test('runPipeline() continues a stage from its checkpoint when it says the change builds on it', async (t) => {
  const { out, log, stages } = setup();
  const grows = { ...stages[1], continues: (before: unknown, now: unknown) => {
    const [a, b] = [(before as Config).minFreq, (now as Config).minFreq];
    return b > a ? `minFreq ${a} -> ${b}` : undefined;
  } };
  const staged = [stages[0], grows, stages[2]];
  await run(staged, resolveConfig({ out, until: 'encode' }));
  log.length = 0;
  const more = await run(staged, resolveConfig({ out, until: 'encode', minFreq: 1 }));
  t.ok(more.lines.includes('vocab start continuing from its checkpoint: minFreq 0 -> 1'));
  t.same(log.filter((l) => l.startsWith('vocab')), [], 'no reset and no step redone: the fake was already at step 3');
  t.same(more.ran, ['vocab', 'encode']);
  t.ok(log.includes('encode:reset'), 'the stage after it is redone');
  log.length = 0;
  const fewer = await run(staged, resolveConfig({ out, until: 'encode', minFreq: 0 }));
  t.ok(fewer.lines.includes('vocab redo changed: minFreq'), 'a change it cannot build on is a redo');
  t.ok(log.includes('vocab:reset'));
});

t.test('runPipeline() names the stage in a user-facing error that did not name one', async (t) => {
  const { out, stages } = setup();
  const failing: Stage = {
    ...stages[0],
    async *run() {
      throw new LmpipeError('INPUT', 'Looks like a binary file (NUL byte); lmpipe reads text', { file: '/data/blob.txt', position: 'byte 5' });
    },
  };
  await t.rejects(run([failing], resolveConfig({ out, until: 'count' })), {
    code: 'INPUT', stage: 'count', file: '/data/blob.txt', position: 'byte 5',
  });
});
