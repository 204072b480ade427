// Protocol versioning: `MAJOR.MINOR`. Peers with the same major interoperate; a minor bump only
// adds optional fields or message types, and the handshake settles on the lower minor, which
// both sides then speak. A different major is refused during the hello/welcome handshake.
import { VersionIncompatibleError, VersionMalformedError } from './errors.js';

/** The version this build speaks. */
// 2.0: every coordinator message is signed and bound to the connection (hello.nonce,
// welcome.coordinatorKey, sig on welcome/round-start/round-end/update-rejected/shutdown),
// round config carries cohortSize, update.metrics is optional.
// 2.1: round config carries the training recipe (model and augmentation), `recipe`.
// 2.2: round config `loss` names the losses agents train (ntxent, dcl, moco, triplet, margin,
// supcon; the never-trained infonce and contrastive are gone), with `margin` and `mining`.
// Also 2.2: the round recipe's optional `moco` block (key-encoder momentum, queue size) for loss 'moco'.
// 3.0: round config `dp` is {noiseMultiplier > 0, noise: 'agents' | 'coordinator'}; the required
// dp.cohortSize is gone (the denominator is the signed config.cohortSize, and each agent sizes its
// noise from the SecAgg+ parameters), and DP rounds aggregate unweighted. A 2.x peer would send
// or expect the old required field and add noise by the old formula, so this is a major.
// 3.1: Poisson self-sampling: sampling-invite (coordinator -> agent) and sampling-answer
// (agent -> coordinator), and round config `sampling` {rate, invited}. Only a coordinator in
// sampling mode 'poisson' sends them; a 3.0 peer never sees them otherwise.
// 4.0: secure aggregation's advertise signs each neighbour's inbox-key entry and keys messages
// carry {own, neighbours} (one signed entry per neighbour) instead of whole advertisements: a 3.x
// agent and a 4.0 coordinator could not finish a secure round, so the handshake refuses the pair.
export const PROTOCOL_VERSION = '4.0';

export interface ProtocolVersion {
  readonly major: number;
  readonly minor: number;
}

/** Source of the version regular expression, shared with the JSON schemas. */
export const PROTOCOL_VERSION_PATTERN = '^(0|[1-9][0-9]{0,5})\\.(0|[1-9][0-9]{0,5})$';
const VERSION_RE = new RegExp(PROTOCOL_VERSION_PATTERN);

/** Parses `MAJOR.MINOR`; throws FEDCLR_PROTO_VERSION_MALFORMED otherwise. */
export function parseProtocolVersion(version: unknown): ProtocolVersion {
  const m = typeof version === 'string' ? VERSION_RE.exec(version) : null;
  if (m === null || m[1] === undefined || m[2] === undefined) {
    throw new VersionMalformedError(typeof version === 'string' ? `'${version.slice(0, 40)}'` : typeof version);
  }
  return { major: Number(m[1]), minor: Number(m[2]) };
}

export function formatProtocolVersion(v: ProtocolVersion): string {
  return `${v.major}.${v.minor}`;
}

/** True when both versions parse and share a major. */
export function isCompatibleVersion(remote: string, local: string = PROTOCOL_VERSION): boolean {
  try {
    return parseProtocolVersion(remote).major === parseProtocolVersion(local).major;
  } catch {
    return false;
  }
}

/** Throws FEDCLR_PROTO_VERSION_INCOMPATIBLE (or _MALFORMED) unless `remote` can talk to `local`. */
export function assertCompatibleVersion(remote: unknown, local: string = PROTOCOL_VERSION): void {
  const r = parseProtocolVersion(remote);
  const l = parseProtocolVersion(local);
  if (r.major !== l.major) throw new VersionIncompatibleError(formatProtocolVersion(r), formatProtocolVersion(l));
}

/** The version both sides speak after a handshake: same major, lower minor. */
export function negotiateVersion(remote: unknown, local: string = PROTOCOL_VERSION): string {
  assertCompatibleVersion(remote, local);
  const r = parseProtocolVersion(remote);
  const l = parseProtocolVersion(local);
  return formatProtocolVersion({ major: l.major, minor: Math.min(r.minor, l.minor) });
}
