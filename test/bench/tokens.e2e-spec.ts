import { sign } from 'jsonwebtoken';
import { signToken, verifyBaselineToken } from '../../bench/common/tokens';

/** The bare servers check tokens as the reference design's `verifyToken` does: only their run's. */
describe("the bare servers' token check", () => {
  const secret = 'secret-of-this-run';
  const user = { id: '0190f5e4-7b1c-7cc0-9f3e-4b3c2a1d0e9f', username: 'alice_1a2b3c4d' };

  it('takes a token the bench signed, and gives its user', () => {
    expect(verifyBaselineToken(secret, signToken(secret, user))).toEqual(user);
  });

  it.each([
    ['no token', undefined],
    ['an empty token', ''],
    ['a token that is not a string', 42],
    ['a token that is not a JWT', 'not-a-token'],
    ['a token signed with another secret', signToken('another-secret', user)],
    ['an unsigned token', sign({ sub: user.id }, '', { algorithm: 'none' })],
    ['an expired token', sign({ sub: user.id, exp: Math.floor(Date.now() / 1000) - 60 }, secret)],
    ['a token without a subject', sign({ username: user.username }, secret)],
  ])('refuses %s', (_, token) => {
    expect(verifyBaselineToken(secret, token)).toBeUndefined();
  });
});
