import t from 'tap';
import * as tf from '@tensorflow/tfjs-core';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { backend } from '../../../../stages/train/backend.ts';
import { Rng } from '../../../../lib/rng.ts';
import { initHidden, initParams, lossAndGradients, type ModelShape } from '../../../../stages/train/model.ts';
import { applyUpdate, clipGradients, createOptimizer } from '../../../../stages/train/optim.ts';
import { parallelSteps, threeSteps } from '../../../helpers/train-deno.ts';

const installed = (name: string) => {
  try {
    createRequire(import.meta.url).resolve(name);
    return true;
  } catch {
    return false;
  }
};

t.test('backend() forces cpu and wasm and names what it loaded', async (t) => {
  t.match(await backend('cpu'), { name: 'cpu', detail: 'cpu (JavaScript)' });
  t.equal(tf.getBackend(), 'cpu');
  const wasm = await backend('wasm');
  t.equal(wasm.name, 'wasm');
  t.match(wasm.detail, /^wasm \((SIMD|no SIMD), \d+ threads?\)$/);
  t.equal(tf.getBackend(), 'wasm');
});

t.test('backend() refuses a forced native backend that is not installed, and auto passes over it', { skip: installed('@tensorflow/tfjs-node') && 'tfjs-node is installed here' }, async (t) => {
  await t.rejects(backend('tensorflow'), { name: 'LmpipeError', code: 'USAGE', message: /Expected `--backend tensorflow` to load, got: @tensorflow\/tfjs-node is not installed/ });
  const auto = await backend('auto');
  t.equal(auto.name, 'wasm');
  // webgpu: skipped for a software adapter (CI's llvmpipe), no adapter at all, or no Dawn package.
  t.match(auto.skipped, [/^tensorflow-gpu: .*not installed/, /^webgpu: (a software adapter|no WebGPU adapter|webgpu is not installed)/, /^tensorflow: .*not installed/]);
});

t.test('backend("auto", { prefer }) tries the backend a checkpoint was written on first', async (t) => {
  t.match(await backend('auto', { prefer: 'cpu' }), { name: 'cpu', skipped: [] });
  t.equal((await backend('auto', { prefer: 'no-such-backend' })).name, (await backend('auto')).name, 'an unknown name changes nothing');
});

t.test('wasm: the scatterND gradient of the row gather sums repeated ids like one-hotᵀ · dY on cpu', async (t) => {
  const ids = Int32Array.of(2, 0, 2, 2, 1, 0);
  const rng = new Rng(5);
  const dy = Float32Array.from({ length: ids.length * 3 }, () => rng.normal());
  const viaScatter = async () => {
    const out = tf.scatterND(tf.tensor2d(ids, [ids.length, 1], 'int32'), tf.tensor2d(dy, [ids.length, 3]), [4, 3]);
    return Array.from(await out.data());
  };
  await backend('wasm');
  const wasm = await viaScatter();
  await backend('cpu');
  const oneHotT = tf.transpose(tf.cast(tf.oneHot(tf.tensor1d(ids, 'int32'), 4), 'float32'));
  const expected = Array.from(await tf.matMul(oneHotT, tf.tensor2d(dy, [ids.length, 3])).data());
  t.ok(wasm.every((v, i) => Math.abs(v - expected[i]) < 1e-6), `${wasm} vs ${expected}`);
  t.ok(expected.slice(9).every((v) => v === 0), 'an id that never occurs gets zero');
});

