import { buildMessage, ValidateBy, type ValidationOptions } from 'class-validator';

/** The inclusive bounds of a string field's length, in characters. */
export interface CharRange {
  min: number;
  max: number;
}

export const CHAR_LENGTH = 'charLength';

/**
 * Characters as PostgreSQL counts them in `varchar(n)` and `char_length`,
 * and as JSON Schema counts `minLength` and `maxLength`: Unicode code points.
 * class-validator's `@Length` counts fewer (it skips the variation selectors
 * U+FE0E and U+FE0F), so a value it accepts could overflow its column.
 */
export function charLength(value: string): number {
  let count = 0;
  for (const _codePoint of value) count += 1;
  return count;
}

export function isCharLengthIn(value: unknown, { min, max }: CharRange): boolean {
  if (typeof value !== 'string') return false;
  // A code point takes one or two UTF-16 units: most values are decided without counting.
  if (value.length <= max && Math.ceil(value.length / 2) >= min) return true;
  const length = charLength(value);
  return length >= min && length <= max;
}

/** Worded as class-validator's `@Length`, so that clients see one style of message. */
function charLengthMessage(value: unknown, { min, max }: CharRange): string {
  const length = typeof value === 'string' ? charLength(value) : undefined;
  if (length !== undefined && length < min) {
    return `$property must be longer than or equal to ${min} characters`;
  }
  if (length !== undefined && length > max) {
    return `$property must be shorter than or equal to ${max} characters`;
  }
  return `$property must be longer than or equal to ${min} and shorter than or equal to ${max} characters`;
}

/** A string of `range.min` to `range.max` characters, counted as the database counts them. */
export function CharLength(range: CharRange, options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: CHAR_LENGTH,
      constraints: [range.min, range.max],
      validator: {
        validate: (value) => isCharLengthIn(value, range),
        defaultMessage: buildMessage(
          (eachPrefix, args) => eachPrefix + charLengthMessage(args?.value, range),
          options,
        ),
      },
    },
    options,
  );
}

/** The same range for Swagger's `@ApiProperty`, so that the docs state what is enforced. */
export function charRangeSchema({ min, max }: CharRange): { minLength: number; maxLength: number } {
  return { minLength: min, maxLength: max };
}
