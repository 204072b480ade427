// Linear probe: multinomial logistic regression on frozen features, the standard measure of a
// self-supervised representation (SimCLR, BYOL, MoCo linear evaluation; here with the convex,
// full-batch solver of the "L-BFGS on standardised features" protocol rather than SGD).
//
//   Features are standardised with the TRAIN split's mean and std (applied unchanged to test).
//   Objective: mean cross-entropy over the train split + (l2 / 2) * ||W||^2 (bias unpenalised),
//   minimised to convergence by full-batch L-BFGS (./lbfgs.ts).
//   The l2 strength is fixed (default 1e-4 on the mean loss, i.e. independent of n), or chosen
//   on a seeded held-out part of the TRAIN split ('auto'), never on the test split.
//
// Heavy products run on the active tfjs backend (XNNPACK on wasm), both in plain orientation:
//   logits = Xb [n, d+1] x W [d+1, C]        (Xb: standardised features with a column of ones)
//   grad^T = G^T [C, n] x Xb [n, d+1]         (G = (softmax - onehot) / n, built in JS)
// so the big matrix lives once on the backend and is never transposed. Softmax, loss (float64)
// and the optimiser run in JS; everything is deterministic.
import * as tf from '@tensorflow/tfjs-core';
import { createRng, type Seed } from '@fedclr/data';
import { EvalInvalidOptionError } from './errors.js';
import {
  checkAborted,
  ensureBackend,
  fitStandardizer,
  readAndDispose,
  standardizeWithBias,
  validateSplits,
  yieldToEventLoop,
  type FeatureSet,
  type Standardizer,
  type ValidatedSplits,
} from './features.js';
import { minimizeLbfgs, type LbfgsProgress, type LbfgsResult, type LbfgsStopReason } from './lbfgs.js';

/** Default L2 strength (on the mean loss; features are standardised, so it is scale free). */
export const DEFAULT_PROBE_L2 = 1e-4;
/** Candidates tried by l2: 'auto' unless given. */
export const DEFAULT_PROBE_L2_CANDIDATES: readonly number[] = Object.freeze([1e-1, 1e-2, 1e-3, 1e-4, 1e-5]);
/** The l2 search stops once this many candidates in a row score below the best so far. */
const SEARCH_PATIENCE = 2;

export interface LinearProbeOptions {
  /** L2 strength >= 0 on the mean loss, or 'auto' to pick one on a held-out part of train. Default 1e-4. */
  readonly l2?: number | 'auto';
  /**
   * Candidates for l2: 'auto'. Default 1e-1 ... 1e-5 (decades). They are fitted from the
   * strongest down, each warm-started from the previous, and the search stops early once two
   * candidates in a row score below the best held-out accuracy so far.
   */
  readonly l2Candidates?: readonly number[];
  /** Fraction of the train split held out to choose l2 (stratified). Default 0.1. */
  readonly validationFraction?: number;
  /** Seed of the held-out split. Default 0. */
  readonly seed?: Seed;
  /** L-BFGS iteration cap. Default 1000. */
  readonly maxIterations?: number;
  /** Converged when max |gradient entry| <= this. Default 1e-5. */
  readonly gradientTolerance?: number;
  /** Gradient tolerance of the l2-search fits (only their held-out ranking matters). Default 1e-4. */
  readonly searchGradientTolerance?: number;
  /** ...or when the relative decrease of the objective in an iteration is <= this. Default 1e-10. */
  readonly lossTolerance?: number;
  /**
   * Precondition L-BFGS with the Gram matrix of the standardised train features (one extra
   * pass over the data; same minimiser, many fewer iterations when features are correlated,
   * as raw pixels are). Default true.
   */
  readonly precondition?: boolean;
  /** L-BFGS memory. Default 10. */
  readonly memory?: number;
  /** Number of classes; default: largest label in either split + 1. */
  readonly numClasses?: number;
  /** Rows per product when predicting (bounds memory). Default 8192. */
  readonly predictChunkRows?: number;
  readonly signal?: AbortSignal;
  /** Called after every L-BFGS iteration (of the l2 search fits too). */
  readonly onIteration?: (progress: LbfgsProgress & { readonly l2: number }) => void;
}

