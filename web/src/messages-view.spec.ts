import { mentions } from './messages-view';

describe('mentions, as the page highlights them', () => {
  it.each([
    ['hello @bob1', true],
    ['thanks @bob1.', true],
    ['ping @bob1-', true],
    ['see you @BOB1...', true],
    ['@bob12 is someone else', false],
    ['mail bob@bob1.org', false],
    ['no one here', false],
  ])('%j mentions bob1: %s', (text, expected) => {
    expect(mentions(text, 'bob1')).toBe(expected);
  });
});
