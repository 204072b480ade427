// Optimisers over the flat weight vector. Keeping the update in plain typed arrays (not tfjs
// optimiser variables) makes the state trivially checkpointable and identical on every backend,
// and lets data-parallel workers share one master copy of the weights.
import type { Segment, WeightManifest } from '@fedclr/tensor';
import { segmentsOf, totalSize } from '@fedclr/tensor';
import { InvalidTrainingConfigError } from '../errors.js';

export type OptimizerConfig =
  | { kind: 'adam'; beta1?: number; beta2?: number; epsilon?: number; weightDecay?: number }
  | { kind: 'sgd'; momentum?: number; nesterov?: boolean; weightDecay?: number };

export interface OptimizerState {
  kind: OptimizerConfig['kind'];
  step: number;
  /** First moment (Adam) or velocity (SGD), over trainable values in manifest order. */
  m: Float32Array;
  /** Second moment (Adam only; empty for SGD). */
  v: Float32Array;
}

/**
 * FedProx's proximal term (mu/2)·||w - anchor||² over the trainable weights: every update adds
 * its gradient mu·(w - anchor) to the loss gradient. `anchor` holds all weights in manifest order
 * (an agent's copy of the round's global model); its non-trainable entries (BatchNorm moving
 * statistics) are never read.
 */
export interface ProximalTerm {
  readonly mu: number;
  readonly anchor: Float32Array;
}

/** Trainable segments of a manifest and the size of their concatenation (the gradient vector). */
export function trainableSegments(manifest: WeightManifest): { segments: Segment[]; size: number } {
  const segments = segmentsOf(manifest).filter((s) => s.spec.trainable);
  return { segments, size: segments.reduce((a, s) => a + s.size, 0) };
}

function checkRange(value: number, name: string, lo: number, hi: number): void {
  if (!Number.isFinite(value) || value < lo || value >= hi) {
    throw new InvalidTrainingConfigError(`optimizer.${name}`, `expected a number in [${lo}, ${hi}), got ${String(value)}`);
  }
}

export class FlatOptimizer {
  readonly config: Required<Extract<OptimizerConfig, { kind: 'adam' }>> | Required<Extract<OptimizerConfig, { kind: 'sgd' }>>;
  readonly state: OptimizerState;
  private readonly segments: Segment[];
  private readonly proximal: ProximalTerm | undefined;

  /**
   * `moments`: memory for the optimiser state (m, then v for Adam), e.g. SharedArrayBuffers that
   * the parallel engine's workers update their slices of; fresh arrays when absent.
   */
  constructor(manifest: WeightManifest, config: OptimizerConfig, proximal?: ProximalTerm, moments?: { m: Float32Array; v: Float32Array }) {
    const { segments, size } = trainableSegments(manifest);
    this.segments = segments;
    if (proximal !== undefined) {
      if (!Number.isFinite(proximal.mu) || proximal.mu < 0) throw new InvalidTrainingConfigError('proximal.mu', `expected a number >= 0, got ${String(proximal.mu)}`);
      const total = totalSize(manifest);
      if (proximal.anchor.length !== total) throw new InvalidTrainingConfigError('proximal.anchor', `${proximal.anchor.length} values, the model has ${total}`);
    }
    // A copy: the caller's array may be reused (or trained in place) while this optimiser lives.
    this.proximal = proximal !== undefined && proximal.mu > 0 ? { mu: proximal.mu, anchor: Float32Array.from(proximal.anchor) } : undefined;
    if (config.kind === 'adam') {
      this.config = { kind: 'adam', beta1: config.beta1 ?? 0.9, beta2: config.beta2 ?? 0.999, epsilon: config.epsilon ?? 1e-8, weightDecay: config.weightDecay ?? 0 };
      checkRange(this.config.beta1, 'beta1', 0, 1);
      checkRange(this.config.beta2, 'beta2', 0, 1);
      checkRange(this.config.epsilon, 'epsilon', 0, 1);
      this.state = { kind: 'adam', step: 0, m: momentsOf(moments?.m, size, 'm'), v: momentsOf(moments?.v, size, 'v') };
    } else {
      this.config = { kind: 'sgd', momentum: config.momentum ?? 0.9, nesterov: config.nesterov ?? false, weightDecay: config.weightDecay ?? 0 };
      checkRange(this.config.momentum, 'momentum', 0, 1);
      this.state = { kind: 'sgd', step: 0, m: momentsOf(moments?.m, size, 'm'), v: new Float32Array(0) };
    }
    checkRange(this.config.weightDecay, 'weightDecay', 0, 1);
  }

  /** Restores a checkpointed state (sizes must match). */
  restore(state: OptimizerState): void {
    if (state.kind !== this.state.kind || state.m.length !== this.state.m.length || state.v.length !== this.state.v.length) {
      throw new InvalidTrainingConfigError('optimizer state', `a ${state.kind} state of ${state.m.length} values does not fit this ${this.state.kind} optimiser of ${this.state.m.length}`);
    }
    this.state.step = state.step;
    this.state.m.set(state.m);
    this.state.v.set(state.v);
  }

