// Poisson self-sampling (protocol 3.1): the agent, not the coordinator, decides whether it is in a
// round. For each sampling-invite {roundId, rate q} it draws a coin no one else can compute or
// re-roll and volunteers iff u < q:
//
//   samplingKey = HKDF-SHA256(ikm = Ed25519 seed, salt = '', info = 'fedclr-sampling-key-v1', 32 bytes)
//   u           = first 53 bits of HMAC-SHA256(samplingKey, 'fedclr-sampling-v1\0' || coordinatorKey || uint64be(roundId)) / 2^53
//
// Why these inputs: the seed is the agent's secret, so the coordinator cannot predict a coin; the
// run is bound by the coordinator's public key (pinned by the agent; it cannot pick another one
// per round), and the round id is the only coordinator-chosen input. A coordinator-chosen run id
// or nonce would let it re-invite the same round under fresh values until a target volunteers;
// with only the round id, a re-invitation of the same round gets the same answer. A new round id
// is a new coin, which is inherent to sampling every round (see README, DP and sampling).
//
// The memory of invitations: an agent refuses a round-start for a Poisson round (config.sampling
// set) unless it volunteered for that round id at that rate, and refuses any round-start for a
// round it declined, sampling field or not (rule 'not-sampled'). A coordinator can therefore drop
// volunteers, never add an agent its coin did not pick.
import { createHmac, hkdfSync } from 'node:crypto';
import type { RoundConfig } from '@fedclr/protocol';

const KEY_INFO = 'fedclr-sampling-key-v1';
const COIN_DOMAIN = 'fedclr-sampling-v1\0';
/** Invitations remembered per coordinator key (the newest; older round ids are long over). */
const MEMORY = 256;

/** The agent's sampling key: derived from its Ed25519 secret key (tweetnacl layout, seed first) with a domain label. */
export function deriveSamplingKey(ed25519SecretKey: Uint8Array): Buffer {
  if (ed25519SecretKey.length !== 64 && ed25519SecretKey.length !== 32) {
    throw new RangeError(`deriveSamplingKey needs a 64-byte Ed25519 secret key (or its 32-byte seed); got ${ed25519SecretKey.length} bytes`);
  }
  return Buffer.from(hkdfSync('sha256', ed25519SecretKey.subarray(0, 32), Buffer.alloc(0), KEY_INFO, 32));
}

/** The coin u in [0, 1) of (this agent's key, the run's coordinator key, roundId). */
export function samplingCoin(samplingKey: Uint8Array, coordinatorKey: Uint8Array, roundId: number): number {
  if (!Number.isSafeInteger(roundId) || roundId < 0) throw new RangeError(`roundId must be a safe non-negative integer; got ${roundId}`);
  const round = Buffer.alloc(8);
  round.writeBigUInt64BE(BigInt(roundId));
  const mac = createHmac('sha256', samplingKey).update(COIN_DOMAIN).update(coordinatorKey).update(round).digest();
  // 53 bits: every value is an exact double, so u is uniform on the grid k / 2^53.
  return Number(mac.readBigUInt64BE(0) >> 11n) / 2 ** 53;
}

/** Whether the coin volunteers at rate q (u < q; q = 1 always does). */
export function volunteers(coin: number, rate: number): boolean {
  return coin < rate;
}

interface Invitation {
  readonly rate: number;
  readonly volunteered: boolean;
}

/** What the agent answered, per coordinator key and round id; and the round-start check. */
export class SamplingMemory {
  private readonly key: Buffer;
  private readonly runs = new Map<string, Map<number, Invitation>>();

  constructor(ed25519SecretKey: Uint8Array) {
    this.key = deriveSamplingKey(ed25519SecretKey);
  }

  /**
   * The answer to an invitation: the coin's verdict, remembered. A second invitation for the same
   * round at another rate gets `conflict` (the first rate) and no answer: the first rate stands,
   * or a coordinator could raise q for an agent that declined.
   */
  invite(coordinatorKey: Uint8Array, roundId: number, rate: number): { volunteer: boolean } | { conflict: number } {
    const run = this.run(coordinatorKey);
    const known = run.get(roundId);
    if (known !== undefined) return known.rate === rate ? { volunteer: known.volunteered } : { conflict: known.rate };
    const volunteered = volunteers(samplingCoin(this.key, coordinatorKey, roundId), rate);
    run.set(roundId, { rate, volunteered });
    if (run.size > MEMORY) run.delete(Math.min(...run.keys()));
    return { volunteer: volunteered };
  }

  /** Why this agent must refuse a round-start (rule 'not-sampled'), or undefined when it may take part. */
  check(coordinatorKey: Uint8Array, roundId: number, config: Pick<RoundConfig, 'sampling'>): { rule: 'not-sampled'; problem: string } | undefined {
    const invitation = this.run(coordinatorKey).get(roundId);
    const sampling = config.sampling;
    if (invitation === undefined) {
      if (sampling === undefined) return undefined; // a coordinator-sampled round: the other policy rules decide
      return { rule: 'not-sampled', problem: `round ${roundId} is a Poisson round (rate ${sampling.rate}) but this agent was never invited to it, so its coin never volunteered it` };
    }
    if (!invitation.volunteered) {
      return { rule: 'not-sampled', problem: `this agent's coin declined round ${roundId} at rate ${invitation.rate}: a coordinator may not add an agent that did not volunteer` };
    }
    if (sampling === undefined || sampling.rate !== invitation.rate) {
      return {
        rule: 'not-sampled',
        problem: `this agent volunteered for round ${roundId} at rate ${invitation.rate}, but the round-start claims ${sampling === undefined ? 'no Poisson sampling' : `rate ${sampling.rate}`}`,
      };
    }
    return undefined;
  }

  private run(coordinatorKey: Uint8Array): Map<number, Invitation> {
    const id = Buffer.from(coordinatorKey).toString('hex');
    let run = this.runs.get(id);
    if (run === undefined) {
      run = new Map();
      this.runs.set(id, run);
    }
    return run;
  }
}
