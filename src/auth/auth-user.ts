/** The authenticated caller, as every transport sees it. */
export interface AuthUser {
  id: string;
  username: string;
  /** When the presented token stops being valid (epoch milliseconds). */
  tokenExpiresAt: number;
}

/** The claims of our access tokens. */
export interface AccessTokenClaims {
  sub: string;
  username: string;
  iat: number;
  exp: number;
}