  /**
   * One update of the trainable values of `params` (all weights, manifest order) with gradient
   * `grads` (trainable values only). With a proximal term, `grads` gets mu·(w - anchor) added in place.
   */
  apply(params: Float32Array, grads: Float32Array, learningRate: number): void {
    this.applyRange(params, grads, learningRate, ++this.state.step, 0, this.state.m.length);
  }

  /** The step number of the next update; the parallel engine's workers then update their slices with it. */
  advance(): number {
    return ++this.state.step;
  }

  /**
   * The update of trainable values [start, end) (gradient indices) at optimiser step `step`
   * (1-based, for Adam's bias correction), from `grads[g - start]`. Slices are independent: the
   * parallel engine's workers update disjoint ones at once. With a proximal term, `grads` gets
   * mu·(w - anchor) added in place first.
   */
  applyRange(params: Float32Array, grads: Float32Array, learningRate: number, step: number, start: number, end: number): void {
    if (this.proximal !== undefined) this.addProximal(params, grads, this.proximal, start, end);
    const s = this.state;
    const wd = this.config.weightDecay;
    for (const { seg, lo, hi, offset } of this.slicesOf(start, end)) {
      if (this.config.kind === 'adam') {
        const { beta1, beta2, epsilon } = this.config;
        const c2 = 1 - Math.pow(beta2, step);
        const stepSize = learningRate / (1 - Math.pow(beta1, step));
        // Decoupled weight decay (AdamW) on kernels only, not on BatchNorm scales or biases.
        const keep = 1 - (seg.spec.shape.length > 1 ? wd * learningRate : 0);
        for (let g = lo; g < hi; g++) {
          const grad = grads[g - start] as number;
          const m = beta1 * (s.m[g] as number) + (1 - beta1) * grad;
          const v = beta2 * (s.v[g] as number) + (1 - beta2) * grad * grad;
          s.m[g] = m;
          s.v[g] = v;
          params[g + offset] = (params[g + offset] as number) * keep - (stepSize * m) / (Math.sqrt(v / c2) + epsilon);
        }
      } else {
        const { momentum, nesterov } = this.config;
        const decay = seg.spec.shape.length > 1 ? wd : 0;
        for (let g = lo; g < hi; g++) {
          const grad = (grads[g - start] as number) + decay * (params[g + offset] as number);
          const v = momentum * (s.m[g] as number) + grad;
          s.m[g] = v;
          params[g + offset] = (params[g + offset] as number) - learningRate * (nesterov ? grad + momentum * v : v);
        }
      }
    }
  }

  /** The trainable segments meeting gradient indices [start, end): gradients [lo, hi), weights [lo + offset, hi + offset). */
  private slicesOf(start: number, end: number): { seg: Segment; lo: number; hi: number; offset: number }[] {
    const out: { seg: Segment; lo: number; hi: number; offset: number }[] = [];
    let first = 0;
    for (const seg of this.segments) {
      const lo = Math.max(start, first);
      const hi = Math.min(end, first + seg.size);
      if (lo < hi) out.push({ seg, lo, hi, offset: seg.offset - first });
      first += seg.size;
    }
    return out;
  }

  // One pass over the trainable entries, before the update so that Adam's moments and SGD's
  // momentum see the proximal gradient exactly as they would see a loss term.
  private addProximal(params: Float32Array, grads: Float32Array, { mu, anchor }: ProximalTerm, start: number, end: number): void {
    for (const { lo, hi, offset } of this.slicesOf(start, end)) {
      for (let g = lo; g < hi; g++) {
        grads[g - start] = (grads[g - start] as number) + mu * ((params[g + offset] as number) - (anchor[g + offset] as number));
      }
    }
  }
}

function momentsOf(given: Float32Array | undefined, size: number, name: string): Float32Array {
  if (given === undefined) return new Float32Array(size);
  if (given.length !== size) throw new InvalidTrainingConfigError(`optimizer.${name}`, `${given.length} values, the model has ${size} trainable`);
  return given;
}

export interface ScheduleConfig {
  /** Peak learning rate. */
  learningRate: number;
  /** Linear warm-up steps from 0 to the peak. */
  warmupSteps?: number;
  /** Total steps of the cosine decay (after warm-up the rate follows a half cosine to `finalFraction`·peak). */
  totalSteps?: number;
  finalFraction?: number;
}

/** Learning rate at a step: linear warm-up, then cosine decay (or constant without totalSteps). */
export function learningRateAt(step: number, schedule: ScheduleConfig): number {
  const peak = schedule.learningRate;
  const warmup = schedule.warmupSteps ?? 0;
  if (step < warmup) return (peak * (step + 1)) / warmup;
  if (schedule.totalSteps === undefined) return peak;
  const span = Math.max(1, schedule.totalSteps - warmup);
  const progress = Math.min(1, (step - warmup) / span);
  const floor = peak * (schedule.finalFraction ?? 0);
  return floor + 0.5 * (peak - floor) * (1 + Math.cos(Math.PI * progress));
}
