import type { AppSocket } from './socket-data';

/** WebSocket.CLOSED */
const CLOSED = 3;

/**
 * What the service reads of an Engine.IO connection beyond its typed API:
 * the write buffer and, under the websocket transport, the `ws` socket.
 */
export interface EngineConnection {
  writeBuffer: Array<{ data?: unknown }>;
  transport: {
    socket?: { bufferedAmount?: number; readyState?: number; terminate?(): void };
  };
  /** `discard`: drop what is still to be written and close at once, as `cut` must. */
  close(discard?: boolean): void;
}

export function engineConnectionOf(socket: AppSocket): EngineConnection {
  return socket.conn as unknown as EngineConnection;
}

/** Closed down to TCP; a polling connection has nothing of its own left once closed. */
export function closedForGood(connection: EngineConnection): boolean {
  const webSocket = connection.transport.socket;
  return webSocket?.readyState === undefined || webSocket.readyState === CLOSED;
}

/**
 * Cuts the connection at once, without the closing handshake a client that
 * does not read would never answer. A long-polling one drops its backlog:
 * closed gently, it would wait for the backlog to drain, which a client that
 * stopped polling never does, and stay (and be cut, and counted) again.
 */
export function cut(connection: EngineConnection): void {
  const webSocket = connection.transport.socket;
  if (webSocket?.terminate) webSocket.terminate();
  else connection.close(true);
}
