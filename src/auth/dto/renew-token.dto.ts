import type { AuthUser } from '@app/auth/auth-user';
import type { RenewTokenResult } from '@app/contract/socket-events';
import { IsNotEmpty, IsString, MaxLength } from 'class-validator';

/** Far above any token this service issues; a longer one is refused before it is decoded. */
export const MAX_TOKEN_LENGTH = 4096;

/** A fresh access token presented on a live connection (`auth:renew`). */
export class RenewTokenDto {
  @IsString()
  @IsNotEmpty({ message: 'token must not be empty' })
  @MaxLength(MAX_TOKEN_LENGTH)
  token: string;
}

/** What a renewal answers: whose the connection is, and when it ends unless renewed again. */
export function renewTokenResult(user: AuthUser): RenewTokenResult {
  return { userId: user.id, expiresAt: new Date(user.tokenExpiresAt).toISOString() };
}
