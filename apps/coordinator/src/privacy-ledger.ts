// The run's privacy ledger: the RDP accountant (@fedclr/privacy) over the rounds whose model was
// published, the delta epsilon is read at, and the budget the run stops at. Pure and immutable
// (`afterRound` returns a new ledger), so the engine charges a round only once its commit is
// done, and the edge persists the state in the same transaction as the round.
//
// What it counts: one sampled Gaussian mechanism per committed round, at the configured noise
// multiplier (the floor every DP round carries; a round with fewer dropouts carries more, which
// is not credited) and the round's client sampling rate. What it does not protect against: the
// coordinator itself sees the unmasked sum of a round that fails after unmasking, and a
// coordinator that lies can reset this ledger; the agent's own budget (apps/agent, budget.ts)
// counts every round it revealed shares for.
import { RdpAccountant, type RdpAccountantState } from '@fedclr/privacy';
import { PrivacyStateInvalidError } from './errors.js';

export const PRIVACY_LEDGER_VERSION = 1;

export interface PrivacyLedgerSettings {
  /** sigma: the noise std of a round's sum over the clip norm. */
  readonly noiseMultiplier: number;
  /** Epsilon is reported at this delta. */
  readonly delta: number;
  /** Stop before a round would take epsilon above this; undefined: report only. */
  readonly targetEpsilon?: number;
}

/** The saved ledger (run_meta 'privacy-ledger'). */
export interface PrivacyLedgerState {
  readonly version: typeof PRIVACY_LEDGER_VERSION;
  /** Rounds accounted. */
  readonly rounds: number;
  readonly accountant: RdpAccountantState;
}

export interface PrivacySpent {
  /** 0 before any round. */
  readonly epsilon: number;
  readonly delta: number;
  /** The RDP order that gives epsilon (null before any round). */
  readonly order: number | null;
  readonly rounds: number;
}

export class PrivacyLedger {
  /** wouldExceed by sampling rate: the engine asks before every start attempt (each agent that gets ready), and a ledger never changes. */
  private readonly exceeds = new Map<number, boolean>();
  private spentValue: PrivacySpent | undefined;

  private constructor(
    readonly settings: PrivacyLedgerSettings,
    private readonly accountant: RdpAccountant,
    readonly rounds: number,
  ) {}

  static fresh(settings: PrivacyLedgerSettings): PrivacyLedger {
    return new PrivacyLedger(settings, new RdpAccountant(), 0);
  }

  /** The ledger saved by `toJSON`; anything malformed is refused (never silently reset: that would hide spent budget). */
  static restore(settings: PrivacyLedgerSettings, saved: string): PrivacyLedger {
    let state: unknown;
    try {
      state = JSON.parse(saved);
    } catch (err) {
      throw new PrivacyStateInvalidError(`it is not JSON (${(err as Error).message})`);
    }
    if (typeof state !== 'object' || state === null) throw new PrivacyStateInvalidError('it is not an object');
    const s = state as Record<string, unknown>;
    if (s['version'] !== PRIVACY_LEDGER_VERSION) throw new PrivacyStateInvalidError(`its version is ${JSON.stringify(s['version'])}, expected ${PRIVACY_LEDGER_VERSION}`);
    const rounds = s['rounds'];
    if (typeof rounds !== 'number' || !Number.isInteger(rounds) || rounds < 0) throw new PrivacyStateInvalidError(`its rounds is ${JSON.stringify(rounds)}, not an integer >= 0`);
    let accountant: RdpAccountant;
    try {
      accountant = RdpAccountant.fromJSON(s['accountant']);
    } catch (err) {
      throw new PrivacyStateInvalidError((err as Error).message);
    }
    return new PrivacyLedger(settings, accountant, rounds);
  }

  /** Epsilon spent at the configured delta. */
  spent(): PrivacySpent {
    // Computed once: /api/status, /metrics and the dashboard read it on every request.
    if (this.spentValue !== undefined) return this.spentValue;
    const { delta } = this.settings;
    if (this.rounds === 0) this.spentValue = { epsilon: 0, delta, order: null, rounds: 0 };
    else {
      const { epsilon, order } = this.accountant.epsilon(delta);
      this.spentValue = { epsilon, delta, order, rounds: this.rounds };
    }
    return this.spentValue;
  }

  /** Whether one more round at `samplingRate` would take epsilon above the budget (false without one). */
  wouldExceed(samplingRate: number): boolean {
    const { targetEpsilon, delta, noiseMultiplier } = this.settings;
    if (targetEpsilon === undefined) return false;
    let exceeds = this.exceeds.get(samplingRate);
    if (exceeds === undefined) {
      exceeds = this.accountant.wouldExceed(targetEpsilon, delta, noiseMultiplier, samplingRate);
      this.exceeds.set(samplingRate, exceeds);
    }
    return exceeds;
  }

  /** This ledger with one more round at `samplingRate` charged. */
  afterRound(samplingRate: number): PrivacyLedger {
    const next = RdpAccountant.fromJSON(this.accountant.toJSON());
    next.step(this.settings.noiseMultiplier, samplingRate);
    return new PrivacyLedger(this.settings, next, this.rounds + 1);
  }

  toJSON(): PrivacyLedgerState {
    return { version: PRIVACY_LEDGER_VERSION, rounds: this.rounds, accountant: this.accountant.toJSON() };
  }
}
