import { randomBytes } from 'node:crypto';
import { signToken, type TokenUser } from '../common/tokens';

/** One secret for every bare server of a run, which signs nothing else. */
const secret = randomBytes(20).toString('hex');

/** What a bare server needs in its environment to verify the tokens of `baselineToken`. */
export function baselineAuthEnv(): NodeJS.ProcessEnv {
  return { JWT_SECRET: secret };
}

export function baselineToken(user: TokenUser): string {
  return signToken(secret, user);
}