/** A trained probe: standardisation (train statistics) and softmax weights. */
export interface LinearProbeModel {
  readonly dim: number;
  readonly numClasses: number;
  /** Train mean and std per feature (std 1 for constant features). */
  readonly mean: Float64Array;
  readonly std: Float64Array;
  /** Row-major [dim + 1, numClasses]: weights on standardised features, last row the bias. */
  readonly weights: Float32Array;
}

export interface L2SearchEntry {
  readonly l2: number;
  readonly validationAccuracy: number;
  readonly validationLoss: number;
  readonly iterations: number;
  readonly converged: boolean;
}

export interface LinearProbeResult {
  /** Test accuracy. */
  readonly accuracy: number;
  readonly trainAccuracy: number;
  /** Final mean cross-entropy on train (without the L2 term). */
  readonly trainLoss: number;
  /** Final objective (train loss + L2 term). */
  readonly objective: number;
  /** Mean cross-entropy on test. */
  readonly testLoss: number;
  readonly l2: number;
  /** Per-candidate held-out scores when l2 was 'auto', else null. */
  readonly l2Search: readonly L2SearchEntry[] | null;
  readonly iterations: number;
  readonly evaluations: number;
  /** max |gradient entry| of the objective at the end. */
  readonly gradInfNorm: number;
  readonly converged: boolean;
  readonly stopReason: LbfgsStopReason;
  /** Predicted class per test example. */
  readonly predictions: Int32Array;
  readonly model: LinearProbeModel;
  readonly numClasses: number;
  readonly dim: number;
  readonly trainCount: number;
  readonly testCount: number;
  /** Wall time of the whole probe (including the l2 search). */
  readonly timeMs: number;
}

interface ResolvedOptions {
  l2: number | 'auto';
  l2Candidates: readonly number[];
  validationFraction: number;
  seed: Seed;
  maxIterations: number;
  gradientTolerance: number;
  searchGradientTolerance: number;
  lossTolerance: number;
  memory: number;
  precondition: boolean;
  predictChunkRows: number;
  signal: AbortSignal | undefined;
  onIteration: LinearProbeOptions['onIteration'];
}

function checkNumber(value: unknown, name: string, ok: (v: number) => boolean, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || !ok(value)) {
    throw new EvalInvalidOptionError(name, `expected ${what}, got ${String(value)}`);
  }
  return value;
}

function resolveOptions(options: LinearProbeOptions): ResolvedOptions {
  const l2 = options.l2 ?? DEFAULT_PROBE_L2;
  if (l2 !== 'auto') checkNumber(l2, 'linearProbe.l2', (v) => v >= 0, "a number >= 0 or 'auto'");
  const l2Candidates = options.l2Candidates ?? DEFAULT_PROBE_L2_CANDIDATES;
  if (!Array.isArray(l2Candidates) || l2Candidates.length === 0) {
    throw new EvalInvalidOptionError('linearProbe.l2Candidates', 'expected a non-empty array of numbers >= 0');
  }
  for (const c of l2Candidates) checkNumber(c, 'linearProbe.l2Candidates', (v) => v >= 0, 'numbers >= 0');
  const int = (v: number | undefined, name: string, dflt: number, min: number): number =>
    v === undefined ? dflt : checkNumber(v, name, (x) => Number.isSafeInteger(x) && x >= min, `an integer >= ${min}`);
  return {
    l2,
    l2Candidates,
    validationFraction:
      options.validationFraction === undefined
        ? 0.1
        : checkNumber(options.validationFraction, 'linearProbe.validationFraction', (v) => v > 0 && v < 1, 'a number in (0, 1)'),
    seed: options.seed ?? 0,
    maxIterations: int(options.maxIterations, 'linearProbe.maxIterations', 1000, 1),
    gradientTolerance:
      options.gradientTolerance === undefined
        ? 1e-5
        : checkNumber(options.gradientTolerance, 'linearProbe.gradientTolerance', (v) => v >= 0, 'a number >= 0'),
    searchGradientTolerance:
      options.searchGradientTolerance === undefined
        ? 1e-4
        : checkNumber(options.searchGradientTolerance, 'linearProbe.searchGradientTolerance', (v) => v >= 0, 'a number >= 0'),
    lossTolerance:
      options.lossTolerance === undefined
        ? 1e-10
        : checkNumber(options.lossTolerance, 'linearProbe.lossTolerance', (v) => v >= 0, 'a number >= 0'),
    memory: int(options.memory, 'linearProbe.memory', 10, 1),
    precondition: options.precondition ?? true,
    predictChunkRows: int(options.predictChunkRows, 'linearProbe.predictChunkRows', 8192, 1),
    signal: options.signal,
    onIteration: options.onIteration,
  };
}

