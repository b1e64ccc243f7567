/**
 * Allows `ratePerSecond` on average and bursts of `burst`; refills
 * continuously, on the monotonic clock: a wall clock stepped back would
 * otherwise drain it for as long as the step and cut off every sender.
 * `startingExtra` tokens more are there at the start only (refills stop at
 * `burst`).
 */
export class TokenBucket {
  private tokens: number;
  private updatedAt = performance.now();

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    startingExtra = 0,
  ) {
    this.tokens = burst + startingExtra;
  }

  take(): boolean {
    const now = performance.now();
    const refill = ((now - this.updatedAt) / 1000) * this.ratePerSecond;
    if (this.tokens < this.burst) this.tokens = Math.min(this.burst, this.tokens + refill);
    this.updatedAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
