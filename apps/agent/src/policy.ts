// The agent's round policy: what a round must promise before this agent trains on its private
// images. Checked on every (verified) round-start; a round that breaks it is refused with
// FEDCLR_AGENT_POLICY_REFUSED and the rule's name, and nothing is trained or uploaded.
//
//   requireSecure       (default on; --allow-plain / --require-secure)  aggregation must be 'secure'
//   minCohort           (default 5; --min-cohort N)       config.cohortSize >= N
//   minNoiseMultiplier  (default 0; --min-noise-multiplier S)  with S > 0 the round must configure DP
//                       with dp.noiseMultiplier >= S
//   requireSampling     (default off; --require-sampling / --allow-coordinator-sampling)  the round
//                       must be a Poisson round (config.sampling), which this agent joins only if
//                       its own coin volunteered it (sampling.ts, rule 'not-sampled'): without it a
//                       coordinator running Poisson sampling could still put this agent into a
//                       round by sending a coordinator-sampled round-start
//   always              a DP round needs clipNorm > 0 (the noise and the influence bound are scaled
//                       to it), and its noise where the aggregation can carry it: 'agents' in secure
//                       rounds, 'coordinator' in plain ones (which requireSecure refuses anyway). With
//                       'agents' in a plain round each update the coordinator sees would carry only
//                       1/sqrt(n_min) of the noise; with 'coordinator' in a secure round the
//                       coordinator would hold the noiseless sum.
//
// Why 5 agents: the secure sum hides one agent's update only among the others in it. SecAgg+
// with its default dropout/corruption tolerances needs at least 3 (the CLI's simulate refuses
// fewer); 5 leaves a margin for 1-2 dropouts and is what the coordinator's --min-cohort default
// should be at least for a production run. Simulations on one machine lower it explicitly.
//
// The policy lives in <stateDir>/policy.json (mode 0600, written atomically): options given at
// start override the stored values and are saved, so a restart without flags keeps them.
import { chmod, open, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { DpNoisePlacement, RoundConfig } from '@fedclr/protocol';
import { PolicyInvalidError } from './errors.js';

export interface RoundPolicy {
  /** Refuse rounds whose aggregation is not 'secure' (default true). */
  readonly requireSecure: boolean;
  /** Refuse rounds whose sampled cohort (config.cohortSize) is smaller (default 5). */
  readonly minCohort: number;
  /** With a value > 0: refuse rounds without DP or with dp.noiseMultiplier below it (default 0: any). */
  readonly minNoiseMultiplier: number;
  /** Refuse rounds that are not Poisson rounds (config.sampling absent): cohorts the coordinator chose (default false). */
  readonly requireSampling: boolean;
}

export const POLICY_DEFAULTS: RoundPolicy = { requireSecure: true, minCohort: 5, minNoiseMultiplier: 0, requireSampling: false };
export const POLICY_FILE = 'policy.json';

/** The flag that sets each field (named in errors and refusal reasons). */
export const POLICY_FLAGS: Readonly<Record<keyof RoundPolicy, string>> = {
  requireSecure: '--allow-plain / --require-secure',
  minCohort: '--min-cohort',
  minNoiseMultiplier: '--min-noise-multiplier',
  requireSampling: '--require-sampling / --allow-coordinator-sampling',
};

const MAX_COHORT = 1_000_000;
const MAX_NOISE = 1000;

/** Checks a partial policy; throws FEDCLR_AGENT_POLICY_INVALID naming the flag. */
export function validatePolicy(p: Partial<Record<keyof RoundPolicy, unknown>>, where = ''): Partial<RoundPolicy> {
  const out: { -readonly [K in keyof RoundPolicy]?: RoundPolicy[K] } = {};
  const name = (k: keyof RoundPolicy): string => `${POLICY_FLAGS[k]}${where}`;
  if (p.requireSecure !== undefined) {
    if (typeof p.requireSecure !== 'boolean') throw new PolicyInvalidError(name('requireSecure'), 'true or false', JSON.stringify(p.requireSecure));
    out.requireSecure = p.requireSecure;
  }
  if (p.minCohort !== undefined) {
    const v = p.minCohort;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_COHORT) {
      throw new PolicyInvalidError(name('minCohort'), `an integer from 1 to ${MAX_COHORT} (agents in the round)`, JSON.stringify(v));
    }
    out.minCohort = v;
  }
  if (p.minNoiseMultiplier !== undefined) {
    const v = p.minNoiseMultiplier;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > MAX_NOISE) {
      throw new PolicyInvalidError(name('minNoiseMultiplier'), `a number from 0 to ${MAX_NOISE} (0: any noise, or none)`, JSON.stringify(v));
    }
    out.minNoiseMultiplier = v;
  }
  if (p.requireSampling !== undefined) {
    if (typeof p.requireSampling !== 'boolean') throw new PolicyInvalidError(name('requireSampling'), 'true or false', JSON.stringify(p.requireSampling));
    out.requireSampling = p.requireSampling;
  }
  return out;
}

