// Limited-memory BFGS (Nocedal & Wright 2006, Alg. 7.4/7.5) with a strong-Wolfe line search
// (Alg. 3.5/3.6, cubic interpolation in the zoom). Parameters and all optimiser arithmetic are
// float64; the objective may compute in float32 (tfjs), which sets the attainable precision, so
// the stopping rules combine a gradient tolerance with a relative-decrease tolerance.
// Deterministic: no randomness, fixed evaluation order.
import { checkAborted, yieldToEventLoop } from './features.js';

/** Writes the gradient at `x` into `grad` and returns the objective value. */
export type Objective = (x: Float64Array, grad: Float64Array) => number | Promise<number>;

export interface LbfgsOptions {
  /** Stop when the largest |gradient entry| is at most this. Default 1e-5. */
  readonly gradientTolerance?: number;
  /** Stop when (f_prev - f) <= lossTolerance * max(|f_prev|, |f|, 1). Default 1e-10. */
  readonly lossTolerance?: number;
  /** Maximum number of iterations (accepted steps). Default 500. */
  readonly maxIterations?: number;
  /** Number of correction pairs kept. Default 10. */
  readonly memory?: number;
  /** Yield to the event loop every iteration (default true) so a server stays responsive. */
  readonly yieldEachIteration?: boolean;
  readonly signal?: AbortSignal;
  /**
   * Optional preconditioner: writes M^-1 v into out for a fixed symmetric positive definite M
   * that approximates the Hessian up to scale. L-BFGS then starts every two-loop recursion from
   * H0 = gamma * M^-1 instead of gamma * I (L-BFGS in the coordinates u = M^(1/2) x; same
   * minimiser, far fewer iterations on ill-conditioned problems).
   */
  readonly precondition?: (v: Float64Array, out: Float64Array) => void;
  /** Called after every accepted step. */
  readonly onIteration?: (progress: LbfgsProgress) => void;
}

export interface LbfgsProgress {
  readonly iteration: number;
  readonly f: number;
  readonly gradInfNorm: number;
  readonly evaluations: number;
}

export type LbfgsStopReason = 'gradient' | 'loss-change' | 'max-iterations' | 'line-search';

export interface LbfgsResult {
  readonly x: Float64Array;
  readonly f: number;
  /** max |gradient entry| at `x`. */
  readonly gradInfNorm: number;
  readonly iterations: number;
  readonly evaluations: number;
  readonly stopReason: LbfgsStopReason;
  /** True when stopped by the gradient or the relative-decrease test. */
  readonly converged: boolean;
}

function dotp(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] as number) * (b[i] as number);
  return s;
}

function infNorm(a: Float64Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const v = Math.abs(a[i] as number);
    if (v > m) m = v;
  }
  return m;
}

/** Minimiser of the cubic through (a, fa, da) and (b, fb, db); NaN if it does not exist. */
function cubicMin(a: number, fa: number, da: number, b: number, fb: number, db: number): number {
  const d1 = da + db - (3 * (fa - fb)) / (a - b);
  const disc = d1 * d1 - da * db;
  if (!(disc >= 0)) return Number.NaN;
  const d2 = Math.sign(b - a) * Math.sqrt(disc);
  return b - ((b - a) * (db + d2 - d1)) / (db - da + 2 * d2);
}

interface Point {
  /** Accepted by the approximate (not the strong) Wolfe conditions. */
  approx?: boolean;
  alpha: number;
  f: number;
  d: number; // directional derivative g . p
  x: Float64Array;
  g: Float64Array;
}

const C1 = 1e-4;
const C2 = 0.9;
const MAX_LINE_EVALS = 25;
const APPROX_WOLFE_EPS = 1e-6;
const APPROX_WOLFE_DELTA = 0.1;

/**
 * Minimises `objective` from `x0` (not modified). Throws whatever the objective throws, and the
 * abort reason if `signal` fires (checked between iterations).
 */
