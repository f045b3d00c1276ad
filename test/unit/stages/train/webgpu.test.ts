import t, { type Test } from 'tap';
import * as tf from '@tensorflow/tfjs-core';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { backend, type BackendInfo } from '../../../../stages/train/backend.ts';
import { describeAdapter, requestDevice } from '../../../../stages/train/_webgpu.ts';
import { PARITY_CASES, PARITY_STEPS, parityRun, type ParityCase, type ParityRun } from '../../../helpers/webgpu-parity.ts';

// llvmpipe starts a thread per core by default; on CI's two shared cores one costs less CPU in all.
process.env.LP_NUM_THREADS ??= '1';

let webgpu: BackendInfo | undefined;
let noGpu: string | false = false;
try {
  webgpu = await backend('webgpu');
} catch (error) {
  noGpu = `no WebGPU adapter here (${(error as Error).message}); .ci/run installs Mesa's Vulkan driver`;
}

t.test('requestDevice() reads adapter.info before asking for a device, with flat feature names and the adapter\'s limits', async (t) => {
  // Some Deno versions throw on adapter.info once a device exists, and reject a feature given as a list.
  let devices = 0;
  let asked: { requiredFeatures: unknown[]; requiredLimits: Record<string, number> } | undefined;
  const adapter = {
    get info() {
      if (devices > 0) throw new TypeError('adapter.info read after requestDevice');
      return { vendor: 'mesa', architecture: 'software', device: 'llvmpipe', description: 'llvmpipe: Mesa', isFallbackAdapter: true };
    },
    features: new Set(['timestamp-query', 'bgra8unorm-storage']),
    limits: { maxStorageBuffersPerShaderStage: 16, maxBufferSize: 2 ** 30, maxComputeWorkgroupSizeX: 256, maxColorAttachments: 8 } as Record<string, number>,
    async requestDevice(descriptor: { requiredFeatures: unknown[]; requiredLimits: Record<string, number> }) {
      if (descriptor.requiredFeatures.some((f) => typeof f !== 'string')) throw new TypeError('a feature name must be a string');
      devices++;
      asked = descriptor;
      return { label: 'device' };
    },
  };
  const { info, device } = await requestDevice(adapter);
  t.same(device, { label: 'device' });
  t.match(info, { vendor: 'mesa', description: 'llvmpipe: Mesa', isFallbackAdapter: true });
  t.same(asked?.requiredFeatures, ['timestamp-query'], 'bgra8unorm-storage (canvas output) is not asked for');
  t.same(asked?.requiredLimits, { maxStorageBuffersPerShaderStage: 16, maxBufferSize: 2 ** 30, maxComputeWorkgroupSizeX: 256 });
});

t.test('describeAdapter() calls Dawn\'s and Deno\'s llvmpipe "llvmpipe, software" and a GPU by its name', async (t) => {
  // What Dawn (webgpu 0.6.2) and Deno 2.9 report for Mesa 25's llvmpipe, as read on this machine.
  const dawn = { vendor: 'mesa', architecture: 'software', device: 'llvmpipe-llvm-15-0-6-256-bits-', description: 'llvmpipe: Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6) 0.0.1', isFallbackAdapter: true };
  const deno = { vendor: '65541', architecture: '', device: '0', description: 'llvmpipe (LLVM 15.0.6, 256 bits)', isFallbackAdapter: true };
  t.match(describeAdapter(dawn), { label: 'llvmpipe, software', software: true });
  t.match(describeAdapter(deno), { label: 'llvmpipe, software', software: true });
  t.match(describeAdapter({ ...deno, isFallbackAdapter: undefined }), { software: true }, 'known by name where isFallbackAdapter is missing');
  t.match(describeAdapter({ vendor: 'google', description: 'SwiftShader Device (Subzero)' }), { label: 'SwiftShader Device, software', software: true });
  const api = { darwin: 'metal', win32: 'd3d12' }[process.platform as string] ?? 'vulkan';
  t.match(describeAdapter({ vendor: 'nvidia', architecture: 'hopper', description: 'NVIDIA H200' }), { label: `NVIDIA H200, ${api}`, software: false });
});

