// Server-side strategies (Flower's "strategy" half): given the global weights and the round's
// aggregate (sum of weighted deltas and the total weight, never an individual update) they
// return the next global weights. They are pure: state (momentum, Adam moments) goes in and
// comes out as data, so the engine only adopts it once the round is committed to disk and a
// checkpoint restores it exactly.
//
// With the mean delta  d = weightedSum / totalWeight  (in float64):
//   FedAvg   x' = x + lr * d                         (lr = 1: the example-weighted average of the local models)
//   FedAvgM  v' = momentum * v + d;  x' = x + lr * v'             (Hsu et al. 2019)
//   FedAdam  m' = b1 m + (1-b1) d;  v' = b2 v + (1-b2) d^2;  x' = x + lr * m' / (sqrt(v') + tau)
//            (Reddi et al. 2021, "Adaptive Federated Optimization", Alg. 2: no bias correction,
//             v initialised to tau^2; defaults b1 0.9, b2 0.99, tau 1e-3, lr 0.1)
// FedProx is not a server strategy: it is the agents' proximal term, sent as config.fedproxMu.
import { elementCount } from '@fedclr/protocol';
import type { Aggregate } from './aggregation.js';
import { StrategyError, StrategyStateError } from './errors.js';

export const STRATEGY_NAMES = ['fedavg', 'fedavgm', 'fedadam'] as const;
export type StrategyName = (typeof STRATEGY_NAMES)[number];

/** Serializable strategy state: named float64 buffers (each of the model's dimension) and a step count. */
export interface StrategyState {
  readonly strategy: StrategyName;
  /** Number of server updates applied so far. */
  readonly step: number;
  readonly buffers: Readonly<Record<string, Float64Array>>;
}

export interface StrategyResult {
  readonly weights: Float32Array;
  readonly state: StrategyState;
}

export interface Strategy {
  readonly name: StrategyName;
  readonly params: Readonly<Record<string, number>>;
  /** The state before the first round. */
  initialState(dimension: number): StrategyState;
  /** Next global weights. Does not modify `global`, `aggregate` or `state`. */
  apply(global: Float32Array, aggregate: Aggregate, state: StrategyState): StrategyResult;
}

export interface FedAvgParams {
  /** Server learning rate (1: plain weighted averaging). */
  lr?: number;
}
export interface FedAvgMParams {
  lr?: number;
  /** Server momentum beta. */
  momentum?: number;
}
export interface FedAdamParams {
  lr?: number;
  beta1?: number;
  beta2?: number;
  /** Adaptivity tau: v starts at tau^2 and tau is added to sqrt(v). */
  tau?: number;
}

export type StrategySpec =
  | ({ name: 'fedavg' } & FedAvgParams)
  | ({ name: 'fedavgm' } & FedAvgMParams)
  | ({ name: 'fedadam' } & FedAdamParams);

export const STRATEGY_DEFAULTS = {
  fedavg: { lr: 1 },
  fedavgm: { lr: 1, momentum: 0.9 },
  fedadam: { lr: 0.1, beta1: 0.9, beta2: 0.99, tau: 1e-3 },
} as const satisfies Record<StrategyName, Record<string, number>>;

/** The mean delta sum/weight, checked. */
function meanDelta(name: StrategyName, global: Float32Array, aggregate: Aggregate): Float64Array {
  if (!(aggregate.totalWeight > 0) || !Number.isFinite(aggregate.totalWeight)) {
    throw new StrategyError(name, `the aggregate's total weight is ${aggregate.totalWeight}; need a positive finite weight`);
  }
  if (aggregate.weightedSum.length !== global.length) {
    throw new StrategyError(name, `the aggregate has ${aggregate.weightedSum.length} values but the model has ${global.length}`);
  }
  const inv = 1 / aggregate.totalWeight;
  const d = new Float64Array(global.length);
  const s = aggregate.weightedSum;
  for (let i = 0; i < d.length; i++) d[i] = (s[i] as number) * inv;
  return d;
}

function checkState(name: StrategyName, state: StrategyState, dimension: number, buffers: readonly string[]): void {
  if (state.strategy !== name) throw new StrategyStateError(name, `the state belongs to strategy '${state.strategy}'`);
  for (const b of buffers) {
    const buf = state.buffers[b];
    if (!(buf instanceof Float64Array) || buf.length !== dimension) {
      throw new StrategyStateError(name, `buffer '${b}' must be a Float64Array of ${dimension} values`);
    }
  }
}

function toWeights(name: StrategyName, x: Float64Array): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = x[i] as number;
    out[i] = v;
    if (!Number.isFinite(out[i] as number)) {
      throw new StrategyError(name, `the new weight at index ${i} is ${out[i]} (diverged); the round is not applied`);
    }
  }
  return out;
}

function positive(name: StrategyName, key: string, v: number): number {
  if (!Number.isFinite(v) || v <= 0) throw new StrategyError(name, `parameter '${key}' must be a positive finite number; got ${v}`);
  return v;
}

function unit(name: StrategyName, key: string, v: number): number {
  if (!Number.isFinite(v) || v < 0 || v >= 1) throw new StrategyError(name, `parameter '${key}' must be in [0, 1); got ${v}`);
  return v;
}

