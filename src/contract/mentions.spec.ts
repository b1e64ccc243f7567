import { extractMentions } from './mentions';

describe('extractMentions', () => {
  it('finds names at word starts, lower-cased, without duplicates', () => {
    expect(extractMentions('@Ada and @bob, also @ADA')).toEqual(['ada', 'bob']);
  });

  it('keeps both spellings when a name ends in punctuation', () => {
    expect(extractMentions('thanks @ada.')).toEqual(['ada.', 'ada']);
    expect(extractMentions('see @j.doe-')).toEqual(['j.doe-', 'j.doe']);
  });

  it('finds no name in a run of name characters longer than a username', () => {
    const longest = 'a'.repeat(32);
    expect(extractMentions(`hi @${longest}`)).toEqual([longest]);
    expect(
      extractMentions(`hi @${longest}aaaaaaaa and @${'b'.repeat(10)}.${'c'.repeat(30)}`),
    ).toEqual([]);
    expect(extractMentions(`hi @${longest}... or @${longest}.x`)).toEqual([longest]);
  });

  it('finds nothing in text without an @', () => {
    expect(extractMentions('hello ada, hello bob')).toEqual([]);
  });

  it('ignores e-mail addresses, short names and a lone @', () => {
    expect(extractMentions('mail ada@example.com or @ab or @ or @@ada')).toEqual([]);
  });
});