t.test('--backend webgpu takes the software adapter; auto passes over it and says why', { skip: noGpu }, async (t) => {
  t.match(webgpu!.detail, /^webgpu \(.+, (software|vulkan|metal|d3d12)\)$/);
  t.equal(tf.env().getBool('WEBGPU_CPU_FORWARD'), false, 'small tensors stay on the GPU');
  const auto = await backend('auto');
  if (webgpu!.detail.endsWith(', software)')) {
    t.not(auto.name, 'webgpu');
    t.ok(auto.skipped.some((reason) => /^webgpu: a software adapter \(.+, software\)/.test(reason)), auto.skipped.join('; '));
  } else {
    t.equal(auto.name, 'webgpu', 'a hardware adapter is auto\'s choice after tensorflow-gpu');
  }
});

/** Losses within 1e-4 relative, parameters within 1e-4 of each tensor's largest magnitude, no leak, no sync read. */
function compare(t: Test, c: ParityCase, wasm: ParityRun, gpu: ParityRun, where: string): void {
  const name = `${where} ${c.cell}, ${c.layers} layer(s), ${c.input}`;
  t.equal(gpu.losses.length, PARITY_STEPS);
  const lossError = Math.max(...gpu.losses.map((loss, i) => Math.abs(loss - wasm.losses[i]) / Math.abs(wasm.losses[i])));
  t.ok(lossError <= 1e-4, `${name}: per-step losses within ${lossError.toExponential(1)} relative of wasm`);
  let paramError = 0;
  for (const [key, values] of Object.entries(wasm.params)) {
    const scale = Math.max(...values.map(Math.abs));
    for (let i = 0; i < values.length; i++) paramError = Math.max(paramError, Math.abs(gpu.params[key][i] - values[i]) / scale);
  }
  t.ok(paramError <= 1e-4, `${name}: final parameters within ${paramError.toExponential(1)} (of each tensor's scale)`);
  t.same(new Set(gpu.tensorCounts).size, 1, `${name}: numTensors flat over ${PARITY_STEPS} steps (${gpu.tensorCounts[0]})`);
  t.equal(gpu.syncReads, 0, `${name}: no synchronous read from the GPU`);
}

t.test('webgpu on Node (Dawn): 20 training steps match wasm for rnn, gru, lstm, one-hot and gather input, 1 and 2 layers', { skip: noGpu }, async (t) => {
  for (const c of PARITY_CASES) {
    await backend('wasm');
    const wasm = await parityRun(c);
    await backend('webgpu');
    compare(t, c, wasm, await parityRun(c), 'node');
  }
});

const ROOT = fileURLToPath(new URL('../../../..', import.meta.url));
const DENO = `${ROOT}node_modules/.bin/deno`;
/** Deno runs a subset that still holds every cell, both inputs and both depths: its dispatches cost more CPU. */
const DENO_CASES = [0, 7, 9, 10];

t.test('webgpu on Deno (its own navigator.gpu): training steps match wasm', { skip: noGpu || (!existsSync(DENO) && 'deno is not installed') }, async (t) => {
  const script = `${ROOT}test/helpers/webgpu-parity.ts`;
  const run = spawnSync(DENO, ['run', '-A', script, DENO_CASES.join(','), 'wasm', 'webgpu'], { encoding: 'utf8', cwd: ROOT, env: process.env });
  t.equal(run.status, 0, run.stderr.slice(-500));
  const deno = JSON.parse(run.stdout.trim().split('\n').pop()!);
  t.match(deno.webgpu.detail, /^webgpu \(.+\)$/);
  DENO_CASES.forEach((c, i) => compare(t, PARITY_CASES[c], deno.wasm.runs[i], deno.webgpu.runs[i], 'deno'));
});