/** Mean cross-entropy and argmax predictions (ties: lowest class) of row-major logits [n, C]. */
function scoreLogits(z: ArrayLike<number>, labels: Int32Array, offset: number, count: number, C: number, predictions: Int32Array): number {
  let loss = 0;
  for (let i = 0; i < count; i++) {
    const base = i * C;
    let best = 0;
    let zmax = z[base] as number;
    for (let c = 1; c < C; c++) {
      const v = z[base + c] as number;
      if (v > zmax) {
        zmax = v;
        best = c;
      }
    }
    let sum = 0;
    for (let c = 0; c < C; c++) sum += Math.exp((z[base + c] as number) - zmax);
    loss += zmax + Math.log(sum) - (z[base + (labels[offset + i] as number)] as number);
    predictions[offset + i] = best;
  }
  return loss;
}

/** Logits of a [rows, d+1] standardised-with-bias matrix, computed like the training forward pass. */
function logitsOf(xb: Float32Array, rows: number, d1: number, w32: Float32Array, C: number): Float32Array {
  return readAndDispose(tf.tidy(() => tf.matMul(tf.tensor2d(xb, [rows, d1]), tf.tensor2d(w32, [d1, C]))));
}

/** Predictions and mean cross-entropy of `model` on (features, labels), chunked. */
function evaluateModel(
  model: LinearProbeModel,
  features: Float32Array,
  labels: Int32Array,
  rows: Int32Array | undefined,
  chunkRows: number,
): { predictions: Int32Array; loss: number } {
  const n = rows === undefined ? labels.length : rows.length;
  const C = model.numClasses;
  const d1 = model.dim + 1;
  const predictions = new Int32Array(n);
  const lab = rows === undefined ? labels : Int32Array.from(rows, (r) => labels[r] as number);
  const st: Standardizer = { mean: model.mean, std: model.std };
  let loss = 0;
  for (let start = 0; start < n; start += chunkRows) {
    const m = Math.min(chunkRows, n - start);
    const idx = rows === undefined ? Int32Array.from({ length: m }, (_, i) => start + i) : rows.subarray(start, start + m);
    const xb = standardizeWithBias(features, 0, model.dim, st, idx);
    const z = logitsOf(xb, m, d1, model.weights, C);
    loss += scoreLogits(z, lab, start, m, C, predictions);
  }
  return { predictions, loss: loss / n };
}

/**
 * Predicted class (argmax of the logits, ties to the lowest class) of each of the `count` rows of
 * `features` ([count, model.dim]). Synchronous; needs an initialised tfjs backend.
 */
