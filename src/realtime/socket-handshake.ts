import { reportedErrorBody, type FailureLog } from '@app/common/errors/to-error-body';
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
  /** Where a failure of our own is logged: the client only learns it was one. */
  logger: FailureLog;
}

/** The error `connect_error` carries: a fixed message and the contract's error as `data`. */
function handshakeError(error: unknown, logger: FailureLog): Error & { data: unknown } {
  const body = reportedErrorBody(error, logger);
  const message = body.code === ErrorCode.Unauthorized ? AUTHENTICATION_FAILED : body.message;
  return Object.assign(new Error(message), { data: body });
}

function handshakeToken(socket: AppSocket): string | undefined {
  const auth = socket.handshake.auth as { token?: unknown } | undefined;
  return bearerToken(socket.request) ?? (typeof auth?.token === 'string' ? auth.token : undefined);
}

/** Slot releases of sockets still in their handshake, until they are connected. */
const releasesWhileConnecting = new WeakMap<AppSocket, () => void>();

/**
 * Socket.IO drops a socket whose client left during the middleware without
 * a 'disconnect', so its engine connection's close releases the slot until
 * the socket is connected (`handshakeCompleted`). From then on the socket's
 * 'disconnect' does, with one listener shared by every socket (`AppIoAdapter`):
 * listeners of its own kept for a socket's lifetime cost it a kilobyte.
 */
function releaseIfDropped(socket: AppSocket, connections: ConnectionTracker): void {
  const release = () => connections.release(socket.data.user.id, socket.id);
  if (socket.conn.readyState !== 'open') return release();
  socket.conn.once('close', release);
  releasesWhileConnecting.set(socket, release);
}

/** For Socket.IO's 'connection': the socket's 'disconnect' releases its slot from now on. */
export function handshakeCompleted(socket: AppSocket): void {
  const release = releasesWhileConnecting.get(socket);
  if (!release) return;
  socket.conn.off('close', release);
  releasesWhileConnecting.delete(socket);
}

/**
 * Socket.IO middleware: runs once per connection, before any socket exists.
 * Limits attempts per address, authenticates, and reserves a connection slot.
 */
export function socketHandshake(deps: HandshakeDependencies) {
  return (socket: AppSocket, next: (error?: Error) => void): void => {
    const authenticate = async () => {
      await deps.budget.admitConnect(socket.request);
      const { user, confirm } = await deps.tokens.admit(handshakeToken(socket));
      await deps.connections.acquire(user.id, socket.id);
      try {
        // Nothing is awaited from here to the socket's personal room.
        confirm();
      } catch (error) {
        deps.connections.release(user.id, socket.id);
        throw error;
      }
      socket.data.user = user;
      releaseIfDropped(socket, deps.connections);
    };
    authenticate().then(
      () => next(),
      (error: unknown) => next(handshakeError(error, deps.logger)),
    );
  };
}