export async function minimizeLbfgs(objective: Objective, x0: Float64Array, options: LbfgsOptions = {}): Promise<LbfgsResult> {
  const gtol = options.gradientTolerance ?? 1e-5;
  const ftol = options.lossTolerance ?? 1e-10;
  const maxIter = options.maxIterations ?? 500;
  const mem = options.memory ?? 10;
  const yieldEach = options.yieldEachIteration ?? true;
  const n = x0.length;
  const precondition = options.precondition;
  const scratch = new Float64Array(n);

  let evaluations = 0;
  const evaluate = async (x: Float64Array, g: Float64Array): Promise<number> => {
    evaluations++;
    const f = await objective(x, g);
    return f;
  };

  let x: Float64Array = Float64Array.from(x0);
  let g: Float64Array = new Float64Array(n);
  let f = await evaluate(x, g);
  if (!Number.isFinite(f)) throw new RangeError(`L-BFGS: objective is ${f} at the starting point`);

  const sList: Float64Array[] = [];
  const yList: Float64Array[] = [];
  const rhoList: number[] = [];
  const p = new Float64Array(n);
  const alphas = new Float64Array(mem);
  let iterations = 0;
  let stopReason: LbfgsStopReason = 'max-iterations';

  if (infNorm(g) <= gtol) stopReason = 'gradient';
  else {
    while (iterations < maxIter) {
      checkAborted(options.signal);
      // Two-loop recursion: p = -H g.
      for (let i = 0; i < n; i++) p[i] = -(g[i] as number);
      const k = sList.length;
      for (let j = k - 1; j >= 0; j--) {
        const a = (rhoList[j] as number) * dotp(sList[j] as Float64Array, p);
        alphas[j] = a;
        const y = yList[j] as Float64Array;
        for (let i = 0; i < n; i++) p[i] = (p[i] as number) - a * (y[i] as number);
      }
      if (precondition !== undefined) {
        precondition(p, scratch);
        p.set(scratch);
      }
      if (k > 0) {
        const s = sList[k - 1] as Float64Array;
        const y = yList[k - 1] as Float64Array;
        let yHy: number;
        if (precondition !== undefined) {
          precondition(y, scratch);
          yHy = dotp(y, scratch);
        } else yHy = dotp(y, y);
        const gamma = dotp(s, y) / yHy;
        for (let i = 0; i < n; i++) p[i] = (p[i] as number) * gamma;
      }
      for (let j = 0; j < k; j++) {
        const y = yList[j] as Float64Array;
        const s = sList[j] as Float64Array;
        const b = (rhoList[j] as number) * dotp(y, p);
        const c = (alphas[j] as number) - b;
        for (let i = 0; i < n; i++) p[i] = (p[i] as number) + c * (s[i] as number);
      }
      let d0 = dotp(g, p);
      if (!(d0 < 0)) {
        // Not a descent direction (numerical trouble): drop the memory and restart from the
        // (preconditioned) steepest descent direction.
        sList.length = 0;
        yList.length = 0;
        rhoList.length = 0;
        for (let i = 0; i < n; i++) p[i] = -(g[i] as number);
        if (precondition !== undefined) {
          precondition(p, scratch);
          if (dotp(g, scratch) < 0) p.set(scratch);
        }
        d0 = dotp(g, p);
      }
      // Without curvature pairs, an unpreconditioned step starts at length ~1/||g||; a
      // preconditioned one is a (scaled) Newton step already.
      const alpha0 = sList.length === 0 && precondition === undefined ? Math.min(1, 1 / Math.sqrt(-d0)) : 1;

      const step = await lineSearch(evaluate, x, f, g, d0, p, alpha0);
      if (step === null) {
        stopReason = 'line-search';
        break;
      }
      iterations++;
      const s = new Float64Array(n);
      const y = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        s[i] = (step.x[i] as number) - (x[i] as number);
        y[i] = (step.g[i] as number) - (g[i] as number);
      }
      const sy = dotp(s, y);
      if (sy > 1e-12 * Math.sqrt(dotp(s, s) * dotp(y, y))) {
        if (sList.length === mem) {
          sList.shift();
          yList.shift();
          rhoList.shift();
        }
        sList.push(s);
        yList.push(y);
        rhoList.push(1 / sy);
      }
      const fPrev = f;
      x = step.x;
      g = step.g;
      f = step.f;
      const gInf = infNorm(g);
      options.onIteration?.({ iteration: iterations, f, gradInfNorm: gInf, evaluations });
      if (gInf <= gtol) {
        stopReason = 'gradient';
        break;
      }
      // A step taken on the approximate Wolfe conditions says nothing about f's decrease.
      if (step.approx !== true && fPrev - f <= ftol * Math.max(Math.abs(fPrev), Math.abs(f), 1)) {
        stopReason = 'loss-change';
        break;
      }
      if (yieldEach) await yieldToEventLoop();
    }
  }
  return {
    x,
    f,
    gradInfNorm: infNorm(g),
    iterations,
    evaluations,
    stopReason,
    converged: stopReason === 'gradient' || stopReason === 'loss-change',
  };
}

