/**
 * Every file of a run directory, named once. The layout is a contract users rely on (README,
 * "A run directory holds"):
 *
 *   DIR/lmpipe.sqlite          counts, vocabulary, metrics, samples, stage checkpoints
 *   DIR/tokens.bin             the corpus as token ids (Int32 LE, tokens.id), written by count
 *   DIR/encoded/train.bin      vocabulary ids (Int32 LE) for training; encoded/valid.bin for validation
 *   DIR/checkpoints/train.ckpt the training checkpoint
 *   DIR/report.html            the report, with zipf.svg and training.svg beside it
 *   DIR/lock                   present while a run is using the directory
 *   DIR/nats-status.json       while count runs on NATS workers: workers connected, jobs pending/running/done
 *
 *   const paths = runPaths('runs/timemachine');
 *   openRunDatabase(paths.database);
 */
import { join } from 'node:path';

export function runPaths(dir: string) {
  return {
    dir,
    database: join(dir, 'lmpipe.sqlite'),
    tokens: join(dir, 'tokens.bin'),
    encodedDir: join(dir, 'encoded'),
    encodedTrain: join(dir, 'encoded', 'train.bin'),
    encodedValid: join(dir, 'encoded', 'valid.bin'),
    checkpointsDir: join(dir, 'checkpoints'),
    trainCheckpoint: join(dir, 'checkpoints', 'train.ckpt'),
    report: join(dir, 'report.html'),
    zipfSvg: join(dir, 'zipf.svg'),
    trainingSvg: join(dir, 'training.svg'),
    lock: join(dir, 'lock'),
    natsStatus: join(dir, 'nats-status.json'),
  };
}

export type RunPaths = ReturnType<typeof runPaths>;
