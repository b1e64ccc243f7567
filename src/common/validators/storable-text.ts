import { ValidateBy, type ValidationOptions } from 'class-validator';

/** A UTF-16 surrogate without its partner: not a character, and not encodable as UTF-8. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * Text that both databases store exactly as sent: well-formed Unicode (a
 * lone surrogate would come back as U+FFFD, unlike what was acknowledged)
 * and no NUL (which PostgreSQL refuses in text).
 */
export function isStorableText(value: unknown): boolean {
  return typeof value === 'string' && !value.includes('\u0000') && isWellFormed(value);
}

/** Every UTF-16 surrogate with its partner: text that UTF-8 encodes without loss. */
export function isWellFormed(value: unknown): boolean {
  return typeof value === 'string' && !LONE_SURROGATE.test(value);
}

export function IsWellFormedText(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isWellFormedText',
      validator: {
        validate: isWellFormed,
        defaultMessage: (args) => `${args?.property ?? 'text'} must be well-formed Unicode text`,
      },
    },
    options,
  );
}

export function IsStorableText(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isStorableText',
      validator: {
        validate: isStorableText,
        defaultMessage: (args) =>
          `${args?.property ?? 'text'} must be well-formed Unicode text without NUL characters`,
      },
    },
    options,
  );
}
