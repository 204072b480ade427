// Deterministic cohort sampling. A round's cohort depends only on (seed, round id, the set of
// eligible agent ids): the ids are sorted first and the random stream is SHA-256 in counter
// mode keyed by seed and round, so a replay or a restarted coordinator picks the same cohort
// from the same agents, whatever the order in which they connected. Not for cryptography.
//
// That is sampling mode 'coordinator': the coordinator picks the cohort, so no amplification by
// sampling can be claimed. Mode 'poisson' (protocol 3.1): the engine invites every ready agent at
// rate q, each agent draws its own coin from a secret only it holds (apps/agent/src/sampling.ts)
// and the cohort is exactly the volunteers; agents refuse rounds their coin did not pick.
import { createHash } from 'node:crypto';

export const SAMPLING_MODES = ['coordinator', 'poisson'] as const;
export type SamplingMode = (typeof SAMPLING_MODES)[number];

/** How a round's cohort is chosen (CoordinatorConfig.sampling, resolved). */
export type SamplingSettings =
  | { readonly mode: 'coordinator' }
  | {
      readonly mode: 'poisson';
      /** q in (0, 1]: each invited agent volunteers with this probability, by its own coin. */
      readonly rate: number;
      /** How long the engine waits for the invited agents' answers. */
      readonly invitationWaitMs: number;
    };

export const COORDINATOR_SAMPLING: SamplingSettings = { mode: 'coordinator' };

/** A stream of uniform uint32 values derived from a label. */
export class HashStream {
  private readonly label: string;
  private counter = 0;
  private words: Uint32Array = new Uint32Array(0);
  private pos = 0;

  constructor(label: string) {
    this.label = label;
  }

  nextUint32(): number {
    if (this.pos >= this.words.length) {
      const digest = createHash('sha256').update(`${this.label}\0${this.counter++}`).digest();
      this.words = new Uint32Array(digest.buffer, digest.byteOffset, 8);
      this.pos = 0;
    }
    return this.words[this.pos++] as number;
  }

  /** Uniform integer in [0, n), unbiased (rejection sampling). */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 2 ** 32) throw new RangeError(`int(n) needs 1 <= n <= 2^32; got ${n}`);
    const limit = 2 ** 32 - (2 ** 32 % n);
    for (;;) {
      const x = this.nextUint32();
      if (x < limit) return x % n;
    }
  }
}

/** Picks min(k, ids.length) distinct ids, uniformly; the result is sorted. */
export function sampleCohort(ids: Iterable<string>, k: number, seed: number, roundId: number): string[] {
  const pool = [...new Set(ids)].sort();
  const take = Math.max(0, Math.min(k, pool.length));
  const rng = new HashStream(`fedclr-cohort-v1\0${seed}\0${roundId}`);
  for (let i = 0; i < take; i++) {
    const j = i + rng.int(pool.length - i);
    const t = pool[i] as string;
    pool[i] = pool[j] as string;
    pool[j] = t;
  }
  return pool.slice(0, take).sort();
}

/** A uint32 seed for round `roundId` (sent to agents in config.seed). */
export function roundSeed(seed: number, roundId: number): number {
  return new HashStream(`fedclr-round-seed-v1\0${seed}\0${roundId}`).nextUint32();
}
