// A deterministic stand-in for local training, for tests and load runs: the "trained" weights
// are the global weights plus seeded noise (uniform in [-scale, scale]), after an optional
// delay that honours the abort signal. Tests recompute the expected federated average with
// fakeLocalWeights().
import type { LocalTrainer, TrainInput, TrainOutput } from './trainer.js';

export interface FakeTrainerOptions {
  /** Seed of this agent's noise (combine with the round id). */
  readonly seed?: number | string;
  /** Simulated training time. */
  readonly delayMs?: number;
  readonly exampleCount?: number;
  /** Noise amplitude. */
  readonly scale?: number;
  /** Reported loss (default: decreases with the round). */
  readonly loss?: number;
  /** Make training fail (always, or for some rounds). */
  readonly fail?: boolean | ((round: number) => boolean);
  /** Produce a bad result on purpose (negative tests): NaN values or a wrong length. */
  readonly corrupt?: 'nan' | 'wrong-length';
}

/** FNV-1a of a string, as a uint32. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** mulberry32: small, fast, deterministic (not for cryptography). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The fake trainer's output weights: global + uniform noise in [-scale, scale], float32. */
export function fakeLocalWeights(global: Float32Array, seed: number | string, round: number, scale = 0.01): Float32Array {
  const next = mulberry32(fnv1a(`fedclr-fake\0${String(seed)}\0${round}`));
  const out = new Float32Array(global.length);
  for (let i = 0; i < out.length; i++) out[i] = (global[i] as number) + scale * (2 * next() - 1);
  return out;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      return;
    }
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

export function createFakeTrainer(options: FakeTrainerOptions = {}): LocalTrainer {
  const seed = options.seed ?? 0;
  const delayMs = options.delayMs ?? 0;
  const exampleCount = options.exampleCount ?? 100;
  const scale = options.scale ?? 0.01;
  return {
    async train(input: TrainInput, signal: AbortSignal, onProgress?: (f: number) => void): Promise<TrainOutput> {
      const steps = 4;
      for (let s = 0; s < steps; s++) {
        if (delayMs > 0) await sleep(delayMs / steps, signal);
        else if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('aborted');
        onProgress?.((s + 1) / steps);
      }
      const fail = typeof options.fail === 'function' ? options.fail(input.round) : options.fail === true;
      if (fail) throw new Error(`fake trainer failure in round ${input.round}`);
      let weights = fakeLocalWeights(input.globalWeights, seed, input.round, scale);
      if (options.corrupt === 'nan') weights[0] = Number.NaN;
      if (options.corrupt === 'wrong-length') weights = weights.subarray(0, Math.max(0, weights.length - 1));
      return {
        weights,
        exampleCount,
        // trainMs (the training loop's time, as the real trainer reports it): the configured delay.
        metrics: { loss: options.loss ?? 1 / (1 + input.round), steps: input.config.localEpochs * steps, ...(delayMs > 0 ? { trainMs: delayMs } : {}) },
      };
    },
  };
}
