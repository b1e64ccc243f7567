import { ValidationPipe, type ValidationError } from '@nestjs/common';
import { AppException } from '@app/common/errors/app.exception';
import type { FieldError } from '@app/common/errors/error-body';

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

/**
 * The one validation pipe of every transport: strips nothing silently
 * (unknown fields are refused) and never coerces types.
 */
export function createValidationPipe(): ValidationPipe {
  return new ValidationPipe({
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
