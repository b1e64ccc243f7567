import { SetMetadata } from '@nestjs/common';
import type { RateLimitedAction } from '@app/config/app-config';

export const RATE_LIMITED_ACTION = 'throttling:action';

/** Counts each call of a live event handler against the user's budget for `action`. */
export const RateLimit = (action: RateLimitedAction) => SetMetadata(RATE_LIMITED_ACTION, action);
