export interface BackoffOptions {
  /** Upper bound of the first delay. */
  baseMs: number;
  /** No delay is ever longer. */
  capMs: number;
  /** Retries before giving up; `Infinity` never gives up. */
  maxRetries: number;
  /** A connection that lasted this long resets the attempt count. */
  stableAfterMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = {
  baseMs: 1_000,
  capMs: 30_000,
  maxRetries: Infinity,
  stableAfterMs: 10_000,
};

/** Between tries of a join the server refused for a passing reason (rate limit, outage). */
export const REJOIN_BACKOFF: Partial<BackoffOptions> = { baseMs: 2_000, capMs: 30_000 };

/**
 * Between tries of a leave the server refused for now: as a join's, but
 * given up after a few, since the connection ends the membership anyway.
 */
export const RELEAVE_BACKOFF: Partial<BackoffOptions> = { ...REJOIN_BACKOFF, maxRetries: 5 };

export interface BackoffClock {
  now(): number;
  /** Uniform in [0, 1). */
  random(): number;
}

const systemClock: BackoffClock = { now: () => Date.now(), random: () => Math.random() };

/**
 * Exponential backoff with full jitter: the n-th retry waits a uniformly random
 * time in [0, min(cap, base × 2^n)], so that clients cut off together do not
 * come back together.
 */
export class Backoff {
  private readonly options: BackoffOptions;
  private attempts = 0;
  private connectedAt: number | undefined;

  constructor(
    options: Partial<BackoffOptions> = {},
    private readonly clock: BackoffClock = systemClock,
  ) {
    this.options = { ...DEFAULT_BACKOFF, ...options };
  }

  /** Retries handed out since the last reset. */
  get attempt(): number {
    return this.attempts;
  }

  /** The delay before the next retry, or `null` when retries are exhausted. */
  next(): number | null {
    if (this.attempts >= this.options.maxRetries) return null;
    const ceiling = this.ceiling(this.attempts);
    this.attempts += 1;
    return Math.floor(this.clock.random() * (ceiling + 1));
  }

  reset(): void {
    this.attempts = 0;
    this.connectedAt = undefined;
  }

  /** Call when a connection is established. */
  connected(): void {
    this.connectedAt = this.clock.now();
  }

  /** Call when it is lost: a connection that had been stable long enough starts over. */
  disconnected(): void {
    if (this.connectedAt === undefined) return;
    if (this.clock.now() - this.connectedAt >= this.options.stableAfterMs) this.attempts = 0;
    this.connectedAt = undefined;
  }

  private ceiling(attempt: number): number {
    // 2^31 is far beyond any cap; clamping keeps the arithmetic finite.
    return Math.min(this.options.capMs, this.options.baseMs * 2 ** Math.min(attempt, 31));
  }
}