export function predictLinearProbe(model: LinearProbeModel, features: Float32Array, count: number, chunkRows = 8192): Int32Array {
  if (features.length !== count * model.dim) {
    throw new EvalInvalidOptionError('features', `length ${features.length} is not count * dim = ${count} * ${model.dim}`);
  }
  return evaluateModel(model, features, new Int32Array(count), undefined, chunkRows).predictions;
}

/**
 * Class probabilities (softmax of the logits), row-major [count, numClasses], of the `count` rows
 * of `features` ([count, model.dim]). Synchronous; needs an initialised tfjs backend.
 */
export function linearProbeProbabilities(model: LinearProbeModel, features: Float32Array, count: number): Float32Array {
  if (features.length !== count * model.dim) {
    throw new EvalInvalidOptionError('features', `length ${features.length} is not count * dim = ${count} * ${model.dim}`);
  }
  const C = model.numClasses;
  const xb = standardizeWithBias(features, count, model.dim, { mean: model.mean, std: model.std });
  const z = logitsOf(xb, count, model.dim + 1, model.weights, C);
  const out = new Float32Array(count * C);
  for (let i = 0; i < count; i++) {
    let zmax = -Infinity;
    for (let c = 0; c < C; c++) zmax = Math.max(zmax, z[i * C + c] as number);
    let sum = 0;
    for (let c = 0; c < C; c++) sum += Math.exp((z[i * C + c] as number) - zmax);
    for (let c = 0; c < C; c++) out[i * C + c] = Math.exp((z[i * C + c] as number) - zmax) / sum;
  }
  return out;
}

interface Fit {
  theta: Float64Array;
  w32: Float32Array;
  result: LbfgsResult;
}

/**
 * Minimises mean CE + l2/2 ||W||^2 over theta ([d+1, C] row-major, last row the bias) for the
 * standardised-with-bias matrix `xb` ([n, d+1]) already on the backend.
 */
async function fitSoftmax(
  data: Uploaded,
  labels: Int32Array,
  C: number,
  l2: number,
  theta0: Float64Array,
  opts: ResolvedOptions,
): Promise<Fit> {
  const xb = data.tensor;
  const [n, d1] = xb.shape;
  const d = d1 - 1;
  const w32 = new Float32Array(d1 * C);
  const gT = new Float32Array(C * n);
  const invN = 1 / n;
  const objective = (theta: Float64Array, grad: Float64Array): number => {
    for (let i = 0; i < w32.length; i++) w32[i] = theta[i] as number;
    const z = readAndDispose(tf.tidy(() => tf.matMul(xb, tf.tensor2d(w32, [d1, C]))));
    let loss = 0;
    const e = new Float64Array(C);
    for (let i = 0; i < n; i++) {
      const base = i * C;
      let zmax = z[base] as number;
      for (let c = 1; c < C; c++) if ((z[base + c] as number) > zmax) zmax = z[base + c] as number;
      let sum = 0;
      for (let c = 0; c < C; c++) {
        const v = Math.exp((z[base + c] as number) - zmax);
        e[c] = v;
        sum += v;
      }
      const y = labels[i] as number;
      loss += zmax + Math.log(sum) - (z[base + y] as number);
      const inv = invN / sum;
      for (let c = 0; c < C; c++) gT[c * n + i] = (e[c] as number) * inv - (c === y ? invN : 0);
    }
    const gx = readAndDispose(tf.tidy(() => tf.matMul(tf.tensor2d(gT, [C, n]), xb))); // [C, d+1]
    let reg = 0;
    for (let j = 0; j < d1; j++) {
      for (let c = 0; c < C; c++) {
        const k = j * C + c;
        const t = theta[k] as number;
        if (j < d) {
          reg += t * t;
          grad[k] = (gx[c * d1 + j] as number) + l2 * t;
        } else {
          grad[k] = gx[c * d1 + j] as number;
        }
      }
    }
    return loss * invN + 0.5 * l2 * reg;
  };
  const result = await minimizeLbfgs(objective, theta0, {
    gradientTolerance: opts.gradientTolerance,
    lossTolerance: opts.lossTolerance,
    maxIterations: opts.maxIterations,
    memory: opts.memory,
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(data.gram !== null ? { precondition: gramPreconditioner(data.gram, d1, C, l2) } : {}),
    ...(opts.onIteration ? { onIteration: (p: LbfgsProgress) => opts.onIteration?.({ ...p, l2 }) } : {}),
  });
  const finalW = Float32Array.from(result.x);
  return { theta: result.x, w32: finalW, result };
}

