import { describe, expect, it } from '@jest/globals';
import { catchUpNotice, invitationNotice, mentionNotice, removalNotice } from './notices';

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

describe('catchUpNotice', () => {
  it('says what failed, and what it means for the conversation', () => {
    const message = 'Service temporarily unavailable';
    expect(catchUpNotice({ code: 'UNAVAILABLE', message, details: [] })).toBe(
      'Could not fetch missed messages (Service temporarily unavailable): retrying, some may show late.',
    );
  });

  it('leaves an ended session to the sign-out', () => {
    expect(catchUpNotice({ code: 'UNAUTHORIZED', message: 'no', details: [] })).toBeUndefined();
  });
});

describe('mentionNotice', () => {
  it('names who mentioned the user, and where when the room is known', () => {
    expect(mentionNotice('ada', 'crew')).toBe('ada mentioned you in # crew.');
    expect(mentionNotice('ada', undefined)).toBe('ada mentioned you in a room.');
  });
});
