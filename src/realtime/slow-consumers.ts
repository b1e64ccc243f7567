import type { AppServer, AppSocket } from './socket-data';

/** How often Socket.IO connections are checked for a backlog. */
export const SLOW_CONSUMER_CHECK_MS = 250;

interface EngineConnection {
  writeBuffer: Array<{ data?: unknown }>;
  transport: { socket?: { bufferedAmount?: number; terminate?(): void } };
  close(): void;
}

function sizeOf(data: unknown): number {
  if (typeof data === 'string') return data.length;
  if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) return data.byteLength;
  return 0;
}

/** Bytes waiting to go out to one Socket.IO client: queued in engine.io, and in the WebSocket itself. */
export function pendingBytes(socket: AppSocket): number {
  const connection = socket.conn as unknown as EngineConnection;
  let pending = connection.transport.socket?.bufferedAmount ?? 0;
  for (const packet of connection.writeBuffer) pending += sizeOf(packet.data);
  return pending;
}

/**
 * Drops the Socket.IO clients that stopped reading while their rooms stay
 * busy, before their backlog grows the server's memory without bound.
 */
export function dropSlowConsumers(server: AppServer, limitBytes: number): number {
  let dropped = 0;
  for (const socket of server.sockets.sockets.values()) {
    if (pendingBytes(socket) > limitBytes) {
      drop(socket.conn as unknown as EngineConnection);
      dropped += 1;
    }
  }
  return dropped;
}

/** A client that does not read would not answer a closing handshake either: cut the connection. */
function drop(connection: EngineConnection): void {
  const webSocket = connection.transport.socket;
  if (webSocket?.terminate) webSocket.terminate();
  else connection.close();
}
