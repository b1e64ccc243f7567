import { applyDecorators } from '@nestjs/common';
import { ApiResponse } from '@nestjs/swagger';
import { HTTP_STATUS_BY_CODE, type ErrorCode } from '@app/common/errors/error-code';
import { ErrorResponseDto } from './error-response.dto';

/** Documents the error responses a route can give, each with the contract's shape. */
export function ApiErrors(...codes: ErrorCode[]): MethodDecorator & ClassDecorator {
  return applyDecorators(
    ...codes.map((code) =>
      ApiResponse({ status: HTTP_STATUS_BY_CODE[code], description: code, type: ErrorResponseDto }),
    ),
  );
}
