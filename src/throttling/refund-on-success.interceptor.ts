import {
  Injectable,
  type CallHandler,
  type ExecutionContext,
  type NestInterceptor,
} from '@nestjs/common';
import { catchError, mergeMap, type Observable } from 'rxjs';
import { ErrorCode } from '@app/common/errors/error-code';
import { toErrorBody } from '@app/common/errors/to-error-body';
import { strictKeyOf } from './address-throttler.guard';
import { RateLimitService } from './rate-limit.service';

/**
 * Gives back a request's attempt on the strict budget once its route has
 * succeeded, or failed as UNAVAILABLE (nothing was judged: the database or
 * the password threads could not take it).
 */
@Injectable()
export class RefundOnSuccessInterceptor implements NestInterceptor {
  constructor(private readonly rateLimits: RateLimitService) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const key = strictKeyOf(context.switchToHttp().getRequest<object>());
    const giveBack = () =>
      key === undefined ? Promise.resolve() : this.rateLimits.refundStrict(key);
    return next.handle().pipe(
      mergeMap(async (answer: unknown) => {
        await giveBack();
        return answer;
      }),
      catchError(async (error: unknown) => {
        if (toErrorBody(error).code === ErrorCode.Unavailable) await giveBack();
        throw error;
      }),
    );
  }
}
