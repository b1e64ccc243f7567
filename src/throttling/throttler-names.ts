/** The REST throttlers: every route's budget per address, and the sign-in routes' stricter one. */
export const THROTTLER_DEFAULT = 'default';
export const THROTTLER_STRICT = 'strict';
/** The per-user, per-address and per-name budgets of `RateLimitService`. */
export const THROTTLER_REALTIME = 'realtime';
