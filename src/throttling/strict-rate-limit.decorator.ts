import { applyDecorators, SetMetadata, UseInterceptors } from '@nestjs/common';
import { RefundOnSuccessInterceptor } from './refund-on-success.interceptor';

export const STRICT_RATE_LIMIT = 'throttling:strict';

/**
 * Puts a route under the strict budget as well (login, register: against
 * brute force). With `failuresOnly`, a request that succeeds gives its
 * attempt back: the budget bounds guesses, not the users behind an address.
 */
export const StrictRateLimit = ({ failuresOnly = false } = {}) =>
  failuresOnly
    ? applyDecorators(
        SetMetadata(STRICT_RATE_LIMIT, true),
        UseInterceptors(RefundOnSuccessInterceptor),
      )
    : SetMetadata(STRICT_RATE_LIMIT, true);
