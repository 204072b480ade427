// Building the one thing an agent uploads: the update message for a round. Input is the
// global weights and the locally trained weights (plus scalars); output is an update whose
// frame holds delta = local - global in the global model's exact manifest, optionally clipped
// to an L2 norm and noised for distributed differential privacy. Nothing else can enter it.
import { randomFillSync } from 'node:crypto';
import { encodeFrame, findNonFinite } from '@fedclr/protocol';
import type { Manifest, ProtocolLimits, RoundConfig, UpdateMessage } from '@fedclr/protocol';
import { TrainerOutputError } from './errors.js';
import type { TrainOutput } from './trainer.js';

const METRIC_NAME = /^[A-Za-z][A-Za-z0-9_.]{0,63}$/;

export interface UpdateInput {
  readonly roundId: number;
  readonly modelVersion: string;
  readonly manifest: Manifest;
  readonly global: Float32Array;
  readonly output: TrainOutput;
  readonly config: RoundConfig;
  readonly durationMs: number;
  readonly limits: Pick<ProtocolLimits, 'maxFrameBytes' | 'maxMetrics'>;
  /** Source of Gaussian noise for DP (default: crypto-random Box-Muller). */
  readonly gaussian?: (out: Float64Array) => void;
}

export interface BuiltUpdate {
  /** The unsigned update message. */
  readonly message: UpdateMessage;
  readonly deltaNorm: number;
  readonly clipped: boolean;
}

/** Fills `out` with N(0, 1) draws from the OS CSPRNG (Box-Muller on 53-bit uniforms). */
export function cryptoGaussian(out: Float64Array): void {
  const words = new Uint32Array(4 * Math.ceil(out.length / 2));
  randomFillSync(words);
  for (let i = 0, w = 0; i < out.length; i += 2, w += 4) {
    const u1 = ((words[w] as number) * 2 ** 21 + ((words[w + 1] as number) >>> 11) + 1) / (2 ** 53 + 1); // (0, 1)
    const u2 = ((words[w + 2] as number) * 2 ** 21 + ((words[w + 3] as number) >>> 11)) / 2 ** 53;
    const r = Math.sqrt(-2 * Math.log(u1));
    out[i] = r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < out.length) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
}

/** A checked, clipped and (with DP) noised delta plus the update's scalar metrics. */
export interface PreparedDelta {
  readonly delta: Float32Array;
  readonly deltaNorm: number;
  readonly clipped: boolean;
  readonly metrics: NonNullable<UpdateMessage['metrics']>;
}

/** Checks the trainer's output and builds the update message (delta frame + scalar metrics). */
export function buildUpdate(input: UpdateInput): BuiltUpdate {
  const { delta, deltaNorm, clipped, metrics } = prepareDelta(input);
  const frame = encodeFrame({ manifest: input.manifest, data: delta }, { limits: { maxFrameBytes: input.limits.maxFrameBytes } });
  const message: UpdateMessage = {
    type: 'update',
    roundId: input.roundId,
    modelVersion: input.modelVersion,
    metrics,
    frame,
  };
  if (input.config.aggregation === 'plain') message.exampleCount = input.output.exampleCount;
  return { message, deltaNorm, clipped };
}

/**
 * Checks the trainer's output and computes delta = local - global, clipped to `clipNorm` and
 * noised for distributed DP, plus the scalar metrics. Shared by plain and secure uploads.
 */
export function prepareDelta(input: Omit<UpdateInput, 'modelVersion'>): PreparedDelta {
  const { output, global, roundId } = input;
  if (!(output.weights instanceof Float32Array)) throw new TrainerOutputError(roundId, 'weights must be a Float32Array');
  if (output.weights.length !== global.length) {
    throw new TrainerOutputError(roundId, `weights has ${output.weights.length} values; the global model has ${global.length}`);
  }
  if (!Number.isSafeInteger(output.exampleCount) || output.exampleCount < 1) {
    throw new TrainerOutputError(roundId, `exampleCount must be a positive integer; got ${output.exampleCount}`);
  }
  const bad = findNonFinite(output.weights);
  if (bad >= 0) throw new TrainerOutputError(roundId, `weight ${bad} is ${output.weights[bad]} (training diverged)`);

  const delta = new Float32Array(global.length);
  let sq = 0;
  for (let i = 0; i < delta.length; i++) {
    const d = (output.weights[i] as number) - (global[i] as number);
    delta[i] = d;
    sq += d * d;
  }
  const norm = Math.sqrt(sq);
  const c = input.config.clipNorm;
  let clipped = false;
  if (c > 0 && norm > c) {
    const f = c / norm;
    for (let i = 0; i < delta.length; i++) delta[i] = (delta[i] as number) * f;
    clipped = true;
  }
  if (input.config.dp !== undefined && input.config.dp.noiseMultiplier > 0) {
    // Distributed DP: each of n agents adds N(0, (sigma C)^2 / n) so the sum carries N(0, (sigma C)^2).
    const std = (input.config.dp.noiseMultiplier * c) / Math.sqrt(input.config.dp.cohortSize);
    const noise = new Float64Array(delta.length);
    (input.gaussian ?? cryptoGaussian)(noise);
    for (let i = 0; i < delta.length; i++) delta[i] = (delta[i] as number) + std * (noise[i] as number);
  }
  if (findNonFinite(delta) >= 0) throw new TrainerOutputError(roundId, 'the update holds non-finite values');

  const metrics: NonNullable<UpdateMessage['metrics']> = { loss: 0, durationMs: Math.max(0, Math.round(input.durationMs)) };
  const extra: Record<string, number> = {};
  let nExtra = 0;
  for (const [k, v] of Object.entries(output.metrics)) {
    if (typeof v !== 'number' || !Number.isFinite(v)) continue;
    if (k === 'loss') metrics.loss = v;
    else if (k === 'steps' && Number.isSafeInteger(v) && v >= 0) metrics.steps = v;
    else if (METRIC_NAME.test(k) && nExtra < input.limits.maxMetrics) {
      extra[k] = v;
      nExtra++;
    }
  }
  if (nExtra > 0) metrics.extra = extra;
  return { delta, deltaNorm: norm, clipped, metrics };
}
