import { isStorableText, isWellFormed } from './storable-text';

describe('isStorableText', () => {
  it.each(['hello', 'multi\nline\ttext', 'émoji 😀 and 中文', ''])('accepts %j', (text) => {
    expect(isStorableText(text)).toBe(true);
  });

  it.each(['a\u0000b', '\ud800', 'x\ud83dy', '\ude00', 'ok\udc00', 42, undefined])(
    'refuses %j',
    (value) => {
      expect(isStorableText(value)).toBe(false);
    },
  );
});

describe('isWellFormed', () => {
  it('accepts NUL, and refuses lone surrogates as isStorableText does', () => {
    expect(isWellFormed('a\u0000b')).toBe(true);
    expect(isWellFormed('😀')).toBe(true);
    for (const text of ['\ud800', 'x\ud83dy', 'ok\udc00', 42])
      expect(isWellFormed(text)).toBe(false);
  });
});
