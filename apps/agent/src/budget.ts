// The agent's own privacy budget (--max-epsilon E --dp-delta D): an RDP accountant over the DP
// rounds this agent took part in, kept in <stateDir>/privacy-budget.json. It trusts nothing the
// coordinator says about epsilon: the coordinator's ledger can be reset or lie, this one cannot.
//
// - Before a round: refused (rule 'max-epsilon') when it has no DP, or when one more round at its
//   signed noise multiplier would take this agent's epsilon above E.
// - Charged when this agent's update becomes recoverable by anyone: before a plain round's upload
//   (the coordinator sees it, with its central noise), before a secure round's unmask answer
//   (the shares that let the sum be computed). A round aborted earlier costs nothing.
// - Sampling rate q = 1 per round joined: whoever learns the cohort (the coordinator does) gets
//   no amplification by sampling, so none is claimed here.
// The file is written (fsync, rename) before the message goes out: a crash can only over-count.
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { RoundConfig } from '@fedclr/protocol';
import { RdpAccountant } from '@fedclr/privacy';
import { PrivacyBudgetInvalidError } from './errors.js';

export const PRIVACY_BUDGET_FILE = 'privacy-budget.json';
const VERSION = 1;
/** Round keys remembered so one round is never charged twice (a repeated unmask request). */
const REMEMBERED_ROUNDS = 1000;

export interface PrivacyBudgetOptions {
  /** E: no round that would take this agent's epsilon above it. */
  readonly maxEpsilon: number;
  /** Delta epsilon is computed at. */
  readonly delta: number;
}

export interface AgentPrivacySpent {
  readonly epsilon: number;
  readonly delta: number;
  readonly rounds: number;
  readonly maxEpsilon: number;
}

export class AgentPrivacyBudget {
  private constructor(
    readonly options: PrivacyBudgetOptions,
    readonly path: string,
    private accountant: RdpAccountant,
    private roundsCharged: number,
    private charged: string[],
  ) {}

  /** Loads <stateDir>/privacy-budget.json (or starts empty); a corrupt file is refused, never reset. */
  static open(stateDir: string, options: PrivacyBudgetOptions): AgentPrivacyBudget {
    const path = join(stateDir, PRIVACY_BUDGET_FILE);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new AgentPrivacyBudget(options, path, new RdpAccountant(), 0, []);
      throw new PrivacyBudgetInvalidError(path, (err as Error).message);
    }
    try {
      const saved = JSON.parse(text) as { version?: unknown; rounds?: unknown; accountant?: unknown; charged?: unknown };
      if (saved.version !== VERSION) throw new Error(`version ${JSON.stringify(saved.version)}, expected ${VERSION}`);
      const rounds = saved.rounds;
      if (typeof rounds !== 'number' || !Number.isInteger(rounds) || rounds < 0) throw new Error(`rounds is ${JSON.stringify(rounds)}, not an integer >= 0`);
      if (!Array.isArray(saved.charged) || !saved.charged.every((k) => typeof k === 'string')) throw new Error('charged is not an array of round keys');
      return new AgentPrivacyBudget(options, path, RdpAccountant.fromJSON(saved.accountant), rounds, saved.charged as string[]);
    } catch (err) {
      throw new PrivacyBudgetInvalidError(path, (err as Error).message);
    }
  }

  /** Rounds charged so far. */
  get rounds(): number {
    return this.roundsCharged;
  }

  spent(): AgentPrivacySpent {
    const rounds = this.rounds;
    const epsilon = rounds === 0 ? 0 : this.accountant.epsilon(this.options.delta).epsilon;
    return { epsilon, delta: this.options.delta, rounds, maxEpsilon: this.options.maxEpsilon };
  }

  /** Why this agent must not join a round with `config`, or undefined. */
  refusal(config: RoundConfig): string | undefined {
    const { maxEpsilon, delta } = this.options;
    if (config.dp === undefined) return `the round configures no differential privacy; this agent joins only DP rounds within its budget (--max-epsilon ${maxEpsilon})`;
    if (this.accountant.wouldExceed(maxEpsilon, delta, config.dp.noiseMultiplier, 1)) {
      const spent = this.spent();
      return `one more round at noise multiplier ${config.dp.noiseMultiplier} would take this agent's epsilon above its budget ${maxEpsilon} at delta ${delta} (spent ${spent.epsilon.toFixed(3)} over ${spent.rounds} rounds; --max-epsilon)`;
    }
    return undefined;
  }

  /**
   * Charges round `key` (coordinator key and round id) at its noise multiplier, once, and saves
   * the file before returning. False when the round would exceed the budget: then nothing may be sent.
   */
  charge(key: string, noiseMultiplier: number): boolean {
    if (this.charged.includes(key)) return true;
    const { maxEpsilon, delta } = this.options;
    if (this.accountant.wouldExceed(maxEpsilon, delta, noiseMultiplier, 1)) return false;
    const next = RdpAccountant.fromJSON(this.accountant.toJSON());
    next.step(noiseMultiplier, 1);
    const rounds = this.roundsCharged + 1;
    const charged = [...this.charged, key].slice(-REMEMBERED_ROUNDS);
    writeDurably(this.path, `${JSON.stringify({ version: VERSION, rounds, accountant: next.toJSON(), charged }, null, 2)}\n`);
    this.accountant = next;
    this.roundsCharged = rounds;
    this.charged = charged;
    return true;
  }
}

function writeDurably(path: string, text: string): void {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}
