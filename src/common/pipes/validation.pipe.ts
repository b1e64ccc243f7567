import { type ArgumentMetadata, ValidationPipe, type ValidationError } from '@nestjs/common';
import { AppException } from '@app/common/errors/app.exception';
import type { FieldError } from '@app/common/errors/error-body';
import { MAX_INPUT_DEPTH, nestingDepth } from './nesting-depth';

function flatten(errors: ValidationError[], prefix = ''): FieldError[] {
  return errors.flatMap((error) => {
    const field = prefix ? `${prefix}.${error.property}` : error.property;
    const own: FieldError[] = error.constraints
      ? [{ field, constraints: Object.values(error.constraints) }]
      : [];
    return [...own, ...flatten(error.children ?? [], field)];
  });
}

/** Builds the VALIDATION_FAILED exception from class-validator's errors. */
export function validationException(errors: ValidationError[]): AppException {
  const details = flatten(errors);
  const message = details[0]?.constraints[0] ?? 'Invalid input';
  return AppException.validation(message, details);
}

/** Refuses absurdly nested input first: class-transformer walks values recursively. */
class BoundedValidationPipe extends ValidationPipe {
  override transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    if (this.toValidate(metadata) && nestingDepth(value) > MAX_INPUT_DEPTH) {
      return Promise.reject(
        AppException.validation(`Input may be nested at most ${MAX_INPUT_DEPTH} levels deep`),
      );
    }
    return super.transform(value, metadata) as Promise<unknown>;
  }
}

/**
 * The one validation pipe of every transport: strips nothing silently
 * (unknown fields are refused), never coerces types, and bounds nesting.
 */
export function createValidationPipe(): ValidationPipe {
  return new BoundedValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    forbidUnknownValues: true,
    transform: true,
    transformOptions: { enableImplicitConversion: false },
    validationError: { target: false, value: false },
    stopAtFirstError: false,
    exceptionFactory: validationException,
  });
}
