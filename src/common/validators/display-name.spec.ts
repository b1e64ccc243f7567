import { isDisplayName } from './display-name';

describe('isDisplayName', () => {
  it.each([
    ['a plain name', 'general'],
    ['letters of any script', 'общий чат'],
    ['an emoji', '🎉'],
    ['a right-to-left name with its mark', 'שלום\u200f'],
    ['a letter with a combining mark', 'e\u0301'],
  ])('accepts %s', (_, name) => expect(isDisplayName(name)).toBe(true));

  it.each([
    ['zero-width spaces only', '\u200b\u200b'],
    ['a word joiner and a Mongolian vowel separator', '\u2060\u180e'],
    ['a Hangul filler', '\u3164'],
    ['a no-break space', '\u00a0'],
    ['a line break inside', 'lob\nby'],
    ['a terminal escape', 'lob\u001b[31mby'],
    ['a tab', 'lob\tby'],
    ['a line separator', 'lob\u2028by'],
    ['a paragraph separator', 'lob\u2029by'],
    ['a right-to-left override', '\u202egnp.exe'],
    ['a bidi isolate', 'lob\u2067by'],
    ['not a string', 42],
  ])('refuses %s', (_, name) => expect(isDisplayName(name)).toBe(false));
});
