/**
 * Picks the TensorFlow.js backend the trainer runs on. `auto` tries, in the order of BACKENDS
 * (pipeline/config.ts): the native TensorFlow bindings with CUDA (@tensorflow/tfjs-node-gpu), WebGPU
 * on a hardware adapter (@tensorflow/tfjs-backend-webgpu; _webgpu.ts), the native bindings without
 * CUDA (@tensorflow/tfjs-node), WebAssembly with XNNPACK and SIMD (@tensorflow/tfjs-backend-wasm),
 * then plain JavaScript (cpu). auto passes over a software WebGPU adapter (llvmpipe, SwiftShader),
 * which is slower than wasm, but `--backend webgpu` uses it: that is how CI tests the GPU path. A
 * forced choice (`--backend wasm`) that cannot load is an error, never a silent fallback.
 *
 *   const { name, detail } = await backend('auto');   // 'wasm', 'wasm (SIMD, 1 thread)'
 *   await backend('webgpu');                           // detail 'webgpu (llvmpipe, software)'
 *
 * The native packages are optionalDependencies (their install downloads libtensorflow, which fails
 * offline), so they are imported through a variable: a literal import() fails tsc when absent.
 * Results are bit-for-bit reproducible on one backend, not across backends (and on webgpu not even
 * there where scatter kernels add with float atomics: see the README).
 */
import * as tf from '@tensorflow/tfjs-core';
import { LmpipeError } from '../../lib/errors.ts';
import { BACKENDS, type BackendChoice } from '../../pipeline/config.ts';
import { registerWebgpu } from './_webgpu.ts';

export type { BackendChoice };
export type BackendName = Exclude<BackendChoice, 'auto'>;

export interface BackendInfo {
  /** The lmpipe name of the backend in use (what `--backend` takes). */
  name: BackendName;
  /** For people: "wasm (SIMD, 1 thread)". */
  detail: string;
  /** Why the backends tried before it were passed over (auto only). */
  skipped: string[];
}

const ORDER = BACKENDS.filter((name): name is BackendName => name !== 'auto');

/**
 * Loads and activates a backend; resolves to what is in use. With `auto`, `prefer` (the backend a
 * checkpoint was written on) is tried first, a software adapter included, so that a resumed run
 * continues where it started.
 */
export async function backend(choice: BackendChoice = 'auto', options: { prefer?: string } = {}): Promise<BackendInfo> {
  if (!BACKENDS.includes(choice)) throw new TypeError(`Expected \`--backend\` to be one of ${BACKENDS.join(', ')}, got \`${choice}\``);
  const prefer = ORDER.find((name) => name === options.prefer);
  const candidates = choice !== 'auto' ? [choice] : prefer ? [prefer, ...ORDER.filter((name) => name !== prefer)] : ORDER;
  const skipped: string[] = [];
  for (const name of candidates) {
    try {
      const detail = await _activate(name, { software: choice !== 'auto' || name === prefer });
      return { name, detail, skipped };
    } catch (error) {
      const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
      if (choice !== 'auto') {
        throw new LmpipeError('USAGE', `Expected \`--backend ${name}\` to load, got: ${reason}`);
      }
      skipped.push(`${name}: ${reason}`);
    }
  }
  throw new LmpipeError('INTERNAL', `No TensorFlow.js backend could load: ${skipped.join('; ')}`);
}

async function _activate(name: BackendName, allow: { software: boolean }): Promise<string> {
  if (name === 'webgpu') {
    const adapter = await registerWebgpu(() => _importOptional('webgpu'));
    if (adapter.software && !allow.software) throw new Error(`a software adapter (${adapter.label}), slower than wasm; --backend webgpu uses it`);
    await _use('webgpu');
    return `webgpu (${adapter.label})`;
  }
  if (name === 'tensorflow-gpu' || name === 'tensorflow') {
    const module = name === 'tensorflow-gpu' ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node';
    await _importOptional(module);
    await _use('tensorflow');
    return `${name} (${module} ${tf.version_core})`;
  }
  if (name === 'wasm') {
    const before = _processListeners();
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    await _use('wasm');
    // Emscripten's Node glue installs handlers that rethrow every uncaught error with its minified
    // source; the CLI prints its own one-line errors, so they go.
    _removeListenersAddedSince(before);
    const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
    const threads = wasm.getThreadsCount();
    return `wasm (${simd ? 'SIMD' : 'no SIMD'}, ${threads} thread${threads === 1 ? '' : 's'})`;
  }
  await import('@tensorflow/tfjs-backend-cpu');
  await _use('cpu');
  // The cpu backend greets Node users with advice to install tfjs-node on its first tensor; auto
  // already tried that, and the message would land in every run's output.
  const cpu = tf.findBackend('cpu') as unknown as { firstUse?: boolean };
  if (cpu) cpu.firstUse = false;
  return 'cpu (JavaScript)';
}

async function _importOptional<Module>(module: string): Promise<Module> {
  try {
    return await import(module);
  } catch (error) {
    const { code, message } = error as { code?: string; message?: string };
    const missing = code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND' || /Cannot find (package|module)/.test(message ?? '');
    if (missing) throw new Error(`${module} is not installed`);
    throw error;
  }
}

async function _use(name: string): Promise<void> {
  if (tf.getBackend() === name) return;
  // setBackend resolves false (after logging) when the backend's initialisation fails.
  if (!(await tf.setBackend(name))) throw new Error(`the ${name} backend failed to initialise`);
  await tf.ready();
}

type Listeners = Record<'uncaughtException' | 'unhandledRejection', Function[]>;

function _processListeners(): Listeners | undefined {
  if (typeof process === 'undefined' || typeof process.listeners !== 'function') return undefined;
  return { uncaughtException: process.listeners('uncaughtException'), unhandledRejection: process.listeners('unhandledRejection') };
}

function _removeListenersAddedSince(before: Listeners | undefined): void {
  const after = _processListeners();
  if (!before || !after) return;
  for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
    for (const listener of after[event]) {
      if (!before[event].includes(listener)) process.removeListener(event, listener as (...args: unknown[]) => void);
    }
  }
}