export function fedAvg(params: FedAvgParams = {}): Strategy {
  const lr = positive('fedavg', 'lr', params.lr ?? STRATEGY_DEFAULTS.fedavg.lr);
  return {
    name: 'fedavg',
    params: { lr },
    initialState: () => ({ strategy: 'fedavg', step: 0, buffers: {} }),
    apply(global, aggregate, state) {
      checkState('fedavg', state, global.length, []);
      const d = meanDelta('fedavg', global, aggregate);
      for (let i = 0; i < d.length; i++) d[i] = (global[i] as number) + lr * (d[i] as number);
      return { weights: toWeights('fedavg', d), state: { strategy: 'fedavg', step: state.step + 1, buffers: {} } };
    },
  };
}

export function fedAvgM(params: FedAvgMParams = {}): Strategy {
  const lr = positive('fedavgm', 'lr', params.lr ?? STRATEGY_DEFAULTS.fedavgm.lr);
  const momentum = unit('fedavgm', 'momentum', params.momentum ?? STRATEGY_DEFAULTS.fedavgm.momentum);
  return {
    name: 'fedavgm',
    params: { lr, momentum },
    initialState: (n) => ({ strategy: 'fedavgm', step: 0, buffers: { velocity: new Float64Array(n) } }),
    apply(global, aggregate, state) {
      checkState('fedavgm', state, global.length, ['velocity']);
      const d = meanDelta('fedavgm', global, aggregate);
      const v0 = state.buffers['velocity'] as Float64Array;
      const v = new Float64Array(d.length);
      const x = new Float64Array(d.length);
      for (let i = 0; i < d.length; i++) {
        v[i] = momentum * (v0[i] as number) + (d[i] as number);
        x[i] = (global[i] as number) + lr * (v[i] as number);
      }
      return {
        weights: toWeights('fedavgm', x),
        state: { strategy: 'fedavgm', step: state.step + 1, buffers: { velocity: v } },
      };
    },
  };
}

export function fedAdam(params: FedAdamParams = {}): Strategy {
  const D = STRATEGY_DEFAULTS.fedadam;
  const lr = positive('fedadam', 'lr', params.lr ?? D.lr);
  const beta1 = unit('fedadam', 'beta1', params.beta1 ?? D.beta1);
  const beta2 = unit('fedadam', 'beta2', params.beta2 ?? D.beta2);
  const tau = positive('fedadam', 'tau', params.tau ?? D.tau);
  return {
    name: 'fedadam',
    params: { lr, beta1, beta2, tau },
    initialState: (n) => ({
      strategy: 'fedadam',
      step: 0,
      buffers: { m: new Float64Array(n), v: new Float64Array(n).fill(tau * tau) },
    }),
    apply(global, aggregate, state) {
      checkState('fedadam', state, global.length, ['m', 'v']);
      const d = meanDelta('fedadam', global, aggregate);
      const m0 = state.buffers['m'] as Float64Array;
      const v0 = state.buffers['v'] as Float64Array;
      const m = new Float64Array(d.length);
      const v = new Float64Array(d.length);
      const x = new Float64Array(d.length);
      for (let i = 0; i < d.length; i++) {
        const di = d[i] as number;
        const mi = beta1 * (m0[i] as number) + (1 - beta1) * di;
        const vi = beta2 * (v0[i] as number) + (1 - beta2) * di * di;
        m[i] = mi;
        v[i] = vi;
        x[i] = (global[i] as number) + (lr * mi) / (Math.sqrt(vi) + tau);
      }
      return {
        weights: toWeights('fedadam', x),
        state: { strategy: 'fedadam', step: state.step + 1, buffers: { m, v } },
      };
    },
  };
}

/** Builds a strategy from its (validated) spec. */
export function createStrategy(spec: StrategySpec): Strategy {
  switch (spec.name) {
    case 'fedavg':
      return fedAvg(spec);
    case 'fedavgm':
      return fedAvgM(spec);
    case 'fedadam':
      return fedAdam(spec);
  }
}

/** BatchNorm running statistics, by the Keras names every exported model uses. */
const STATISTIC_NAME = /\/moving_(mean|variance)$/;

/**
 * Positions (in the flat weight vector of `manifest`) that hold running statistics rather than
 * parameters: BatchNorm moving means and variances.
 */
export function statisticsMask(manifest: readonly { name: string; shape: readonly number[] }[]): Uint8Array {
  const mask = new Uint8Array(manifest.reduce((s, t) => s + elementCount(t.shape), 0));
  let offset = 0;
  for (const t of manifest) {
    const n = elementCount(t.shape);
    if (STATISTIC_NAME.test(t.name)) mask.fill(1, offset, offset + n);
    offset += n;
  }
  return mask;
}

/**
 * Running statistics are estimates, not parameters: a server step size or momentum would
 * extrapolate them (a variance can turn negative). Where `mask` is set, the next global value is
 * the example-weighted average of the agents' values, whatever the strategy.
 */
export function withAveragedStatistics(strategy: Strategy, mask: Uint8Array): Strategy {
  if (!mask.includes(1)) return strategy;
  return {
    name: strategy.name,
    params: strategy.params,
    initialState: (n) => strategy.initialState(n),
    apply(global, aggregate, state) {
      if (mask.length !== global.length) throw new StrategyError(strategy.name, `the statistics mask has ${mask.length} values but the model has ${global.length}`);
      // apply() has checked the aggregate; only the masked positions need their mean delta.
      const result = strategy.apply(global, aggregate, state);
      const inv = 1 / aggregate.totalWeight;
      const sum = aggregate.weightedSum;
      const weights = result.weights;
      for (let i = 0; i < mask.length; i++) if (mask[i] === 1) weights[i] = (global[i] as number) + (sum[i] as number) * inv;
      return { weights, state: result.state };
    },
  };
}
