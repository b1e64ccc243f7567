import { sign, verify } from 'jsonwebtoken';

/** Who a token says its client is. */
export interface TokenUser {
  id: string;
  username: string;
}

const ALGORITHM = 'HS256';

/** The secret a bare server verifies tokens with: the bench gives it in `JWT_SECRET`. */
export function baselineSecretFromEnv(): string {
  const secret = process.env.JWT_SECRET;
  if (!secret) throw new Error('JWT_SECRET is required: the bare servers check tokens too');
  return secret;
}

/**
 * A token with the claims the service's own tokens carry, signed with
 * `secret`: a bare server's, or the service's for accounts the bench made.
 */
export function signToken(secret: string, user: TokenUser): string {
  const claims = {
    sub: user.id,
    username: user.username,
    auth_time: Math.floor(Date.now() / 1000),
  };
  return sign(claims, secret, { algorithm: ALGORITHM, expiresIn: '1h' });
}

/**
 * The reference design's `verifyToken`: the token's user, or undefined for
 * any bad or missing token.
 */
export function verifyBaselineToken(secret: string, token: unknown): TokenUser | undefined {
  if (typeof token !== 'string' || token === '') return undefined;
  try {
    const claims = verify(token, secret, { algorithms: [ALGORITHM] });
    if (typeof claims === 'string' || typeof claims.sub !== 'string') return undefined;
    const username = typeof claims.username === 'string' ? claims.username : claims.sub;
    return { id: claims.sub, username };
  } catch {
    return undefined;
  }
}
