// Reconnection delays: exponential growth with jitter, so a fleet of agents that lost the
// coordinator at the same moment does not reconnect in lockstep.
//   base(n)  = min(maxDelayMs, initialDelayMs * factor^n)      n = failed attempts so far
//   delay(n) = base(n) * (1 - jitter + jitter * U[0,1))         jitter 1 = "full jitter"

export interface BackoffOptions {
  readonly initialDelayMs?: number;
  readonly maxDelayMs?: number;
  readonly factor?: number;
  /** Fraction of the delay that is random, in [0, 1]. */
  readonly jitter?: number;
  /** Give up after this many consecutive failed attempts (default: never). */
  readonly maxAttempts?: number;
}

export const BACKOFF_DEFAULTS = { initialDelayMs: 500, maxDelayMs: 30_000, factor: 2, jitter: 0.5, maxAttempts: Infinity } as const;

export class Backoff {
  private readonly o: Required<BackoffOptions>;
  private readonly random: () => number;
  private failures = 0;

  constructor(options: BackoffOptions = {}, random: () => number = Math.random) {
    this.o = { ...BACKOFF_DEFAULTS, ...options };
    this.random = random;
  }

  /** Consecutive failures recorded so far. */
  get attempts(): number {
    return this.failures;
  }

  get exhausted(): boolean {
    return this.failures >= this.o.maxAttempts;
  }

  /** Records a failure and returns how long to wait before the next attempt. */
  next(): number {
    const base = Math.min(this.o.maxDelayMs, this.o.initialDelayMs * this.o.factor ** this.failures);
    this.failures++;
    const j = Math.min(1, Math.max(0, this.o.jitter));
    return Math.round(base * (1 - j + j * this.random()));
  }

  /** A connection succeeded: start over. */
  reset(): void {
    this.failures = 0;
  }
}
