import { ValidateBy, type ValidationOptions } from 'class-validator';

/** A character that shows: not white space, a control or format character, nor one that renders as nothing. */
const VISIBLE = /[^\p{White_Space}\p{Cc}\p{Cf}\p{Default_Ignorable_Code_Point}]/u;
/**
 * Line breaks (U+2028 and U+2029 too), tabs, terminal escapes, and the bidi
 * embeddings, overrides and isolates that make a name read as another:
 * nothing a name shown in a list should carry.
 */
const CONTROL = /[\p{Cc}\p{Zl}\p{Zp}\u202a-\u202e\u2066-\u2069]/u;

/**
 * A name people pick from lists: at least one character that shows (a
 * name of zero-width spaces or fillers lists as blank), and no control
 * characters.
 */
export function isDisplayName(value: unknown): boolean {
  return typeof value === 'string' && VISIBLE.test(value) && !CONTROL.test(value);
}

/** Text that shows at least one character: not only zero-width spaces, joiners or fillers. */
export function showsACharacter(value: unknown): boolean {
  return typeof value === 'string' && VISIBLE.test(value);
}

export function ShowsACharacter(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'showsACharacter',
      validator: {
        validate: showsACharacter,
        defaultMessage: (args) => `${args?.property ?? 'text'} must show at least one character`,
      },
    },
    options,
  );
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
