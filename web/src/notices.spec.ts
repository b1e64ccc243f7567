import { describe, expect, it } from '@jest/globals';
import { invitationNotice, removalNotice } from './notices';

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
