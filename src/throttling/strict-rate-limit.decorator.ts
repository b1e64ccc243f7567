import { SetMetadata } from '@nestjs/common';

export const STRICT_RATE_LIMIT = 'throttling:strict';

/** Puts a route under the strict budget as well (login, register: against brute force). */
export const StrictRateLimit = () => SetMetadata(STRICT_RATE_LIMIT, true);
