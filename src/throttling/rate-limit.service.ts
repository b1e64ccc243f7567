import { Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { InjectThrottlerStorage } from '@nestjs/throttler';
import { AppException } from '@app/common/errors/app.exception';
import type { AllConfig, RateLimitedAction } from '@app/config/app-config';
import {
  MemoryThrottlerStorage,
  type RefundableThrottlerStorage,
  type ThrottlerStorageRecord,
} from './memory-throttler.storage';
import { THROTTLER_REALTIME, THROTTLER_STRICT } from './throttler-names';

/**
 * Budgets of actions (messages, typing, joins, connections, lookups, invitations,
 * logins), one per user, address or account name across every transport,
 * kept in the throttler's storage.
 */
@Injectable()
export class RateLimitService {
  /** Read once: this runs for every live event, and configuration does not change. */
  private readonly rates: AllConfig['realtime']['rates'];

  constructor(
    @InjectThrottlerStorage() private readonly storage: RefundableThrottlerStorage,
    config: ConfigService<AllConfig, true>,
  ) {
    this.rates = config.get('realtime.rates', { infer: true });
  }

  /** Counts one use of `action` by `subject`; RATE_LIMITED once the budget is spent. */
  async consume(action: RateLimitedAction, subject: string): Promise<void> {
    if (this.consumeNow(action, subject)) return;
    const { limit, windowMs } = this.rates[action];
    const record = await this.storage.increment(
      keyOf(action, subject),
      windowMs,
      limit,
      0,
      THROTTLER_REALTIME,
    );
    assertWithin(action, limit, record);
  }

  /** Gives back one use of `action` by `subject`: one that turned out harmless. */
  refund(action: RateLimitedAction, subject: string): Promise<void> {
    return this.storage.refund(keyOf(action, subject), THROTTLER_REALTIME);
  }

  /** Gives back the attempt a strict REST route counted under `key`. */
  refundStrict(key: string): Promise<void> {
    return this.storage.refund(key, THROTTLER_STRICT);
  }

  /**
   * `consume` without waiting, where the budgets live in this process: true
   * once counted (and within budget). False when they are kept elsewhere
   * (Redis), where only `consume` can count; nothing was counted then.
   */
  consumeNow(action: RateLimitedAction, subject: string): boolean {
    if (!(this.storage instanceof MemoryThrottlerStorage)) return false;
    const { limit, windowMs } = this.rates[action];
    const record = this.storage.incrementNow(
      keyOf(action, subject),
      windowMs,
      limit,
      0,
      THROTTLER_REALTIME,
    );
    assertWithin(action, limit, record);
    return true;
  }
}

const keyOf = (action: RateLimitedAction, subject: string) => `rt:${action}:${subject}`;

function assertWithin(action: RateLimitedAction, limit: number, record: ThrottlerStorageRecord) {
  if (record.totalHits > limit) {
    const retryInSeconds = Math.max(1, Math.ceil(record.timeToExpire));
    throw AppException.rateLimited(
      `Too many ${action} requests: retry in ${retryInSeconds} s`,
      retryInSeconds,
    );
  }
}
