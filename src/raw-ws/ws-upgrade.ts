import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { AuthUser } from '@app/auth/auth-user';
import { bearerToken, queryToken } from '@app/auth/token-extraction';
import type { TokenService } from '@app/auth/token.service';
import { ErrorCode } from '@app/common/errors/error-code';
import type { ErrorBody } from '@app/common/errors/error-body';
import { reportedErrorBody, type FailureLog } from '@app/common/errors/to-error-body';
import { clientBudgetKey, type TrustRule } from '@app/realtime/client-address';
import type { ConnectionTracker } from '@app/realtime/connection-tracker';
import type { RateLimitService } from '@app/throttling/rate-limit.service';
import { WsCloseCode } from '@app/contract/ws-frames';

export interface UpgradeDependencies {
  tokens: TokenService;
  rateLimits: RateLimitService;
  connections: ConnectionTracker;
  trust: TrustRule;
  /** Where a failure of our own is logged: the client is only told to try again later. */
  logger: FailureLog;
}

/** Why an upgrade is completed only to be closed at once, as the contract wants for bad tokens. */
export interface Refusal {
  code: number;
  reason: string;
}

export type UpgradeOutcome =
  | {
      user: AuthUser;
      connectionId: string;
      /**
       * Throws when the account closed since its token was read: call it
       * synchronously before subscribing the connection's personal channel
       * (as `TokenService.admit` asks), and release the slot if it throws.
       */
      confirm(this: void): void;
    }
  | { refusal: Refusal };

export function refusalFor({ code }: ErrorBody): Refusal {
  switch (code) {
    case ErrorCode.Unauthorized:
      return { code: WsCloseCode.Unauthorized, reason: 'Unauthorized' };
    case ErrorCode.RateLimited:
      return { code: WsCloseCode.RateLimited, reason: 'Rate limited' };
    default:
      return { code: WsCloseCode.TryAgainLater, reason: 'Try again later' };
  }
}

/**
 * Authenticates an upgrade to `/ws`: the per-address attempt budget, the
 * token (Authorization header, else `?token=`), and a connection slot.
 */
export async function authenticateUpgrade(
  request: IncomingMessage,
  deps: UpgradeDependencies,
): Promise<UpgradeOutcome> {
  try {
    await deps.rateLimits.consume('connect', clientBudgetKey(request, deps.trust));
    const { user, confirm } = await deps.tokens.admit(
      bearerToken(request) ?? queryToken(request.url),
    );
    const connectionId = `ws:${randomUUID()}`;
    await deps.connections.acquire(user.id, connectionId);
    return { user, connectionId, confirm };
  } catch (error) {
    return { refusal: refusalFor(reportedErrorBody(error, deps.logger)) };
  }
}

/** The WebSocket versions `ws` speaks, named to a client that asked for another (RFC 6455, 4.4). */
export const SUPPORTED_VERSIONS = { 'Sec-WebSocket-Version': '13, 8' };

export function speaksVersionOf(request: IncomingMessage): boolean {
  return ['13', '8'].includes(String(request.headers['sec-websocket-version']));
}
