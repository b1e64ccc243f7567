import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import type { AuthUser } from './auth-user';
import { bearerToken, queryToken } from './token-extraction';
import { TokenService } from './token.service';

export const ALLOW_QUERY_TOKEN = 'auth:allowQueryToken';

export type AuthenticatedRequest = Request & {
  user: AuthUser;
  /** See `AccountAdmission.confirm`: for a stream that registers after more waiting. */
  confirmAccount: () => void;
};

/** REST authentication: a Bearer token, or `?token=` on routes that allow it. */
@Injectable()
export class JwtAuthGuard implements CanActivate {
  constructor(
    private readonly tokens: TokenService,
    private readonly reflector: Reflector,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    const allowQuery = this.reflector.getAllAndOverride<boolean>(ALLOW_QUERY_TOKEN, [
      context.getHandler(),
      context.getClass(),
    ]);
    const token =
      bearerToken(request) ?? (allowQuery ? queryToken(request.originalUrl) : undefined);
    const { user, confirm } = await this.tokens.admit(token);
    request.user = user;
    request.confirmAccount = confirm;
    return true;
  }
}
