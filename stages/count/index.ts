/**
 * The count family's face: the runner stage, and the shard job that any thread or process can run
 * (read -> tokenize -> count one shard; its result is merged in shard order by `runCount`).
 */
export { count, countStage } from './count.ts';
export { runCount, tokensPath } from './_run.ts';
export { countJob, countShard, transferables, type CountJob } from './_shard.ts';
export { SentenceSplitter, sentencesOf, SENTENCE_END, SENTENCE_START } from './_sentences.ts';
