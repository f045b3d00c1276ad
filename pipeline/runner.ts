/**
 * The runner: composes the stages in order, skipping a finished stage whose fingerprint (settings,
 * inputs and upstream fingerprints) is unchanged, resuming a partly done one from its checkpoint,
 * and redoing a stage and everything downstream when something it depends on changed. A stage
 * that runs invalidates every stage after it at once, those past --until included, so no later
 * stage stays "done" on results made from the old ones. A stage whose own settings changed in a
 * way it can build on (train: more epochs) continues from its checkpoint instead of starting over.
 */
import { createHash } from 'node:crypto';
import type { Database } from '../storage/driver.ts';
import { openRunDatabase } from '../storage/schema.ts';
import { forgetStage, getMeta, loadStage, setMeta } from '../storage/stages.ts';
import { STAGE_ALIASES, STAGE_ORDER, type Config } from './config.ts';
import { LmpipeError } from '../lib/errors.ts';
import { acquireLock } from './lock.ts';
import type { Reporter } from './progress.ts';
import type { Stage, StageName } from './types.ts';
import { runPaths } from '../storage/run-paths.ts';

export interface RunOptions {
  stages: readonly Stage[];
  reporter: Reporter;
  signal: AbortSignal;
}

export interface StagePlan {
  stage: Stage;
  fingerprint: string;
  /** settings and inputs as recorded, to explain a redo. */
  basis: Record<string, unknown>;
  /** The fingerprint of the stage before (its own covers it). */
  upstream: string;
}


