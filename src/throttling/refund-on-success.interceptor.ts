import {
  Injectable,
  type CallHandler,
  type ExecutionContext,
  type NestInterceptor,
} from '@nestjs/common';
import { mergeMap, type Observable } from 'rxjs';
import { strictKeyOf } from './address-throttler.guard';
import { RateLimitService } from './rate-limit.service';

/** Gives back a request's attempt on the strict budget once its route has succeeded. */
@Injectable()
export class RefundOnSuccessInterceptor implements NestInterceptor {
  constructor(private readonly rateLimits: RateLimitService) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const key = strictKeyOf(context.switchToHttp().getRequest<object>());
    return next.handle().pipe(
      mergeMap(async (answer: unknown) => {
        if (key !== undefined) await this.rateLimits.refundStrict(key);
        return answer;
      }),
    );
  }
}