/** Why `config` breaks `policy`: the rule (its flag) and the problem; undefined when it complies. */
export function checkRoundPolicy(policy: RoundPolicy, config: RoundConfig): { rule: string; problem: string } | undefined {
  if (policy.requireSecure && config.aggregation !== 'secure') {
    return {
      rule: 'require-secure',
      problem: `aggregation is '${config.aggregation}': the coordinator would see this agent's own update; this agent requires 'secure' (start it with --allow-plain to accept plain rounds)`,
    };
  }
  if (policy.requireSampling && config.sampling === undefined) {
    return {
      rule: 'require-sampling',
      problem: 'the round is not a Poisson round (no config.sampling): its cohort was chosen by the coordinator, not by this agent\'s own coin; this agent requires Poisson sampling (start it with --allow-coordinator-sampling to accept such rounds)',
    };
  }
  if (config.cohortSize < policy.minCohort) {
    return {
      rule: 'min-cohort',
      problem: `the round samples ${config.cohortSize} agent(s); this agent requires at least ${policy.minCohort} (--min-cohort)`,
    };
  }
  const dp = config.dp;
  if (dp !== undefined && !(config.clipNorm > 0)) {
    return { rule: 'dp-clip-norm', problem: `DP is configured with clipNorm ${config.clipNorm}: the noise is scaled to the clip norm, so it must be > 0` };
  }
  if (dp !== undefined) {
    const placement = noisePlacementProblem(config.aggregation, dp.noise);
    if (placement !== undefined) return { rule: 'dp-noise', problem: placement };
  }
  if (policy.minNoiseMultiplier > 0) {
    if (dp === undefined) {
      return { rule: 'min-noise-multiplier', problem: `the round configures no differential privacy; this agent requires a noise multiplier of at least ${policy.minNoiseMultiplier} (--min-noise-multiplier)` };
    }
    if (dp.noiseMultiplier < policy.minNoiseMultiplier) {
      return {
        rule: 'min-noise-multiplier',
        problem: `dp.noiseMultiplier is ${dp.noiseMultiplier}; this agent requires at least ${policy.minNoiseMultiplier} (--min-noise-multiplier)`,
      };
    }
  }
  return undefined;
}

/** Why DP noise added by `noise` does not protect a round aggregated by `aggregation`, or undefined. */
function noisePlacementProblem(aggregation: RoundConfig['aggregation'], noise: DpNoisePlacement): string | undefined {
  if (aggregation === 'plain' && noise === 'agents') {
    return "dp.noise is 'agents' in a plain round: the coordinator would see this agent's update with only its share (1/sqrt(n_min)) of the noise; plain DP rounds need dp.noise 'coordinator'";
  }
  if (aggregation === 'secure' && noise === 'coordinator') {
    return "dp.noise is 'coordinator' in a secure round: agents would add no noise and the coordinator would hold the noiseless sum; secure DP rounds need dp.noise 'agents'";
  }
  return undefined;
}

interface PolicyFile {
  version: 1;
  requireSecure: boolean;
  minCohort: number;
  minNoiseMultiplier: number;
  requireSampling?: boolean;
}

/**
 * The effective policy: defaults < <stateDir>/policy.json < `overrides`. Saves the result
 * (atomically, mode 0600) when the file is missing or `overrides` changed it.
 */
export async function resolvePolicy(stateDir: string, overrides: Partial<RoundPolicy> = {}): Promise<{ policy: RoundPolicy; path: string; saved: boolean }> {
  const path = join(stateDir, POLICY_FILE);
  const checked = validatePolicy(overrides);
  let stored: Partial<RoundPolicy> | undefined;
  let text: string | undefined;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (text !== undefined) {
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new PolicyInvalidError(`file ${path}`, 'JSON', `unparsable text (${(err as Error).message}); fix or delete it`);
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw) || (raw as { version?: unknown }).version !== 1) {
      throw new PolicyInvalidError(`file ${path}`, '{version: 1, requireSecure, minCohort, minNoiseMultiplier, requireSampling?}', typeof raw);
    }
    const r = raw as Record<string, unknown>;
    // requireSampling is optional in the file: files written before it existed mean false.
    stored = validatePolicy({ requireSecure: r['requireSecure'], minCohort: r['minCohort'], minNoiseMultiplier: r['minNoiseMultiplier'], requireSampling: r['requireSampling'] }, ` (in ${path})`);
  }
  const policy: RoundPolicy = { ...POLICY_DEFAULTS, ...stored, ...checked };
  const same =
    stored !== undefined &&
    stored.requireSecure === policy.requireSecure &&
    stored.minCohort === policy.minCohort &&
    stored.minNoiseMultiplier === policy.minNoiseMultiplier &&
    (stored.requireSampling ?? false) === policy.requireSampling;
  if (!same) await writeAtomically(path, { version: 1, ...policy });
  return { policy, path, saved: !same };
}

async function writeAtomically(path: string, body: PolicyFile): Promise<void> {
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(`${JSON.stringify(body, null, 2)}\n`);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fh.close();
  await chmod(tmp, 0o600);
  await rename(tmp, path);
}
