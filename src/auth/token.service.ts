import { Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { JwtService } from '@nestjs/jwt';
import { assertRemembered } from '@app/common/admission-age';
import { AppException } from '@app/common/errors/app.exception';
import { ExpiringCache } from '@app/common/expiring-cache';
import { UUID_PATTERN } from '@app/common/ids/uuid-v7';
import type { AllConfig } from '@app/config/app-config';
import { DeliveryService } from '@app/delivery/delivery.service';
import type { User } from '@app/users/user.entity';
import { UsersService } from '@app/users/users.service';
import { AccountClosures, CLOSURE_MEMORY_MS } from './account-closures';
import type { AccessTokenClaims, AuthUser } from './auth-user';

export const JWT_ALGORITHM = 'HS256';

/** An authenticated caller whose connection registers later. */
export interface AccountAdmission {
  user: AuthUser;
  /**
   * Throws UNAUTHORIZED if the account was closed since it was read: call it
   * with nothing awaited between it and the registration, which would
   * otherwise miss the delivery that closes the account's connections.
   */
  confirm(this: void): void;
}

export interface IssuedToken {
  accessToken: string;
  tokenType: 'Bearer';
  expiresIn: number;
}

/** `sub` must be a user id: anything else would reach the database's uuid column as an error. */
function hasAccessTokenClaims(payload: unknown): payload is AccessTokenClaims {
  const claims = payload as Partial<AccessTokenClaims> | null;
  return (
    typeof claims?.sub === 'string' &&
    UUID_PATTERN.test(claims.sub) &&
    typeof claims.username === 'string' &&
    typeof claims.exp === 'number' &&
    typeof claims.iat === 'number' &&
    (claims.auth_time === undefined || typeof claims.auth_time === 'number')
  );
}

/**
 * Issues and verifies access tokens. Every transport (REST, Socket.IO, raw
 * WebSocket, SSE) authenticates through `verify`, so all reject the same tokens.
 */
@Injectable()
export class TokenService {
  /** Accounts whose stray connections were told to close lately: told again at most once a minute. */
  private readonly strayConnectionsClosed = new ExpiringCache<true>(60_000, 10_000);

  constructor(
    private readonly jwt: JwtService,
    private readonly users: UsersService,
    private readonly config: ConfigService<AllConfig, true>,
    private readonly closures: AccountClosures,
    private readonly delivery: DeliveryService,
  ) {}

  /**
   * A token for a session that began with a login at `sessionStartedAt` (now,
   * by default), living `JWT_EXPIRES_IN` but never past the session's end.
   */
  async issue(
    user: Pick<User, 'id' | 'username'>,
    sessionStartedAt = Date.now(),
  ): Promise<IssuedToken> {
    const expiresIn = Math.min(
      this.config.get('auth.jwtExpiresInSeconds', { infer: true }),
      Math.floor((this.sessionEndsAt(sessionStartedAt) - Date.now()) / 1000),
    );
    if (expiresIn <= 0) throw AppException.unauthorized('Session expired: log in again');
    const accessToken = await this.jwt.signAsync(
      { sub: user.id, username: user.username, auth_time: Math.floor(sessionStartedAt / 1000) },
      { algorithm: JWT_ALGORITHM, expiresIn },
    );
    return { accessToken, tokenType: 'Bearer', expiresIn };
  }

  /**
   * A new token of the caller's session, for a caller whose token is still
   * valid: a client refreshes before it expires instead of logging in again.
   * `JWT_SESSION_MAX_AGE` after its login the session ends (the last token
   * expires then), so that a token that leaked cannot be kept alive for good.
   */
  refresh(user: AuthUser): Promise<IssuedToken> {
    return this.issue(user, user.sessionStartedAt);
  }

  private sessionEndsAt(sessionStartedAt: number): number {
    return sessionStartedAt + this.config.get('auth.sessionMaxAgeSeconds', { infer: true }) * 1000;
  }

  /**
   * A genuine token of an account that is gone: its connections were to be
   * closed when it was deleted, which a crash between the commit and that
   * delivery would have missed. They are closed now, on every node.
   */
  private closeStrayConnections(userId: string): void {
    if (this.strayConnectionsClosed.get(userId)) return;
    this.strayConnectionsClosed.set(userId, true);
    this.delivery.accountClosed(userId);
  }

  /** Resolves the token's user, or throws UNAUTHORIZED for any bad or missing token. */
  async verify(token: string | undefined | null): Promise<AuthUser> {
    if (!token) throw AppException.unauthorized();
    const claims = await this.decode(token);
    // Ids are stored in lower case; PostgreSQL would match any case, SQLite only this one.
    const user = await this.users.findActiveById(claims.sub.toLowerCase());
    if (!user) {
      this.closeStrayConnections(claims.sub.toLowerCase());
      throw AppException.unauthorized();
    }
    return {
      id: user.id,
      username: user.username,
      tokenExpiresAt: claims.exp * 1000,
      sessionStartedAt: (claims.auth_time ?? claims.iat) * 1000,
    };
  }

  /**
   * The user a live connection is authenticated as from now on, for a fresh
   * token its client presents before the one it connected with expires.
   * The caller keeps whichever of the two lives longer (`longerLived`), read
   * when it applies the answer: renewals of one connection may overlap, and
   * a token refreshed before the connection was made may reach it after. A
   * bad token is UNAUTHORIZED and one of another user FORBIDDEN; either way
   * the connection keeps its current token.
   */
  async renew(current: AuthUser, token: string): Promise<AuthUser> {
    if (Date.now() >= current.tokenExpiresAt) throw AppException.tokenExpired();
    const renewed = await this.verify(token);
    if (renewed.id !== current.id)
      throw AppException.forbidden('The token is of another user than the connection');
    return renewed;
  }

  /** `verify`, for a connection or stream that registers after more waiting. */
  async admit(token: string | undefined | null): Promise<AccountAdmission> {
    const mark = this.closures.mark();
    const startedAt = performance.now();
    const user = await this.verify(token);
    const confirm = () => {
      if (this.closures.closedSince(mark, user.id)) throw AppException.unauthorized();
      assertRemembered(startedAt, CLOSURE_MEMORY_MS);
    };
    return { user, confirm };
  }

  private async decode(token: string): Promise<AccessTokenClaims> {
    try {
      const payload: unknown = await this.jwt.verifyAsync(token, { algorithms: [JWT_ALGORITHM] });
      if (hasAccessTokenClaims(payload)) return payload;
    } catch {
      // Expired, malformed and wrongly signed tokens are refused like a missing one.
    }
    throw AppException.unauthorized();
  }
}
