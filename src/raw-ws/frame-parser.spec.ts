import { MAX_TOKEN_LENGTH } from '@app/auth/dto/renew-token.dto';
import { isAuthFrame } from './frame-parser';

const text = (frame: unknown) => Buffer.from(JSON.stringify(frame));

describe('isAuthFrame', () => {
  it('knows a renewal, valid or not, up to the longest token', () => {
    expect(isAuthFrame(text({ type: 'auth', token: 'x'.repeat(MAX_TOKEN_LENGTH) }), false)).toBe(
      true,
    );
    expect(isAuthFrame(text({ type: 'auth' }), false)).toBe(true);
  });

  it('takes no other frame, nor one it cannot read, for one', () => {
    expect(isAuthFrame(text({ type: 'join', room: 'r' }), false)).toBe(false);
    expect(isAuthFrame(text(['auth']), false)).toBe(false);
    expect(isAuthFrame(Buffer.from('{"type":"auth"'), false)).toBe(false);
    expect(isAuthFrame(text({ type: 'auth', token: 't' }), true)).toBe(false);
  });

  it('does not read a frame longer than any renewal needs', () => {
    const padded = text({ type: 'auth', token: 't', pad: 'x'.repeat(2 * MAX_TOKEN_LENGTH) });
    expect(isAuthFrame(padded, false)).toBe(false);
  });
});
