// Size limits of the wire protocol. Both sides must agree on them (the coordinator announces
// its own in `welcome`); every schema and frame decoder is built from one ProtocolLimits.
import { constants as bufferConstants } from 'node:buffer';
import { InvalidLimitsError } from './errors.js';

export interface ProtocolLimits {
  /** Largest tensor frame, header included (global weights, updates). */
  maxFrameBytes: number;
  /** Largest opaque payload of a `secagg` envelope. */
  maxSecaggPayloadBytes: number;
  /** Largest JSON manifest inside a frame. */
  maxManifestBytes: number;
  /** Most tensors in one frame. */
  maxTensors: number;
  /** Highest tensor rank. */
  maxRank: number;
  /** Longest free-text field (error messages, reasons). */
  maxTextLength: number;
  /** Most capabilities in a hello. */
  maxCapabilities: number;
  /** Most entries in a metrics record. */
  maxMetrics: number;
}

const MiB = 1024 * 1024;

/**
 * Defaults: 256 MiB frames hold a 60M-parameter float32 model; socket.io's own
 * `maxHttpBufferSize` (1 MB by default) must be raised to at least maxFrameBytes plus a few KiB.
 */
export const DEFAULT_LIMITS: Readonly<ProtocolLimits> = Object.freeze({
  maxFrameBytes: 256 * MiB,
  maxSecaggPayloadBytes: 4 * MiB,
  maxManifestBytes: 1 * MiB,
  maxTensors: 4096,
  maxRank: 8,
  maxTextLength: 2048,
  maxCapabilities: 64,
  maxMetrics: 64,
});

const CEILINGS: Readonly<Record<keyof ProtocolLimits, number>> = {
  maxFrameBytes: Math.min(bufferConstants.MAX_LENGTH, Number.MAX_SAFE_INTEGER),
  maxSecaggPayloadBytes: bufferConstants.MAX_LENGTH,
  maxManifestBytes: 64 * MiB,
  maxTensors: 1_000_000,
  maxRank: 32,
  maxTextLength: 1 * MiB,
  maxCapabilities: 4096,
  maxMetrics: 4096,
};

/** Fills defaults and checks every limit is a positive integer below its ceiling. */
export function resolveLimits(partial: Partial<ProtocolLimits> = {}): Readonly<ProtocolLimits> {
  const out: ProtocolLimits = { ...DEFAULT_LIMITS };
  for (const [key, value] of Object.entries(partial)) {
    if (!Object.hasOwn(DEFAULT_LIMITS, key)) {
      throw new InvalidLimitsError(key, `unknown limit; known limits: ${Object.keys(DEFAULT_LIMITS).join(', ')}`);
    }
    if (value === undefined) continue;
    const name = key as keyof ProtocolLimits;
    const ceiling = CEILINGS[name];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > ceiling) {
      throw new InvalidLimitsError(key, `must be an integer in [1, ${ceiling}]; got ${String(value)}`);
    }
    out[name] = value;
  }
  if (out.maxFrameBytes < 128) {
    throw new InvalidLimitsError('maxFrameBytes', `must be at least 128 (a frame header alone is 64 bytes); got ${out.maxFrameBytes}`);
  }
  if (out.maxManifestBytes > out.maxFrameBytes - 64) {
    if (partial.maxManifestBytes !== undefined) {
      throw new InvalidLimitsError('maxManifestBytes', `must leave room for the 64-byte header within maxFrameBytes (${out.maxFrameBytes})`);
    }
    out.maxManifestBytes = out.maxFrameBytes - 64; // only maxFrameBytes was lowered: follow it
  }
  return Object.freeze(out);
}
