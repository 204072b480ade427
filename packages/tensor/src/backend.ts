// Chooses the fastest tfjs backend that loads here: tfjs-node (native TensorFlow), then wasm
// (SIMD, with our fast gradient kernels), then the pure-JS cpu backend.
import * as tf from '@tensorflow/tfjs-core';
// The bare core's node bundle registers no gradients; tfjs-layers' bundle registers them all.
import '@tensorflow/tfjs-layers';
import { BackendUnavailableError, BackendUnknownError } from './errors.js';
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
}

const ORDER: readonly BackendName[] = ['node', 'wasm', 'cpu'];
let chosen: BackendChoice | undefined;

function describe(err: unknown): string {
  return err instanceof Error ? err.message.split('\n')[0] ?? err.name : String(err);
}

async function start(name: BackendName): Promise<BackendChoice> {
  switch (name) {
    case 'node': {
      await import('@tensorflow/tfjs-node' as string);
      if (!(await tf.setBackend('tensorflow'))) throw new Error('tfjs-node registered but did not initialise');
      return { name, tfjsName: 'tensorflow', reason: '' };
    }
    case 'wasm': {
      await import('@tensorflow/tfjs-backend-wasm');
      if (!(await tf.setBackend('wasm'))) throw new Error('wasm backend did not initialise');
      installFastWasmKernels();
      return { name, tfjsName: 'wasm', reason: '', simd: tf.env().getBool('WASM_HAS_SIMD_SUPPORT') };
    }
    case 'cpu': {
      await import('@tensorflow/tfjs-backend-cpu');
      if (!(await tf.setBackend('cpu'))) throw new Error('cpu backend did not initialise');
      return { name, tfjsName: 'cpu', reason: '' };
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
 * Starts a backend once per process and logs one line saying which and why.
 * `FEDCLR_BACKEND=node|wasm|cpu` (or `prefer`) forces one; forcing one that cannot start is an error.
 */
export async function initBackend(options: { prefer?: BackendName } = {}): Promise<BackendChoice> {
  if (chosen !== undefined) return chosen;
  const forced = options.prefer ?? (process.env.FEDCLR_BACKEND ? parseName(process.env.FEDCLR_BACKEND) : undefined);
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
      try {
        const choice = await start(name);
        choice.reason = skipped.length === 0 ? 'fastest available' : `fastest available (${skipped.join('; ')})`;
        chosen = choice;
        break;
      } catch (err) {
        skipped.push(`${name} unavailable: ${describe(err)}`);
      }
    }
    if (chosen === undefined) throw new BackendUnavailableError('any', skipped.join('; '));
  }
  getLogger().info({ backend: chosen.name, tfjs: tf.version_core, simd: chosen.simd, reason: chosen.reason }, `tfjs backend: ${chosen.name}`);
  return chosen;
}

/** The backend chosen by initBackend, if it ran. */
export function currentBackend(): BackendChoice | undefined {
  return chosen;
}
