import { Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { InjectThrottlerStorage, type ThrottlerStorage } from '@nestjs/throttler';
import { AppException } from '@app/common/errors/app.exception';
import type { AllConfig, RateLimitedAction } from '@app/config/app-config';

const THROTTLER_NAME = 'realtime';

/**
 * Budgets of live actions (messages, typing, joins, connections), one per
 * user (or address) across every transport, kept in the throttler's storage.
 */
@Injectable()
export class RateLimitService {
  /** Read once: this runs for every live event, and configuration does not change. */
  private readonly rates: AllConfig['realtime']['rates'];

  constructor(
    @InjectThrottlerStorage() private readonly storage: ThrottlerStorage,
    config: ConfigService<AllConfig, true>,
  ) {
    this.rates = config.get('realtime.rates', { infer: true });
  }

  /** Counts one use of `action` by `subject`; RATE_LIMITED once the budget is spent. */
  async consume(action: RateLimitedAction, subject: string): Promise<void> {
    const { limit, windowMs } = this.rates[action];
    const record = await this.storage.increment(
      `rt:${action}:${subject}`,
      windowMs,
      limit,
      0,
      THROTTLER_NAME,
    );
    if (record.totalHits > limit) {
      const retryInSeconds = Math.max(1, Math.ceil(record.timeToExpire));
      throw AppException.rateLimited(`Too many ${action} requests: retry in ${retryInSeconds} s`);
    }
  }
}
