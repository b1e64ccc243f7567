import {
  type ArgumentMetadata,
  ValidationPipe,
  type ValidationError,
  type ValidationPipeOptions,
} from '@nestjs/common';
import { AppException } from '@app/common/errors/app.exception';
import type { FieldError } from '@app/common/errors/error-body';
import { DEPTH_BOUND, inputExcess } from './input-bounds';
import { validationPlanFor } from './validation-plan';

/**
 * Each field's failed constraints in the order its decorators read, top
 * down: the type before the length, the length before the content.
 * class-validator lists them as decorators apply, bottom up.
 */
function flatten(errors: ValidationError[], prefix = ''): FieldError[] {
  return errors.flatMap((error) => {
    const field = prefix ? `${prefix}.${error.property}` : error.property;
    const own: FieldError[] = error.constraints
      ? [{ field, constraints: Object.values(error.constraints).reverse() }]
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
 * Input that the DTO's validation plan accepts is built from the plan at a
 * fraction of the cost; everything else, invalid input included, takes the
 * full class-transformer and class-validator path, which names each error.
 * Input nested beyond INPUT_BOUNDS is refused first, and input beyond its
 * other bounds before the full path. A parameter that is not validated (the
 * socket of a live event) costs no second look at its metadata.
 */
class BoundedValidationPipe extends ValidationPipe {
  override transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    if (!this.toValidate(metadata)) {
      return Promise.resolve(
        this.isTransformEnabled ? this.transformPrimitive(value, metadata) : value,
      );
    }
    const tooDeep = inputExcess(value, DEPTH_BOUND);
    if (tooDeep !== undefined) return Promise.reject(AppException.validation(tooDeep));
    const plan = validationPlanFor(
      metadata.metatype as new () => object,
      this.validatorOptions,
      this.transformOptions ?? {},
    );
    const accepted = plan?.accept(value);
    if (accepted) return Promise.resolve(accepted);
    const tooLarge = inputExcess(value);
    if (tooLarge !== undefined) return Promise.reject(AppException.validation(tooLarge));
    return super.transform(value, metadata) as Promise<unknown>;
  }
}

/**
 * The options of every transport's validation pipe: strips nothing silently
 * (unknown fields are refused), never coerces types.
 */
export const VALIDATION_PIPE_OPTIONS: ValidationPipeOptions = {
  whitelist: true,
  forbidNonWhitelisted: true,
  forbidUnknownValues: true,
  transform: true,
  transformOptions: { enableImplicitConversion: false },
  validationError: { target: false, value: false },
  stopAtFirstError: false,
  exceptionFactory: validationException,
};

/** The one validation pipe of every transport, which also bounds nesting. */
export function createValidationPipe(): ValidationPipe {
  return new BoundedValidationPipe(VALIDATION_PIPE_OPTIONS);
}