/**
 * Strong-Wolfe line search along p from x. Returns the accepted point, or null if no step with
 * sufficient decrease was found (the objective's precision is exhausted, or it is ill-behaved).
 */
async function lineSearch(
  evaluate: (x: Float64Array, g: Float64Array) => Promise<number>,
  x: Float64Array,
  f0: number,
  g0: Float64Array,
  d0: number,
  p: Float64Array,
  alphaInit: number,
): Promise<Point | null> {
  const n = x.length;
  let evals = 0;
  const at = async (alpha: number): Promise<Point> => {
    evals++;
    const xa = new Float64Array(n);
    for (let i = 0; i < n; i++) xa[i] = (x[i] as number) + alpha * (p[i] as number);
    const ga = new Float64Array(n);
    const fa = await evaluate(xa, ga);
    return { alpha, f: fa, d: dotp(ga, p), x: xa, g: ga };
  };
  const armijo = (pt: Point): boolean => Number.isFinite(pt.f) && pt.f <= f0 + C1 * pt.alpha * d0;
  const curvature = (pt: Point): boolean => Math.abs(pt.d) <= -C2 * d0;
  // Approximate Wolfe conditions (Hager & Zhang 2005): near the minimiser, decreases of f fall
  // below the objective's float32 precision while its gradient is still accurate; accept a step
  // whose directional derivative shows progress and whose f is within that precision of f0.
  const fNoise = APPROX_WOLFE_EPS * Math.abs(f0);
  const approxWolfe = (pt: Point): boolean =>
    Number.isFinite(pt.f) && pt.f <= f0 + fNoise && pt.d >= C2 * d0 && pt.d <= (2 * APPROX_WOLFE_DELTA - 1) * d0;

  let prev: Point = { alpha: 0, f: f0, d: d0, x, g: g0 };
  let alpha = alphaInit;
  let lo: Point;
  let hi: Point;
  for (;;) {
    const cur = await at(alpha);
    if (approxWolfe(cur) && !(armijo(cur) && curvature(cur))) return { ...cur, approx: true };
    if (!armijo(cur) || (prev.alpha > 0 && cur.f >= prev.f)) {
      lo = prev;
      hi = cur;
      break;
    }
    if (curvature(cur)) return cur;
    if (cur.d >= 0) {
      lo = cur;
      hi = prev;
      break;
    }
    if (evals >= MAX_LINE_EVALS) return cur; // sufficient decrease holds: accept
    prev = cur;
    alpha *= 4;
  }
  // Zoom: lo satisfies sufficient decrease and has the lowest f seen so far.
  while (evals < MAX_LINE_EVALS) {
    const lower = Math.min(lo.alpha, hi.alpha);
    const upper = Math.max(lo.alpha, hi.alpha);
    const width = upper - lower;
    if (width <= 1e-14 * Math.max(1, upper)) break;
    let a = Number.isFinite(hi.f) ? cubicMin(lo.alpha, lo.f, lo.d, hi.alpha, hi.f, hi.d) : Number.NaN;
    // Safeguard: stay well inside the bracket, bisect when interpolation fails.
    if (!Number.isFinite(a) || a < lower + 0.1 * width || a > upper - 0.1 * width) a = lower + 0.5 * width;
    const cur = await at(a);
    if (approxWolfe(cur) && !(armijo(cur) && curvature(cur))) return { ...cur, approx: true };
    if (!armijo(cur) || cur.f >= lo.f) {
      hi = cur;
    } else {
      if (curvature(cur)) return cur;
      if (cur.d * (hi.alpha - lo.alpha) >= 0) hi = lo;
      lo = cur;
    }
  }
  return lo.alpha > 0 ? lo : null;
}
