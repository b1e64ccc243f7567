import { applyDecorators, SetMetadata, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiQuery } from '@nestjs/swagger';
import { ErrorCode } from '@app/common/errors/error-code';
import { ApiErrors } from '@app/common/swagger/api-errors.decorator';
import { ALLOW_QUERY_TOKEN, JwtAuthGuard } from './jwt-auth.guard';

export interface AuthenticatedOptions {
  /** Also accept `?token=`, for clients that cannot set headers (EventSource). */
  allowQueryToken?: boolean;
}

/** Requires a valid access token, and documents it in Swagger. */
export function Authenticated(options: AuthenticatedOptions = {}) {
  const decorators = [UseGuards(JwtAuthGuard), ApiBearerAuth(), ApiErrors(ErrorCode.Unauthorized)];
  if (options.allowQueryToken) {
    decorators.push(
      SetMetadata(ALLOW_QUERY_TOKEN, true),
      ApiQuery({ name: 'token', required: false, description: 'Access token, for EventSource' }),
    );
  }
  return applyDecorators(...decorators);
}
