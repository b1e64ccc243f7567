import type { Server, Socket } from 'socket.io';
import type { AuthUser } from '@app/auth/auth-user';
import type { ClientToServerEvents, ServerToClientEvents } from '@app/contract/socket-events';

/** What the handshake leaves on every authenticated socket. */
export interface SocketData {
  user: AuthUser;
}

export type AppSocket = Socket<
  ClientToServerEvents,
  ServerToClientEvents,
  Record<string, never>,
  SocketData
>;
export type AppServer = Server<
  ClientToServerEvents,
  ServerToClientEvents,
  Record<string, never>,
  SocketData
>;
