/**
 * The pipeline's stages, in order: the one list the runner, the CLIs and the tests take them from.
 * read and tokenize stream inside count's workers (stages/ingest/), so they have no entry here.
 */
import type { Stage } from '../pipeline/types.ts';
import { countStage } from './count/index.ts';
import { encodeStage } from './encode.ts';
import { sampleStage } from './sample.ts';
import { trainStage } from './train/index.ts';
import { vocabStage } from './vocab.ts';

export const STAGES: readonly Stage[] = [countStage, vocabStage, encodeStage, trainStage, sampleStage];
