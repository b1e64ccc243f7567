import { Injectable } from '@nestjs/common';
import { cut, engineConnectionOf } from './engine-connection';
import type { AppServer, AppSocket } from './socket-data';

/** How often the Socket.IO connections that were sent to are checked for a backlog. */
export const SLOW_CONSUMER_CHECK_MS = 250;

/** Every this many checks, every connection is checked: acks and direct emits included. */
export const FULL_CHECK_EVERY = 8;

/** As it goes out: UTF-8 bytes, up to three per UTF-16 unit of a string. */
function sizeOf(data: unknown): number {
  if (typeof data === 'string') return Buffer.byteLength(data);
  if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) return data.byteLength;
  return 0;
}

/** Bytes waiting to go out to one Socket.IO client: queued in engine.io, and in the WebSocket itself. */
export function pendingBytes(socket: AppSocket): number {
  const connection = engineConnectionOf(socket);
  let pending = connection.transport.socket?.bufferedAmount ?? 0;
  for (const packet of connection.writeBuffer) pending += sizeOf(packet.data);
  return pending;
}

/** Drops the given clients whose backlog passed the limit; how many. */
function dropOverLimit(sockets: Iterable<AppSocket>, limitBytes: number): number {
  let dropped = 0;
  for (const socket of sockets) {
    if (pendingBytes(socket) > limitBytes) {
      cut(engineConnectionOf(socket));
      dropped += 1;
    }
  }
  return dropped;
}

/**
 * Drops the Socket.IO clients that stopped reading while their rooms stay
 * busy, before their backlog grows the server's memory without bound.
 * Visiting every connection four times a second costs an idle node with
 * 10 000 of them about 12 ms of CPU a second, so a check visits the members
 * of the rooms sent to since the last one, and every `FULL_CHECK_EVERY`th
 * check everyone (what else is sent to a client, acks above all, is bounded
 * by its own rate limits meanwhile).
 */
@Injectable()
export class SlowConsumerWatch {
  private readonly sentTo = new Set<string>();
  private checks = 0;

  /** Something went out to every member of the room (or personal channel). */
  sent(room: string): void {
    this.sentTo.add(room);
  }

  /** Drops the clients over the limit; how many. */
  check(server: AppServer, limitBytes: number): number {
    this.checks += 1;
    const everyone = this.checks % FULL_CHECK_EVERY === 0;
    const sockets = everyone ? server.sockets.sockets.values() : this.membersSentTo(server);
    this.sentTo.clear();
    return dropOverLimit(sockets, limitBytes);
  }

  private membersSentTo(server: AppServer): AppSocket[] {
    const rooms = server.sockets.adapter.rooms;
    const ids = new Set<string>();
    for (const room of this.sentTo) for (const id of rooms.get(room) ?? []) ids.add(id);
    const sockets: AppSocket[] = [];
    for (const id of ids) {
      const socket = server.sockets.sockets.get(id);
      if (socket) sockets.push(socket);
    }
    return sockets;
  }
}
