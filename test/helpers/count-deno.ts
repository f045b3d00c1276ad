/**
 * Runs the count stage under whichever runtime loads it (test/workers.test.ts runs it with Deno):
 *   deno run -A --config deno.json test/helpers/count-deno.ts DIR WORKERS TOKENIZER INPUT...
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { resolveConfig } from '../../pipeline/config.ts';
import type { TokenizerName } from '../../pipeline/types.ts';
import { countStage } from '../../stages/count/index.ts';
import { openRunDatabase } from '../../storage/schema.ts';

const runtime = globalThis as { Deno?: { args: string[] } };
const [dir, workers, tokenizer, ...input] = runtime.Deno ? runtime.Deno.args : process.argv.slice(2);
mkdirSync(dir, { recursive: true });
const db = openRunDatabase(join(dir, 'lmpipe.sqlite'));
const config = resolveConfig({ input, tokenizer: tokenizer as TokenizerName, order: 4, workers: Number(workers), shardMb: 0.001 });
for await (const _ of countStage.run({ dir, db, config, fingerprint: 'deno', signal: new AbortController().signal, log: () => {} }));
console.log(db.driver);
db.close();