function l2Term(theta: Float64Array, d: number, C: number, l2: number): number {
  let reg = 0;
  for (let k = 0; k < d * C; k++) reg += (theta[k] as number) ** 2;
  return 0.5 * l2 * reg;
}

/** Stratified seeded split of [0, n) into (fit, validation) index lists, both sorted. */
/**
 * A seeded stratified split: about `fraction` of each class's rows into `val`, at least one row
 * of each present class kept in `fit`; both sorted. `stream` names the random stream.
 */
export function stratifiedSplit(labels: Int32Array, C: number, fraction: number, seed: Seed, stream = 'linear-probe-l2-split'): { fit: Int32Array; val: Int32Array } {
  const rng = createRng(seed).fork(stream);
  const byClass: number[][] = Array.from({ length: C }, () => []);
  for (let i = 0; i < labels.length; i++) (byClass[labels[i] as number] as number[]).push(i);
  const fit: number[] = [];
  const val: number[] = [];
  for (const members of byClass) {
    rng.shuffle(members);
    // Keep at least one example of each present class in the fit part.
    const nVal = Math.min(Math.round(members.length * fraction), Math.max(0, members.length - 1));
    for (let k = 0; k < members.length; k++) (k < nVal ? val : fit).push(members[k] as number);
  }
  fit.sort((a, b) => a - b);
  val.sort((a, b) => a - b);
  return { fit: Int32Array.from(fit), val: Int32Array.from(val) };
}

interface Uploaded {
  /** Standardised features with a column of ones, [n, d+1], on the backend. */
  tensor: tf.Tensor2D;
  /** X^T X / n of that matrix (row-major [d+1, d+1], float64), or null without preconditioning. */
  gram: Float64Array | null;
}

/** X^T X / n of a row-major [n, d1] matrix, by chunks of plain [d1, B] x [B, d1] products. */
function gramOf(xb: Float32Array, n: number, d1: number): Float64Array {
  const gram = new Float64Array(d1 * d1);
  const B = Math.max(1, Math.min(n, Math.floor((1 << 22) / d1)));
  const chunkT = new Float32Array(B * d1);
  for (let r0 = 0; r0 < n; r0 += B) {
    const m = Math.min(B, n - r0);
    for (let r = 0; r < m; r++) {
      const src = (r0 + r) * d1;
      for (let j = 0; j < d1; j++) chunkT[j * m + r] = xb[src + j] as number;
    }
    const part = readAndDispose(
      tf.tidy(() => tf.matMul(tf.tensor2d(chunkT.subarray(0, m * d1), [d1, m]), tf.tensor2d(xb.subarray(r0 * d1, (r0 + m) * d1), [m, d1]))),
    );
    for (let k = 0; k < gram.length; k++) gram[k] = (gram[k] as number) + (part[k] as number);
  }
  for (let k = 0; k < gram.length; k++) gram[k] = (gram[k] as number) / n;
  return gram;
}

/** Standardises rows (train statistics), uploads them, and computes the Gram matrix if asked. */
function uploadStandardized(
  features: Float32Array,
  count: number,
  dim: number,
  st: Standardizer,
  rows: Int32Array | undefined,
  withGram: boolean,
): Uploaded {
  const xb = standardizeWithBias(features, count, dim, st, rows);
  const n = rows === undefined ? count : rows.length;
  const gram = withGram ? gramOf(xb, n, dim + 1) : null;
  return { tensor: tf.tensor2d(xb, [n, dim + 1]), gram };
}

