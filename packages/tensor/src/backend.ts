// Chooses the fastest tfjs backend that loads here: tfjs-node (native TensorFlow), then wasm
// (SIMD, with our fast gradient kernels), then the pure-JS cpu backend.
import { isMainThread } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
// The bare core's node bundle registers no gradients; tfjs-layers' bundle registers them all.
import '@tensorflow/tfjs-layers';
import { BackendUnavailableError, BackendUnknownError, NativeSettingError, NativeUnavailableError } from './errors.js';
import { getLogger } from './log.js';
import { installFastWasmKernels } from './wasm/register.js';

export type BackendName = 'node' | 'wasm' | 'cpu';

export interface BackendChoice {
  /** Our name for it. */
  name: BackendName;
  /** tfjs's registry name ('tensorflow' for tfjs-node). */
  tfjsName: string;
  /** Why this one runs. */
  reason: string;
  simd?: boolean;
  /** wasm only: which kernels run its convolutions and products (native BLIS, or why not). */
  kernels?: string;
  /**
   * How training uses the cores: 'native' (tfjs-node: TensorFlow's own thread pool, so training
   * runs in-process and no worker thread loads the native addon), or 'worker-threads' (wasm and
   * cpu run one thread each: the batch is split over worker threads, one backend each).
   */
  parallelism: 'native' | 'worker-threads';
}

const ORDER: readonly BackendName[] = ['node', 'wasm', 'cpu'];
// tfjs-node runs TensorFlow's own thread pool: one per process, on the main thread. A worker
// thread (a training replica, the coordinator's evaluation) takes the next backend instead.
const NATIVE_IN_WORKER = 'tfjs-node is kept out of worker threads (it runs its own native threads)';
let chosen: BackendChoice | undefined;

function describe(err: unknown): string {
  return err instanceof Error ? err.message.split('\n')[0] ?? err.name : String(err);
}

async function start(name: BackendName): Promise<BackendChoice> {
  switch (name) {
    case 'node': {
      await import('@tensorflow/tfjs-node' as string);
      if (!(await tf.setBackend('tensorflow'))) throw new Error('tfjs-node registered but did not initialise');
      return { name, tfjsName: 'tensorflow', reason: '', parallelism: 'native' };
    }
    case 'wasm': {
      await import('@tensorflow/tfjs-backend-wasm');
      if (!(await tf.setBackend('wasm'))) throw new Error('wasm backend did not initialise');
      const kernels = installFastWasmKernels().detail;
      const simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT') as boolean;
      return { name, tfjsName: 'wasm', reason: '', simd, kernels, parallelism: 'worker-threads' };
    }
    case 'cpu': {
      await import('@tensorflow/tfjs-backend-cpu');
      if (!(await tf.setBackend('cpu'))) throw new Error('cpu backend did not initialise');
      return { name, tfjsName: 'cpu', reason: '', parallelism: 'worker-threads' };
    }
  }
}

function parseName(raw: string): BackendName {
  const name = raw.trim().toLowerCase();
  if (name === 'tensorflow' || name === 'tfjs-node') return 'node';
  if ((ORDER as readonly string[]).includes(name)) return name as BackendName;
  throw new BackendUnknownError(raw);
}

/**
 * Starts a backend once per process (once per worker thread) and logs one line saying which, why,
 * and how training uses the cores. `FEDCLR_BACKEND=node|wasm|cpu` (or `prefer`) forces one;
 * forcing one that cannot start is an error. Worker threads never load tfjs-node.
 */
export async function initBackend(options: { prefer?: BackendName } = {}): Promise<BackendChoice> {
  if (chosen !== undefined) return chosen;
  let forced = options.prefer ?? (process.env.FEDCLR_BACKEND ? parseName(process.env.FEDCLR_BACKEND) : undefined);
  if (forced === 'node' && !isMainThread) {
    if (options.prefer === 'node') throw new BackendUnavailableError('node', NATIVE_IN_WORKER);
    // FEDCLR_BACKEND=node names the process's backend; its worker threads take the next one.
    forced = undefined;
  }
  if (forced !== undefined) {
    try {
      const choice = await start(forced);
      choice.reason = options.prefer ? 'requested by the caller' : `forced by FEDCLR_BACKEND=${process.env.FEDCLR_BACKEND}`;
      chosen = choice;
    } catch (err) {
      throw new BackendUnavailableError(forced, describe(err));
    }
  } else {
    const skipped: string[] = [];
    for (const name of ORDER) {
      if (name === 'node' && !isMainThread) {
        skipped.push(NATIVE_IN_WORKER);
        continue;
      }
      try {
        const choice = await start(name);
        choice.reason = skipped.length === 0 ? 'fastest available' : `fastest available (${skipped.join('; ')})`;
        chosen = choice;
        break;
      } catch (err) {
        // A wrong or unmet FEDCLR_NATIVE_GEMM is the operator's mistake, not a reason to fall back to cpu.
        if (err instanceof NativeSettingError || err instanceof NativeUnavailableError) throw err;
        skipped.push(`${name} unavailable: ${describe(err)}`);
      }
    }
    if (chosen === undefined) throw new BackendUnavailableError('any', skipped.join('; '));
  }
  const training = chosen.parallelism === 'native' ? 'training in-process on its native threads' : 'training in worker threads, one backend each';
  getLogger().info(
    { backend: chosen.name, tfjs: tf.version_core, simd: chosen.simd, kernels: chosen.kernels, parallelism: chosen.parallelism, reason: chosen.reason },
    `tfjs backend: ${chosen.name} (${training}${chosen.kernels === undefined ? '' : `; ${chosen.kernels}`})`,
  );
  return chosen;
}

/** The backend chosen by initBackend, if it ran. */
export function currentBackend(): BackendChoice | undefined {
  return chosen;
}
