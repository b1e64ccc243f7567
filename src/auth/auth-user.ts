/** The authenticated caller, as every transport sees it. */
export interface AuthUser {
  id: string;
  username: string;
  /** When the presented token stops being valid (epoch milliseconds). */
  tokenExpiresAt: number;
  /** When the login that the token's session began with was (epoch milliseconds). */
  sessionStartedAt: number;
}

/**
 * Of a connection's user and the one a fresh token shows (the same user),
 * the one whose token lives longer: a renewal never shortens a connection.
 */
export function longerLived(current: AuthUser, renewed: AuthUser): AuthUser {
  return renewed.tokenExpiresAt >= current.tokenExpiresAt ? renewed : current;
}

/** The claims of our access tokens. */
export interface AccessTokenClaims {
  sub: string;
  username: string;
  iat: number;
  exp: number;
  /** The login the session began with (epoch seconds); refreshed tokens keep it. Older tokens lack it. */
  auth_time?: number;
}