/** Stage index for a name or alias ('read', 'tokenize' mean count). */
export function stageIndex(name: string): number {
  const canonical = STAGE_ALIASES[name] ?? name;
  return (STAGE_ORDER as readonly string[]).indexOf(canonical);
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** Fingerprints chain: each stage's covers its settings, its inputs and the fingerprint upstream. */
export async function planStages(stages: readonly Stage[], config: Config): Promise<StagePlan[]> {
  const plans: StagePlan[] = [];
  let upstream = '';
  for (const stage of stages) {
    const basis = { settings: stage.settings(config), inputs: stage.inputs ? await stage.inputs(config) : null };
    const fingerprint = sha256(JSON.stringify({ stage: stage.name, ...basis, upstream })).slice(0, 16);
    plans.push({ stage, fingerprint, basis, upstream });
    upstream = fingerprint;
  }
  return plans;
}

type RecordedBasis = { settings: unknown; inputs: unknown; upstream?: string };

const recordedBasis = (db: Database, stage: Stage): RecordedBasis | undefined => {
  const recorded = getMeta(db, `basis:${stage.name}`);
  return recorded ? (JSON.parse(recorded) as RecordedBasis) : undefined;
};

/** What a stage whose own settings alone changed can continue with ("epochs 30 -> 40"); undefined: redo. */
function continuation(db: Database, plan: StagePlan): string | undefined {
  const before = recordedBasis(db, plan.stage);
  if (!before || !plan.stage.continues || before.upstream !== plan.upstream) return undefined;
  if (JSON.stringify(before.inputs) !== JSON.stringify(plan.basis.inputs)) return undefined;
  return plan.stage.continues(before.settings, plan.basis.settings);
}

/** Which top-level keys of the recorded basis differ from now: "settings.order, inputs". */
function explainChange(db: Database, plan: StagePlan): string {
  const before = recordedBasis(db, plan.stage) as Record<string, Record<string, unknown> | null> | undefined;
  if (!before) return 'an earlier stage changed';
  const changed: string[] = [];
  let rereadStdin = false;
  for (const part of ['settings', 'inputs'] as const) {
    const old = before[part];
    const now = plan.basis[part] as Record<string, unknown> | null;
    if (JSON.stringify(old) === JSON.stringify(now)) continue;
    if (old && now && typeof old === 'object' && typeof now === 'object' && !Array.isArray(now)) {
      for (const key of new Set([...Object.keys(old), ...Object.keys(now)])) {
        if (JSON.stringify(old[key]) !== JSON.stringify(now[key])) changed.push(`${part === 'settings' ? '' : 'input '}${key}`);
      }
    } else if (part === 'inputs' && JSON.stringify(now).includes('"path":"-"')) {
      rereadStdin = true;
    } else {
      changed.push(part === 'inputs' ? 'input files' : part);
    }
  }
  const settings = changed.length ? `changed: ${changed.join(', ')}` : '';
  if (rereadStdin) return ['standard input is read anew on every run', settings].filter(Boolean).join('; ');
  return settings || 'an earlier stage changed';
}

export interface RunResult {
  ran: StageName[];
  skipped: StageName[];
  db: Database;
}

/**
 * Runs stages up to `config.until`. The caller closes `result.db`. Throws LmpipeError('INTERRUPTED')
 * when `signal` fires; everything committed so far stays and the same command resumes.
 */
export async function runPipeline(config: Config, options: RunOptions): Promise<RunResult> {
  const { stages, reporter, signal } = options;
  const lock = acquireLock(config.out);
  const db = openRunDatabase(runPaths(config.out).database);
  try {
    const plans = await planStages(stages, config);
    const until = config.until ? stageIndex(config.until) : plans.length - 1;
    const from = config.from ? stageIndex(config.from) : config.fresh ? 0 : -1;
    if (from >= 0) {
      for (const plan of plans.slice(from).reverse()) resetStage(db, config.out, plan.stage);
    }
    const current = (name: StageName) => {
      const record = loadStage(db, name);
      return record?.state === 'done' && record.fingerprint === plans.find((plan) => plan.stage.name === name)?.fingerprint;
    };
    const checkFrom = async (first: number) => {
      for (const { stage } of plans.slice(first, until + 1)) {
        await Promise.resolve(stage.check?.({ config, db, current })).catch((error: unknown) => {
          throw inStage(error, stage.name);
        });
      }
    };
    await checkFrom(0);
    const ran: StageName[] = [];
    const skipped: StageName[] = [];
    let upstreamRan = false;
    const invalidated = new Set<StageName>();
    for (const [index, plan] of plans.slice(0, until + 1).entries()) {
      const { stage, fingerprint } = plan;
      const record = loadStage(db, stage.name);
      if (record?.state === 'done' && record.fingerprint === fingerprint) {
        reporter.stage(stage.name, 'skip');
        skipped.push(stage.name);
        await checkFrom(index + 1);
        continue;
      }
      const continued = record && record.fingerprint !== fingerprint && !upstreamRan ? continuation(db, plan) : undefined;
      if (continued) {
        reporter.stage(stage.name, 'start', `continuing from its checkpoint: ${continued}`);
      } else if (record && record.fingerprint !== fingerprint) {
        reporter.stage(stage.name, 'redo', upstreamRan ? 'an earlier stage changed' : explainChange(db, plan));
        resetStage(db, config.out, stage);
      } else if (!record && invalidated.has(stage.name)) {
        reporter.stage(stage.name, 'redo', 'an earlier stage changed');
      } else {
        reporter.stage(stage.name, 'start', record ? 'resuming from its checkpoint' : undefined);
      }
      // Results downstream were made from this stage's old output: none of them holds any more.
      for (const later of plans.slice(index + 1).reverse()) {
        if (!loadStage(db, later.stage.name)) continue;
        resetStage(db, config.out, later.stage);
        invalidated.add(later.stage.name);
      }
      setMeta(db, `basis:${stage.name}`, JSON.stringify({ ...plan.basis, upstream: plan.upstream }));
      const ctx = { dir: config.out, db, config, fingerprint, signal, log: (m: string) => reporter.log(m, stage.name) };
      try {
        for await (const event of stage.run(ctx)) reporter.progress(stage.name, event);
      } catch (error) {
        throw inStage(error, stage.name);
      }
      if (signal.aborted) throw interrupted(stage.name);
      if (loadStage(db, stage.name)?.state !== 'done') {
        throw new LmpipeError('INTERNAL', 'Stage returned without marking itself done', { stage: stage.name });
      }
      reporter.stage(stage.name, 'done');
      ran.push(stage.name);
      upstreamRan = true;
      await checkFrom(index + 1);
    }
    return { ran, skipped, db };
  } catch (error) {
    db.close();
    throw error;
  } finally {
    lock.release();
  }
}

/** A user-facing error names the stage it happened in ("count: a.bin at byte 5: ..."). */
function inStage(error: unknown, stage: StageName): unknown {
  return error instanceof LmpipeError && !error.stage ? new LmpipeError(error.code, error.message, { ...error, stage }) : error;
}

function resetStage(db: Database, dir: string, stage: Stage): void {
  stage.reset({ dir, db });
  forgetStage(db, stage.name);
}

function interrupted(stage: string): LmpipeError {
  return new LmpipeError('INTERRUPTED', 'Interrupted at a safe point; run the same command again to resume', { stage });
}
