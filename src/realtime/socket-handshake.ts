import { toErrorBody } from '@app/common/errors/to-error-body';
import { ErrorCode } from '@app/common/errors/error-code';
import type { TokenService } from '@app/auth/token.service';
import { bearerToken } from '@app/auth/token-extraction';
import type { ConnectionTracker } from './connection-tracker';
import type { SessionBudget } from './session-budget';
import type { AppSocket } from './socket-data';

export const AUTHENTICATION_FAILED = 'Authentication failed';

export interface HandshakeDependencies {
  tokens: TokenService;
  budget: SessionBudget;
  connections: ConnectionTracker;
}

/** The error `connect_error` carries: a fixed message and the contract's error as `data`. */
function handshakeError(error: unknown): Error & { data: unknown } {
  const body = toErrorBody(error);
  const message = body.code === ErrorCode.Unauthorized ? AUTHENTICATION_FAILED : body.message;
  return Object.assign(new Error(message), { data: body });
}

function handshakeToken(socket: AppSocket): string | undefined {
  const auth = socket.handshake.auth as { token?: unknown } | undefined;
  return bearerToken(socket.request) ?? (typeof auth?.token === 'string' ? auth.token : undefined);
}

/**
 * A client that left while the middleware awaited is dropped by Socket.IO on
 * the turn after `next`, without a 'disconnect'; this runs after that turn.
 * A connected socket's slot is released on its 'disconnect' (`AppIoAdapter`):
 * listeners of their own per socket would cost every connection a kilobyte.
 */
function releaseIfDropped(socket: AppSocket, connections: ConnectionTracker): void {
  process.nextTick(() => {
    if (!socket.connected) connections.release(socket.data.user.id, socket.id);
  });
}

/**
 * Socket.IO middleware: runs once per connection, before any socket exists.
 * Limits attempts per address, authenticates, and reserves a connection slot.
 */
export function socketHandshake(deps: HandshakeDependencies) {
  return (socket: AppSocket, next: (error?: Error) => void): void => {
    const authenticate = async () => {
      await deps.budget.admitConnect(socket.request);
      const user = await deps.tokens.verify(handshakeToken(socket));
      await deps.connections.acquire(user.id, socket.id);
      socket.data.user = user;
    };
    authenticate().then(
      () => {
        next();
        releaseIfDropped(socket, deps.connections);
      },
      (error: unknown) => next(handshakeError(error)),
    );
  };
}
