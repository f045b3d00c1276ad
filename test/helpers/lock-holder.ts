/**
 * A second lmpipe process for test/unit/pipeline/lock.test.ts: takes the lock of DIR, says
 * "locked", and holds it until killed.
 *
 *   node --import tsx test/helpers/lock-holder.ts DIR
 */
import { acquireLock } from '../../pipeline/lock.ts';

acquireLock(process.argv[2]);
process.stdout.write('locked\n');
setInterval(() => {}, 60_000);
