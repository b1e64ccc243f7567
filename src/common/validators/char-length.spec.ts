import 'reflect-metadata';
import { Length, validateSync } from 'class-validator';
import fc from 'fast-check';
import { CharLength, charLength, charRangeSchema, isCharLengthIn } from './char-length';

/** 100 characters to validator.js, 200 to PostgreSQL. */
const SELECTED_A = 'a\uFE0F';

class Named {
  @CharLength({ min: 1, max: 3 })
  name: unknown;
}

class Tagged {
  @CharLength({ min: 2, max: 3 }, { each: true })
  tags: unknown;
}

function messagesFor(target: object): string[] {
  return validateSync(target).flatMap((error) => Object.values(error.constraints ?? {}));
}

const named = (name: unknown) => Object.assign(new Named(), { name });

describe('charLength', () => {
  it.each([
    ['', 0],
    ['abc', 3],
    ['émoji 😀', 7],
    ['a\uFE0F', 2],
    ['\uFE0E', 1],
    ['👨‍👩‍👧', 5],
    ['\ud800', 1],
  ])('counts %j as %i characters', (value, expected) => {
    expect(charLength(value)).toBe(expected);
  });

  it('counts what UTF-8 encodes as characters: one lead byte per code point', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (value) => {
        const leadBytes = [...Buffer.from(value, 'utf8')].filter((byte) => (byte & 0xc0) !== 0x80);
        expect(charLength(value)).toBe(leadBytes.length);
      }),
    );
  });

  it('counts variation selectors, which class-validator leaves out', () => {
    class ValidatorJsCount {
      @Length(1, 100)
      name = SELECTED_A.repeat(100);
    }
    expect(validateSync(new ValidatorJsCount())).toEqual([]);
    expect(isCharLengthIn(SELECTED_A.repeat(100), { min: 1, max: 100 })).toBe(false);
    expect(isCharLengthIn(SELECTED_A.repeat(50), { min: 1, max: 100 })).toBe(true);
  });
});

describe('CharLength', () => {
  it.each(['a', 'abc', '😀😀😀', SELECTED_A])('accepts %j', (name) => {
    expect(messagesFor(named(name))).toEqual([]);
  });

  it('words a value too long as class-validator does', () => {
    expect(messagesFor(named(SELECTED_A.repeat(2)))).toEqual([
      'name must be shorter than or equal to 3 characters',
    ]);
  });

  it('words a value too short as class-validator does', () => {
    expect(messagesFor(named(''))).toEqual(['name must be longer than or equal to 1 characters']);
  });

  it.each([42, null, ['abc'], { length: 2 }])('refuses the non-string %j', (name) => {
    expect(messagesFor(named(name))).toEqual([
      'name must be longer than or equal to 1 and shorter than or equal to 3 characters',
    ]);
  });

  it('checks each item of an array when asked to, naming both bounds', () => {
    expect(messagesFor(Object.assign(new Tagged(), { tags: ['ab', 'abc'] }))).toEqual([]);
    const tagged = Object.assign(new Tagged(), { tags: ['ab', 'a\uFE0E\uFE0E\uFE0E'] });
    expect(messagesFor(tagged)).toEqual([
      'each value in tags must be longer than or equal to 2 and shorter than or equal to 3 characters',
    ]);
  });
});

describe('charRangeSchema', () => {
  it('states the range as JSON Schema does, which also counts code points', () => {
    expect(charRangeSchema({ min: 1, max: 64 })).toEqual({ minLength: 1, maxLength: 64 });
  });
});
