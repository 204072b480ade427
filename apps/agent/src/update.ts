// Building the one thing an agent uploads: the update message for a round. Input is the
// global weights and the locally trained weights (plus scalars); output is an update whose
// frame holds delta = local - global in the global model's exact manifest, optionally clipped
// to an L2 norm. Nothing else can enter it. A DP round's noise is added later, in float64, by
// encodeSecureInput (secure rounds: its size comes from the signed session parameters) or by the
// coordinator (plain rounds with dp.noise 'coordinator').
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
}

export interface BuiltUpdate {
  /** The unsigned update message. */
  readonly message: UpdateMessage;
  readonly deltaNorm: number;
  readonly clipped: boolean;
}

/** A checked and clipped delta plus the update's scalar metrics. */
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
 * Checks the trainer's output and computes delta = local - global, clipped to L2 norm
 * `clipNorm`, plus the scalar metrics. Shared by plain and secure uploads.
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
