/**
 * The pipeline's stages, in order: the one list the runner, the CLIs and the tests take them from.
 * read and tokenize stream inside count's workers (stages/ingest/), so they have no entry here.
 * count is the one that also counts on NATS workers when `--nats` is set (stages/count/nats/).
 */
import type { Stage } from '../pipeline/types.ts';
import { distributedCountStage } from './count/nats/index.ts';
import { encodeStage } from './encode.ts';
import { sampleStage } from './sample.ts';
import { trainStage } from './train/index.ts';
import { vocabStage } from './vocab.ts';

export const STAGES: readonly Stage[] = [distributedCountStage, vocabStage, encodeStage, trainStage, sampleStage];
