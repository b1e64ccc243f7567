import { describe, expect, it } from '@jest/globals';
import { invitationNotice, mentionNotice, removalNotice, troubleNotice } from './notices';

describe('removalNotice', () => {
  it('names who removed the user, says when they left themself, and copes without a remover', () => {
    expect(removalNotice('crew', 'ada', 'bob')).toBe('ada removed you from # crew.');
    expect(removalNotice('crew', 'bob', 'bob')).toBe('You left # crew.');
    expect(removalNotice('crew', undefined, 'bob')).toBe('You are no longer a member of # crew.');
  });
});

describe('invitationNotice', () => {
  it('names who added the user', () => {
    expect(invitationNotice('crew', 'ada')).toBe('ada added you to # crew.');
  });
});

describe('troubleNotice', () => {
  it('says what failed, and what it means for the conversation', () => {
    const message = 'Service temporarily unavailable';
    expect(troubleNotice({ code: 'UNAVAILABLE', message, details: [] })).toBe(
      'Trouble reaching the server (Service temporarily unavailable): some messages may show late.',
    );
  });

  it('says so whatever refused the read, a proxy’s bare 403 included', () => {
    for (const code of ['FORBIDDEN', 'RATE_LIMITED', 'INTERNAL'] as const)
      expect(troubleNotice({ code, message: 'no', details: [] })).toContain('some messages');
  });

  it('leaves an expired or refused session to the sign-out', () => {
    expect(troubleNotice({ code: 'UNAUTHORIZED', message: 'no', details: [] })).toBeUndefined();
  });
});

describe('mentionNotice', () => {
  it('names who mentioned the user, and where when the room is known', () => {
    expect(mentionNotice('ada', 'crew')).toBe('ada mentioned you in # crew.');
    expect(mentionNotice('ada', undefined)).toBe('ada mentioned you in a room.');
  });
});
