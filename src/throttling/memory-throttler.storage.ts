import type { ThrottlerStorage } from '@nestjs/throttler';

export type ThrottlerStorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

/** A throttler storage that can also give a hit back (an attempt that turned out to be no abuse). */
export interface RefundableThrottlerStorage extends ThrottlerStorage {
  refund(key: string, throttlerName: string): Promise<void>;
}

interface Window {
  hits: number;
  expiresAt: number;
  blockedUntil: number;
}

const SWEEP_INTERVAL_MS = 10_000;

/**
 * Fixed-window counters in this process's memory, counted as
 * `RedisThrottlerStorage` counts them. Unlike the throttler's
 * default storage, it sets no timer per hit: expired windows are swept.
 */
export class MemoryThrottlerStorage implements RefundableThrottlerStorage {
  private readonly windows = new Map<string, Window>();
  private readonly sweeper = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);

  constructor() {
    this.sweeper.unref();
  }

  increment(
    key: string,
    ttl: number,
    limit: number,
    blockDuration: number,
    throttlerName: string,
  ): Promise<ThrottlerStorageRecord> {
    return Promise.resolve(this.incrementNow(key, ttl, limit, blockDuration, throttlerName));
  }

  /** `increment`, answered at once: the windows are in this process. */
  incrementNow(
    key: string,
    ttl: number,
    limit: number,
    blockDuration: number,
    throttlerName: string,
  ): ThrottlerStorageRecord {
    const now = performance.now();
    const id = `${throttlerName}:${key}`;
    let window = this.windows.get(id);
    if (!window || (window.expiresAt <= now && window.blockedUntil <= now)) {
      window = { hits: 0, expiresAt: now + ttl, blockedUntil: 0 };
      this.windows.set(id, window);
    }
    // As in Redis: nothing counts while blocked, and the window ends with the block.
    if (window.blockedUntil <= now) {
      window.hits += 1;
      if (window.hits > limit && blockDuration > 0)
        window.expiresAt = window.blockedUntil = now + blockDuration;
    }
    return {
      totalHits: window.hits,
      timeToExpire: Math.ceil((window.expiresAt - now) / 1000),
      isBlocked: window.blockedUntil > now,
      timeToBlockExpire: Math.max(0, Math.ceil((window.blockedUntil - now) / 1000)),
    };
  }

  /**
   * Gives back one hit of the current window, unless it is blocked (the
   * block stands). A window emptied so ends: the next hit opens a new one.
   * A refund that comes after the hit's window ended goes to the next one:
   * the hit was spent in the window before, so no one gains an attempt.
   */
  refund(key: string, throttlerName: string): Promise<void> {
    const now = performance.now();
    const id = `${throttlerName}:${key}`;
    const window = this.windows.get(id);
    if (!window || window.expiresAt <= now || window.blockedUntil > now) return Promise.resolve();
    window.hits -= 1;
    if (window.hits <= 0) this.windows.delete(id);
    return Promise.resolve();
  }

  private sweep(): void {
    const now = performance.now();
    for (const [id, window] of this.windows) {
      if (window.expiresAt <= now && window.blockedUntil <= now) this.windows.delete(id);
    }
  }
}
