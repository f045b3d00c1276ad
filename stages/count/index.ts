/**
 * The count family's face: the runner stage, and the shard job that any thread or process can run
 * (read -> tokenize -> count one shard; its result is merged in shard order by `runCount`).
 */
export { count, countStage } from './count.ts';
export { runCount, type ReduceSource, type ShardSource } from './_run.ts';
export { reducePartition, reduceSections, type ReduceJob, type ReduceResult } from './_reduce.ts';
export { PartReader, partPath, RunReader, runPath, runTables, writePart, writeRun, type KeyedRows } from './_runfile.ts';
export { compareKeys } from './_sort.ts';
export { countJob, countShard, transferables, type CountJob, type ShardOptions } from './_shard.ts';
export { ngramHash, tokenHash } from './_table.ts';
export type { ShardCounts } from './_wire.ts';
export { SentenceSplitter, sentenceRowHashes, sentencesOf, SENTENCE_END, SENTENCE_START } from './_sentences.ts';
