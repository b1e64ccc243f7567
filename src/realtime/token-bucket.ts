/** Extra tokens a bucket holds at its start only, for a while. */
export interface StartingAllowance {
  tokens: number;
  /** After this long, what is left of them is gone. */
  forMs: number;
}

/**
 * Allows `ratePerSecond` on average and bursts of `burst`; refills
 * continuously, on the monotonic clock: a wall clock stepped back would
 * otherwise drain it for as long as the step and cut off every sender.
 * A starting allowance adds tokens at the start only (refills stop at
 * `burst`), and what is left of it expires.
 */
export class TokenBucket {
  private tokens: number;
  private updatedAt = performance.now();
  private readonly allowanceEndsAt: number;

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    starting: StartingAllowance = { tokens: 0, forMs: 0 },
  ) {
    this.tokens = burst + starting.tokens;
    this.allowanceEndsAt = this.updatedAt + starting.forMs;
  }

  take(): boolean {
    const now = performance.now();
    if (this.tokens > this.burst && now > this.allowanceEndsAt) this.tokens = this.burst;
    const refill = ((now - this.updatedAt) / 1000) * this.ratePerSecond;
    if (this.tokens < this.burst) this.tokens = Math.min(this.burst, this.tokens + refill);
    this.updatedAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
