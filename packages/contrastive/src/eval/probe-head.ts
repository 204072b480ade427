// A linear classifier on a frozen encoder's representation (the linear probe of ./linear-probe.ts,
// fitted on labeled images), as a JSON file any tool can read:
//
//   { "format": "fedclr-linear-head/1", "classes": [...], "dim": D,
//     "model": { architecture, input, fingerprint },        the encoder it was fitted on
//     "mean": [D], "std": [D],                               standardisation of the representation
//     "weights": [(D + 1) * C],                              row-major [D + 1, C], last row the bias
//     "fit": { l2, fitCount, holdoutCount, holdoutAccuracy, fitAccuracy, source } }
//
//   probabilities = softmax(((x - mean) / std, 1) . weights)
import type { EmbeddingModel } from '../search/embeddings-file.js';
import { EvalHeadFileError, EvalInvalidLabelsError, EvalInvalidOptionError } from './errors.js';
import type { FeatureSet } from './features.js';
import { linearProbe, stratifiedSplit, type LinearProbeModel } from './linear-probe.js';

export const PROBE_HEAD_FORMAT = 'fedclr-linear-head/1';

export interface ProbeHead {
  readonly format: typeof PROBE_HEAD_FORMAT;
  readonly classes: readonly string[];
  readonly dim: number;
  readonly model: EmbeddingModel;
  readonly mean: readonly number[];
  readonly std: readonly number[];
  readonly weights: readonly number[];
  readonly fit: {
    readonly l2: number;
    readonly fitCount: number;
    readonly holdoutCount: number;
    /** Accuracy on the held-out images (never fitted on), or null without a holdout. */
    readonly holdoutAccuracy: number | null;
    readonly fitAccuracy: number;
    readonly source: string;
  };
}

export interface ProbeHeadOptions {
  /** Fraction of each class held out to score the head, in [0, 1). Default 0.2. */
  readonly holdout?: number;
  /** L2 strength, or 'auto' (chosen on part of the fit images). Default 'auto'. */
  readonly l2?: number | 'auto';
  readonly seed?: number;
}

function rows(set: FeatureSet, labels: Int32Array, pick: Int32Array): FeatureSet {
  const { dim } = set;
  const features = new Float32Array(pick.length * dim);
  pick.forEach((r, i) => features.set(set.features.subarray(r * dim, (r + 1) * dim), i * dim));
  return { features, labels: Int32Array.from(pick, (r) => labels[r] as number), dim };
}

/** Fits a head on labeled representations (labels index `classes`), scoring it on a stratified holdout. */
export async function fitProbeHead(set: FeatureSet, classes: readonly string[], model: EmbeddingModel, source: string, options: ProbeHeadOptions = {}): Promise<ProbeHead> {
  const holdout = options.holdout ?? 0.2;
  if (!(holdout >= 0 && holdout < 1)) throw new EvalInvalidOptionError('holdout', `expected a fraction in [0, 1), got ${String(holdout)}`);
  const C = classes.length;
  if (C < 2) throw new EvalInvalidLabelsError('train', `a classifier needs at least 2 classes, got ${C} (${classes.join(', ')})`);
  const labels = Int32Array.from(set.labels);
  const counts = new Array<number>(C).fill(0);
  for (const y of labels) counts[y] = (counts[y] ?? 0) + 1;
  const empty = classes.filter((_, c) => counts[c] === 0);
  if (empty.length > 0) throw new EvalInvalidLabelsError('train', `no images of class ${empty.join(', ')}`);
  const seed = options.seed ?? 0;
  const split = holdout > 0 ? stratifiedSplit(labels, C, holdout, seed, 'probe-head-holdout') : undefined;
  const scored = split !== undefined && split.val.length > 0;
  const fitSet = scored ? rows(set, labels, split.fit) : set;
  const testSet = scored ? rows(set, labels, split.val) : set;
  const result = await linearProbe(fitSet, testSet, { l2: options.l2 ?? 'auto', numClasses: C, seed });
  return {
    format: PROBE_HEAD_FORMAT,
    classes: [...classes],
    dim: set.dim,
    model,
    mean: Array.from(result.model.mean),
    std: Array.from(result.model.std),
    weights: Array.from(result.model.weights),
    fit: {
      l2: result.l2,
      fitCount: result.trainCount,
      holdoutCount: scored ? result.testCount : 0,
      holdoutAccuracy: scored ? result.accuracy : null,
      fitAccuracy: result.trainAccuracy,
      source,
    },
  };
}

function finiteArray(value: unknown, length: number, name: string, where: string): number[] {
  if (!Array.isArray(value) || value.length !== length || value.some((v) => typeof v !== 'number' || !Number.isFinite(v))) {
    throw new EvalHeadFileError(where, `${name} must be ${length} finite numbers`);
  }
  return value as number[];
}

/** A head from its JSON text, every field checked. */
export function parseProbeHead(text: string, where: string): ProbeHead {
  let head: ProbeHead;
  try {
    head = JSON.parse(text) as ProbeHead;
  } catch (err) {
    throw new EvalHeadFileError(where, `not JSON (${(err as Error).message})`);
  }
  if (head?.format !== PROBE_HEAD_FORMAT) throw new EvalHeadFileError(where, `format is ${JSON.stringify(head?.format)}, expected ${PROBE_HEAD_FORMAT}`);
  const { classes, dim } = head;
  if (!Array.isArray(classes) || classes.length < 2 || classes.some((c) => typeof c !== 'string')) throw new EvalHeadFileError(where, 'classes must be at least 2 names');
  if (!Number.isSafeInteger(dim) || dim < 1) throw new EvalHeadFileError(where, `dim must be a positive integer, got ${String(dim)}`);
  if (typeof head.model?.fingerprint !== 'string') throw new EvalHeadFileError(where, "model.fingerprint is missing: which encoder was it fitted on?");
  finiteArray(head.mean, dim, 'mean', where);
  if (finiteArray(head.std, dim, 'std', where).some((s) => s <= 0)) throw new EvalHeadFileError(where, 'std must be positive');
  finiteArray(head.weights, (dim + 1) * classes.length, `weights ([dim + 1, classes] = [${dim + 1}, ${classes.length}])`, where);
  return head;
}

/** The head as the probe's model, for linearProbeProbabilities. */
export function probeHeadModel(head: ProbeHead): LinearProbeModel {
  return { dim: head.dim, numClasses: head.classes.length, mean: Float64Array.from(head.mean), std: Float64Array.from(head.std), weights: Float32Array.from(head.weights) };
}
