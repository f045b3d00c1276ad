/**
 * The WebGPU backend's set-up, private to backend.ts: finds `navigator.gpu` (Deno's own; on Node the
 * optional `webgpu` package, Google's Dawn), asks for the adapter, names it, and registers
 * @tensorflow/tfjs-backend-webgpu on a device requested here rather than by tfjs itself, because:
 *
 * - tfjs reads `adapter.info` after `requestDevice`, which throws on some Deno versions
 *   (denoland/deno 25874, 28135): the info is read here first and handed to the backend;
 * - tfjs asks for `bgra8unorm-storage` as a nested list, which Deno rejects (denoland/webgpu-examples
 *   22); it serves canvas output only, so it is not asked for at all;
 * - tfjs's AddN binds one storage buffer per input and keeps the default limit of 8 per shader
 *   stage; the adapter's own limit is asked for (and clipGradients adds in chunks).
 *
 * The package registers its backend at import only when `navigator.gpu` exists then; registering
 * here, after the device exists, works in either order. `WEBGPU_CPU_FORWARD` (on by default) runs
 * tensors under 1,000 elements on the CPU, which would read GPU data back for every small op, so it
 * is turned off: everything stays on the GPU and the trainer reads only the loss, once per interval.
 */
import * as tf from '@tensorflow/tfjs-core';

/** The part of GPUAdapterInfo used here (WebGPU's types are not in TypeScript's DOM library). */
export interface AdapterInfo {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
}

interface Adapter {
  readonly info?: AdapterInfo;
  readonly isFallbackAdapter?: boolean;
  readonly features: { has(name: string): boolean };
  readonly limits: Record<string, number>;
  requestDevice(descriptor: { requiredFeatures: string[]; requiredLimits: Record<string, number> }): Promise<unknown>;
}

interface Gpu {
  requestAdapter(options?: { powerPreference?: 'high-performance' | 'low-power' }): Promise<Adapter | null>;
}

export interface WebgpuAdapter {
  /** "llvmpipe, software" or "NVIDIA H200, vulkan": what `webgpu (...)` shows. */
  label: string;
  /** A CPU rasterizer (llvmpipe, SwiftShader, WARP): correct but slower than wasm; auto skips it. */
  software: boolean;
  info: AdapterInfo;
}

/** The limits tfjs asks for, and the per-stage storage buffers AddN and Concat need. */
const LIMITS = [
  'maxComputeWorkgroupStorageSize', 'maxComputeWorkgroupsPerDimension', 'maxStorageBufferBindingSize',
  'maxBufferSize', 'maxComputeWorkgroupSizeX', 'maxComputeInvocationsPerWorkgroup', 'maxStorageBuffersPerShaderStage',
];

const SOFTWARE = /llvmpipe|lavapipe|swiftshader|software|microsoft basic render|warp/i;

/** The optional `webgpu` package (Dawn for Node). */
export interface Dawn {
  create(flags: string[]): Gpu;
  globals: object;
}

let pending: Promise<WebgpuAdapter> | undefined;

/**
 * Registers the `webgpu` tfjs backend on this process's adapter (once); resolves to what it is.
 * `loadDawn` imports the optional package, on Node only (Deno has its own navigator.gpu).
 */
export function registerWebgpu(loadDawn: () => Promise<Dawn>): Promise<WebgpuAdapter> {
  pending ??= _register(loadDawn).catch((error) => {
    pending = undefined;
    throw error;
  });
  return pending;
}

async function _register(loadDawn: () => Promise<Dawn>): Promise<WebgpuAdapter> {
  const gpu = await _navigatorGpu(loadDawn);
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error('no WebGPU adapter (is a Vulkan, Metal or Direct3D 12 driver installed?)');
  const { info, device } = await requestDevice(adapter);
  const { WebGPUBackend } = await import('@tensorflow/tfjs-backend-webgpu');
  if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
  tf.registerBackend('webgpu', () => new WebGPUBackend(device as never, info as never));
  tf.env().set('WEBGPU_CPU_FORWARD', false);
  return describeAdapter(info, adapter.isFallbackAdapter);
}

/**
 * Reads the adapter's info, THEN requests a device with flat feature names and the adapter's own
 * limits: the order and form that every runtime accepts (see the file comment).
 */
export async function requestDevice(adapter: Adapter): Promise<{ info: AdapterInfo; device: unknown }> {
  const raw = adapter.info ?? {};
  const info: AdapterInfo = {
    vendor: raw.vendor, architecture: raw.architecture, device: raw.device, description: raw.description,
    isFallbackAdapter: raw.isFallbackAdapter ?? adapter.isFallbackAdapter,
  };
  const requiredLimits: Record<string, number> = {};
  for (const name of LIMITS) if (typeof adapter.limits[name] === 'number') requiredLimits[name] = adapter.limits[name];
  const requiredFeatures = adapter.features.has('timestamp-query') ? ['timestamp-query'] : [];
  const device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
  return { info, device };
}

/**
 * Names an adapter for people: the device name (Dawn puts the driver's after a colon, wgpu its LLVM
 * version in parentheses) and either "software" or the native API this platform's WebGPU runs on.
 */
export function describeAdapter(info: AdapterInfo, fallback?: boolean): WebgpuAdapter {
  const text = [info.description, info.device, info.vendor].find((s) => s && s.trim()) ?? 'unknown adapter';
  const name = text.split(/[:(]/)[0].trim() || text.trim();
  const software = Boolean(info.isFallbackAdapter ?? fallback) || SOFTWARE.test(`${info.description} ${info.device} ${info.architecture}`);
  const platform = typeof process !== 'undefined' ? process.platform : 'linux';
  const api = platform === 'darwin' ? 'metal' : platform === 'win32' ? 'd3d12' : 'vulkan';
  return { label: `${name}, ${software ? 'software' : api}`, software, info };
}

/** Deno's built-in `navigator.gpu`, or Dawn's on Node. */
async function _navigatorGpu(loadDawn: () => Promise<Dawn>): Promise<Gpu> {
  const global = globalThis as { navigator?: { gpu?: Gpu } };
  if (global.navigator?.gpu) return global.navigator.gpu;
  if (typeof (globalThis as { Deno?: unknown }).Deno !== 'undefined') throw new Error('this Deno has no navigator.gpu');
  const dawn = await loadDawn();
  Object.assign(globalThis, dawn.globals); // GPUBufferUsage and friends, which tfjs uses as globals
  const gpu = dawn.create([]);
  if (global.navigator) Object.defineProperty(global.navigator, 'gpu', { value: gpu, configurable: true });
  else global.navigator = { gpu };
  return gpu;
}
