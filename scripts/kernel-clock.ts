// Wall-clock time per tfjs kernel, by wrapping every kernel registered for the active backend.
// Kernels that call other kernels' functions directly (our wasm gradient kernels call XNNPACK's
// captured implementations) are timed once, as themselves. A profiling tool: never in a product path.
import * as tf from '@tensorflow/tfjs-core';

export interface KernelTime {
  kernel: string;
  phase: string;
  calls: number;
  ms: number;
}

export class KernelClock {
  enabled = false;
  /** A label the caller moves along (e.g. forward / backward); kernels are totalled per label. */
  phase = '';
  private readonly totals = new Map<string, { calls: number; ms: number }>();
  private depth = 0;

  /** `byShape`: kernels named with the shapes of their inputs (e.g. each convolution layer apart). */
  constructor(byShape = false, backendName = tf.getBackend()) {
    for (const config of tf.getKernelsForBackend(backendName)) {
      const inner = config.kernelFunc;
      tf.unregisterKernel(config.kernelName, backendName);
      tf.registerKernel({
        ...config,
        kernelFunc: (args) => {
          if (!this.enabled || this.depth > 0) return inner(args);
          this.depth++;
          const t = performance.now();
          try {
            return inner(args);
          } finally {
            this.depth--;
            const shapes = byShape ? ` ${Object.values(args.inputs).map((t) => `[${t?.shape.join('x') ?? ''}]`).join(' ')}` : '';
            const key = `${this.phase}\u0000${config.kernelName}${shapes}`;
            const entry = this.totals.get(key) ?? { calls: 0, ms: 0 };
            entry.calls++;
            entry.ms += performance.now() - t;
            this.totals.set(key, entry);
          }
        },
      });
    }
  }

  /** Per step (totals divided by `steps`), largest first. */
  report(steps: number): KernelTime[] {
    return [...this.totals]
      .map(([key, v]) => {
        const [phase, kernel] = key.split('\u0000') as [string, string];
        return { kernel, phase, calls: Math.round(v.calls / steps), ms: Math.round((v.ms / steps) * 100) / 100 };
      })
      .sort((a, b) => b.ms - a.ms);
  }
}
