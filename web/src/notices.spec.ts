import { describe, expect, it } from '@jest/globals';
import type { ErrorBody } from '../../client/src';
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
  it('says what failed, where, and what it means for the conversation', () => {
    const message = 'Service temporarily unavailable';
    expect(catchUpNotice({ code: 'UNAVAILABLE', message, details: [] }, 'crew')).toBe(
      'Could not fetch missed messages of # crew (Service temporarily unavailable): retrying, some may show late.',
    );
  });

  it('copes with a room not listed yet', () => {
    expect(catchUpNotice({ code: 'UNAVAILABLE', message: 'down', details: [] }, undefined)).toBe(
      'Could not fetch missed messages (down): retrying, some may show late.',
    );
  });

  it('leaves an ended session to the sign-out', () => {
    const ended: ErrorBody = { code: 'UNAUTHORIZED', message: 'no', details: [] };
    expect(catchUpNotice(ended, 'crew')).toBeUndefined();
  });
});

describe('mentionNotice', () => {
  it('names who mentioned the user, and where when the room is known', () => {
    expect(mentionNotice('ada', 'crew')).toBe('ada mentioned you in # crew.');
    expect(mentionNotice('ada', undefined)).toBe('ada mentioned you in a room.');
  });
});