/**
 * M^-1 for M = gram / C + (l2 + 1e-6) I, the Kronecker-factored curvature of the softmax loss
 * with the class factor replaced by its value at uniform predictions (1/C), by a Cholesky
 * factorisation. Applied to a [d1, C] row-major parameter block, class by class.
 */
function gramPreconditioner(gram: Float64Array, d1: number, C: number, l2: number): (v: Float64Array, out: Float64Array) => void {
  const L = new Float64Array(d1 * d1);
  const ridge = l2 + 1e-6;
  for (let i = 0; i < d1; i++) {
    for (let j = 0; j <= i; j++) {
      let s = (gram[i * d1 + j] as number) / C + (i === j ? ridge : 0);
      for (let k = 0; k < j; k++) s -= (L[i * d1 + k] as number) * (L[j * d1 + k] as number);
      if (i === j) L[i * d1 + i] = Math.sqrt(Math.max(s, ridge * 1e-3));
      else L[i * d1 + j] = s / (L[j * d1 + j] as number);
    }
  }
  const acc = new Float64Array(C);
  return (v, out) => {
    // Forward: L y = v (y written into out).
    for (let i = 0; i < d1; i++) {
      for (let c = 0; c < C; c++) acc[c] = v[i * C + c] as number;
      const row = i * d1;
      for (let k = 0; k < i; k++) {
        const l = L[row + k] as number;
        const yk = k * C;
        for (let c = 0; c < C; c++) acc[c] = (acc[c] as number) - l * (out[yk + c] as number);
      }
      const inv = 1 / (L[row + i] as number);
      for (let c = 0; c < C; c++) out[i * C + c] = (acc[c] as number) * inv;
    }
    // Backward: L^T z = y, in place, row-oriented (column updates with rows of L).
    for (let i = d1 - 1; i >= 0; i--) {
      const row = i * d1;
      const inv = 1 / (L[row + i] as number);
      for (let c = 0; c < C; c++) out[i * C + c] = (out[i * C + c] as number) * inv;
      for (let k = 0; k < i; k++) {
        const l = L[row + k] as number;
        for (let c = 0; c < C; c++) out[k * C + c] = (out[k * C + c] as number) - l * (out[i * C + c] as number);
      }
    }
  };
}

function toModel(st: Standardizer, w32: Float32Array, dim: number, C: number): LinearProbeModel {
  return { dim, numClasses: C, mean: st.mean, std: st.std, weights: w32 };
}

