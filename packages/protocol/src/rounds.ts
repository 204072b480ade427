// Cross-message checks: a message is valid on its own (messages.ts) and must also fit the
// round it belongs to. These open the tensor frame of round-start / update with every check
// that needs that context (round id, model version, manifest, aggregation mode).
import { HashMismatchError, InconsistentMessageError, RoundMismatchError } from './errors.js';
import { decodeFrame, type DecodedFrame, type Manifest } from './frame.js';
import type { ProtocolLimits } from './limits.js';
import type { RoundConfig, RoundStartMessage, UpdateMessage } from './schemas.js';

export interface OpenOptions {
  /** The manifest the frame must have (exact names, shapes, dtypes, order). */
  expected?: Manifest;
  /** Reject NaN/Inf in float32 tensors (default true). */
  checkFinite?: boolean;
  /** Copy tensor data out of the message buffer (default false: views). */
  copy?: boolean;
  limits?: Partial<ProtocolLimits> | Readonly<ProtocolLimits>;
}

/**
 * Agent side: decodes round-start's global weights and checks that the frame's hash (verified
 * against its content) is the announced modelVersion.
 */
export function openRoundStart(msg: RoundStartMessage, options: OpenOptions = {}): DecodedFrame {
  return decodeFrame(msg.weights, {
    expectedHash: msg.modelVersion,
    verifyHash: true,
    checkFinite: options.checkFinite ?? true,
    ...pick(options),
  });
}

/** What the coordinator knows about the round an update claims to belong to. */
export interface RoundContext {
  readonly roundId: number;
  readonly modelVersion: string;
  readonly config: Pick<RoundConfig, 'aggregation'>;
}

/**
 * Coordinator side: checks an update against its round and decodes its frame.
 * - roundId must be the round's (FEDCLR_PROTO_ROUND_MISMATCH);
 * - modelVersion must be the round's global model (FEDCLR_PROTO_HASH_MISMATCH: stale model);
 * - plain rounds need exampleCount; secure rounds must not reveal it nor per-agent metrics
 *   (FEDCLR_PROTO_INCONSISTENT);
 * - the frame must decode, match `expected` exactly, hash-verify, and hold no NaN/Inf.
 * In a secure round pass the masked layout (e.g. uint32 tensors) as `expected`.
 */
export function openUpdate(msg: UpdateMessage, round: RoundContext, options: OpenOptions = {}): DecodedFrame {
  if (msg.roundId !== round.roundId) throw new RoundMismatchError(msg.type, `${msg.roundId}`, `${round.roundId}`);
  if (msg.modelVersion !== round.modelVersion) {
    throw new HashMismatchError(`update.modelVersion (stale model) for round ${round.roundId}`, round.modelVersion, msg.modelVersion);
  }
  if (round.config.aggregation === 'plain' && msg.exampleCount === undefined) {
    throw new InconsistentMessageError(msg.type, "exampleCount is required when the round's aggregation is 'plain'");
  }
  if (round.config.aggregation === 'secure' && msg.exampleCount !== undefined) {
    throw new InconsistentMessageError(
      msg.type,
      "exampleCount must be absent when the round's aggregation is 'secure' (the count travels inside the masked vector)",
    );
  }
  if (round.config.aggregation === 'secure' && msg.metrics !== undefined) {
    throw new InconsistentMessageError(
      msg.type,
      "metrics must be absent when the round's aggregation is 'secure' (per-agent metrics would leak what the mask hides)",
    );
  }
  return decodeFrame(msg.frame, { verifyHash: true, checkFinite: options.checkFinite ?? true, ...pick(options) });
}

function pick(o: OpenOptions): Pick<OpenOptions, 'expected' | 'copy' | 'limits'> {
  const out: Pick<OpenOptions, 'expected' | 'copy' | 'limits'> = {};
  if (o.expected !== undefined) out.expected = o.expected;
  if (o.copy !== undefined) out.copy = o.copy;
  if (o.limits !== undefined) out.limits = o.limits;
  return out;
}
