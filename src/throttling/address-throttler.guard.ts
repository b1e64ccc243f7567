import { Injectable } from '@nestjs/common';
import { ThrottlerGuard, type ThrottlerRequest } from '@nestjs/throttler';
import { THROTTLER_STRICT } from './throttler-names';

const STRICT_KEY = Symbol('strict budget key');

interface CountedRequest {
  [STRICT_KEY]?: string;
}

/**
 * Nest's throttler guard, which also notes on the request the key its strict
 * budget counted it under, so that an attempt found harmless (a successful
 * sign-in) can be given back.
 */
@Injectable()
export class AddressThrottlerGuard extends ThrottlerGuard {
  protected override handleRequest(request: ThrottlerRequest): Promise<boolean> {
    if (request.throttler.name !== THROTTLER_STRICT) return super.handleRequest(request);
    return super.handleRequest({
      ...request,
      generateKey: (context, tracker, name) => {
        const key = request.generateKey(context, tracker, name);
        context.switchToHttp().getRequest<CountedRequest>()[STRICT_KEY] = key;
        return key;
      },
    });
  }
}

/** The key the strict budget counted this request under, if it did. */
export function strictKeyOf(request: object): string | undefined {
  return (request as CountedRequest)[STRICT_KEY];
}