t.test('wasm: the model runs no OneHot kernel, whose float32 form tfjs 4.22 gets wrong there', async (t) => {
  await backend('wasm');
  const ids = [3, 0, 2];
  const expected = ids.flatMap((id) => [0, 1, 2, 3].map((j) => (j === id ? 1 : 0)));
  // The pitfall: oneHot(ids, n, 1, 0, 'float32') reads int32 bits as floats on wasm.
  const direct = Array.from(await tf.oneHot(tf.tensor1d(ids, 'int32'), 4, 1, 0, 'float32').data());
  t.notSame(direct, expected, `tfjs oneHot with dtype float32 on wasm still gives ${direct.slice(0, 4).join(', ')}, ...`);
  // So the model builds its one-hot rows in JavaScript: a training step on the one-hot path (a
  // vocabulary under 512) must not run the kernel at all.
  const shape: ModelShape = { cell: 'rnn', vocabSize: 28, hidden: 8, layers: 1 };
  const rng = new Rng(3);
  const params = initParams(shape, rng);
  const window = { inputs: Int32Array.from({ length: 12 }, () => rng.int(0, 27)), targets: Int32Array.from({ length: 12 }, () => rng.int(0, 27)), batchSize: 3, steps: 4 };
  const profile = await tf.profile(() => {
    const result = lossAndGradients(params, shape, window, initHidden(shape, 3), {});
    return [result.loss, ...Object.values(result.gradients), ...result.hidden.flat()];
  });
  t.ok(profile.kernelNames.includes('MatMul') || profile.kernelNames.includes('_FusedMatMul'), `the step ran: ${profile.kernelNames.join(', ')}`);
  t.notOk(profile.kernelNames.includes('OneHot'), 'no OneHot kernel');
});

t.test('training steps keep tf.memory().numTensors flat (rnn, gru, lstm; cpu and wasm)', async (t) => {
  for (const name of ['cpu', 'wasm'] as const) {
    await backend(name);
    for (const cell of ['rnn', 'gru', 'lstm'] as const) {
      const shape: ModelShape = { cell, vocabSize: 600, hidden: 8, layers: 2 }; // 600 > 512: the gather path
      const rng = new Rng(1);
      let params = initParams(shape, rng);
      const optimizer = createOptimizer('adam', params);
      let hidden = initHidden(shape, 3);
      const window = { inputs: Int32Array.from({ length: 15 }, () => rng.int(0, 599)), targets: Int32Array.from({ length: 15 }, () => rng.int(0, 599)), batchSize: 3, steps: 5 };
      const counts: number[] = [];
      for (let step = 0; step < 4; step++) {
        const result = lossAndGradients(params, shape, window, hidden, { xi: Float32Array.of(1, 0, 2, 1, 2) });
        const clipped = clipGradients(result.gradients, 1);
        params = applyUpdate(params, clipped.gradients, optimizer, 0.01);
        tf.dispose([result.loss, clipped.norm, hidden.flat(), Object.values(result.gradients), Object.values(clipped.gradients)]);
        hidden = result.hidden;
        counts.push(tf.memory().numTensors);
      }
      t.same(counts.slice(1), counts.slice(0, 3), `${name} ${cell}: ${counts.join(', ')}`);
      tf.dispose([Object.values(params), Object.values(optimizer.slots), hidden.flat()]);
    }
  }
});

t.test('wasm and cpu compute the same training steps (to float32 rounding)', async (t) => {
  await backend('cpu');
  const cpu = threeSteps();
  await backend('wasm');
  const wasm = threeSteps();
  t.ok(cpu.losses.every((loss, i) => Math.abs(loss - wasm.losses[i]) < 1e-5), `${cpu.losses} vs ${wasm.losses}`);
  t.ok(Math.abs(cpu.checksum - wasm.checksum) < 1e-4);
});

const DENO = fileURLToPath(new URL('../../../../node_modules/.bin/deno', import.meta.url));
t.test('under Deno, cpu and wasm load and train exactly as under Node, with training workers too', { skip: !existsSync(DENO) && 'deno is not installed' }, async (t) => {
  const script = fileURLToPath(new URL('../../../helpers/train-deno.ts', import.meta.url));
  const run = spawnSync(DENO, ['run', '-A', script, 'cpu', 'wasm', 'workers'], { encoding: 'utf8', cwd: fileURLToPath(new URL('../../../..', import.meta.url)) });
  t.equal(run.status, 0, run.stderr.slice(-500));
  const deno = JSON.parse(run.stdout.trim().split('\n').pop()!);
  for (const name of ['cpu', 'wasm'] as const) {
    await backend(name);
    const node = threeSteps();
    t.same(deno[name].losses, node.losses, `${name}: identical losses`);
    t.equal(deno[name].checksum, node.checksum, `${name}: identical weights`);
  }
  await backend('wasm');
  const node = await parallelSteps('wasm');
  t.ok(node.length >= 10, `${node.length} steps`);
  t.same(deno.workers, node, 'with 2 training workers (worker threads under Deno): identical losses');
});