/** Runs the probe on already validated splits (used by evaluateRepresentation). */
export async function linearProbeValidated(
  train: FeatureSet,
  test: FeatureSet,
  v: ValidatedSplits,
  options: LinearProbeOptions,
): Promise<LinearProbeResult> {
  const opts = resolveOptions(options);
  await ensureBackend();
  const started = performance.now();
  const { dim, numClasses: C, trainCount } = v;
  const d1 = dim + 1;
  let theta0: Float64Array = new Float64Array(d1 * C);

  let l2: number;
  let l2Search: L2SearchEntry[] | null = null;
  if (opts.l2 === 'auto') {
    const split = stratifiedSplit(v.trainLabels, C, opts.validationFraction, opts.seed);
    if (split.val.length === 0) {
      throw new EvalInvalidOptionError('linearProbe.validationFraction', `holds out no example of ${trainCount}; use more data or a larger fraction`);
    }
    const st = fitStandardizer(train.features, trainCount, dim, split.fit);
    const fitLabels = Int32Array.from(split.fit, (r) => v.trainLabels[r] as number);
    const data = uploadStandardized(train.features, trainCount, dim, st, split.fit, opts.precondition);
    l2Search = [];
    try {
      // Strongest regularisation first, each fit warm-started from the previous (continuation).
      const candidates = [...opts.l2Candidates].sort((a, b) => b - a);
      let theta: Float64Array = theta0;
      const thetas: Float64Array[] = [];
      for (const cand of candidates) {
        checkAborted(opts.signal);
        const fit = await fitSoftmax(data, fitLabels, C, cand, theta, { ...opts, gradientTolerance: opts.searchGradientTolerance });
        theta = fit.theta;
        thetas.push(theta);
        const scored = evaluateModel(toModel(st, fit.w32, dim, C), train.features, v.trainLabels, split.val, opts.predictChunkRows);
        let hits = 0;
        for (let i = 0; i < split.val.length; i++) if (scored.predictions[i] === v.trainLabels[split.val[i] as number]) hits++;
        l2Search.push({
          l2: cand,
          validationAccuracy: hits / split.val.length,
          validationLoss: scored.loss,
          iterations: fit.result.iterations,
          converged: fit.result.converged,
        });
        const bestAcc = Math.max(...l2Search.map((e) => e.validationAccuracy));
        const tail = l2Search.slice(-SEARCH_PATIENCE);
        if (tail.length === SEARCH_PATIENCE && tail.every((e) => e.validationAccuracy < bestAcc)) break;
      }
      // Best held-out accuracy; ties: lower held-out loss, then the stronger regularisation.
      let best = 0;
      for (let i = 1; i < l2Search.length; i++) {
        const a = l2Search[i] as L2SearchEntry;
        const b = l2Search[best] as L2SearchEntry;
        if (a.validationAccuracy > b.validationAccuracy || (a.validationAccuracy === b.validationAccuracy && a.validationLoss < b.validationLoss)) best = i;
      }
      l2 = (l2Search[best] as L2SearchEntry).l2;
      theta0 = thetas[best] as Float64Array;
    } finally {
      data.tensor.dispose();
    }
    await yieldToEventLoop();
  } else {
    l2 = opts.l2;
  }

  checkAborted(opts.signal);
  const st = fitStandardizer(train.features, trainCount, dim);
  const data = uploadStandardized(train.features, trainCount, dim, st, undefined, opts.precondition);
  let fit: Fit;
  try {
    fit = await fitSoftmax(data, v.trainLabels, C, l2, theta0, opts);
  } finally {
    data.tensor.dispose();
  }
  const model = toModel(st, fit.w32, dim, C);
  const onTrain = evaluateModel(model, train.features, v.trainLabels, undefined, opts.predictChunkRows);
  const onTest = evaluateModel(model, test.features, v.testLabels, undefined, opts.predictChunkRows);
  const hitsOf = (p: Int32Array, y: Int32Array): number => {
    let h = 0;
    for (let i = 0; i < y.length; i++) if (p[i] === y[i]) h++;
    return h / y.length;
  };
  return {
    accuracy: hitsOf(onTest.predictions, v.testLabels),
    trainAccuracy: hitsOf(onTrain.predictions, v.trainLabels),
    trainLoss: fit.result.f - l2Term(fit.theta, dim, C, l2),
    objective: fit.result.f,
    testLoss: onTest.loss,
    l2,
    l2Search,
    iterations: fit.result.iterations,
    evaluations: fit.result.evaluations,
    gradInfNorm: fit.result.gradInfNorm,
    converged: fit.result.converged,
    stopReason: fit.result.stopReason,
    predictions: onTest.predictions,
    model,
    numClasses: C,
    dim,
    trainCount,
    testCount: v.testCount,
    timeMs: performance.now() - started,
  };
}

/**
 * Trains a linear probe on `train` and scores it on `test`. Validates both splits first (shapes,
 * finite values, labels, at least numClasses train examples).
 */
export async function linearProbe(train: FeatureSet, test: FeatureSet, options: LinearProbeOptions = {}): Promise<LinearProbeResult> {
  const v = validateSplits(train, test, options.numClasses);
  return linearProbeValidated(train, test, v, options);
}
