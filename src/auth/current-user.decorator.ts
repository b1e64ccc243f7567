import { createParamDecorator, ExecutionContext } from '@nestjs/common';
import type { AuthUser } from './auth-user';
import type { AuthenticatedRequest } from './jwt-auth.guard';

/** The caller authenticated by `@Authenticated()`. */
export const CurrentUser = createParamDecorator(
  (_data: unknown, context: ExecutionContext): AuthUser =>
    context.switchToHttp().getRequest<AuthenticatedRequest>().user,
);

/** `AccountAdmission.confirm` of the caller's account: for an event stream, which registers later. */
export const ConfirmAccount = createParamDecorator(
  (_data: unknown, context: ExecutionContext): (() => void) =>
    context.switchToHttp().getRequest<AuthenticatedRequest>().confirmAccount,
);
