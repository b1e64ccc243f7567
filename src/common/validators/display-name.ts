import { ValidateBy, type ValidationOptions } from 'class-validator';

/** A character that shows: not white space, a control or format character, nor one that renders as nothing. */
const VISIBLE = /[^\p{White_Space}\p{Cc}\p{Cf}\p{Default_Ignorable_Code_Point}]/u;
/** Line breaks, tabs, terminal escapes: nothing a name shown in a list should carry. */
const CONTROL = /\p{Cc}/u;

/**
 * A name people pick from lists: at least one character that shows (a
 * name of zero-width spaces or fillers lists as blank), and no control
 * characters.
 */
export function isDisplayName(value: unknown): boolean {
  return typeof value === 'string' && VISIBLE.test(value) && !CONTROL.test(value);
}

export function IsDisplayName(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isDisplayName',
      validator: {
        validate: isDisplayName,
        defaultMessage: (args) =>
          `${args?.property ?? 'name'} must show at least one character and hold no control characters`,
      },
    },
    options,
  );
}
