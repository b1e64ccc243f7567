import type { Socket as EngineSession } from 'engine.io';
import { AppException } from '@app/common/errors/app.exception';
import type { ErrorBody } from '@app/common/errors/error-body';
import { ServerEvent } from '@app/contract/events';
import type { AppSocket } from './socket-data';
import { TokenBucket } from './token-bucket';

const PACKET_LIMIT = Symbol('packetLimit');
/** How long a connection's rejoining allowance lasts: a client coming back rejoins at once. */
const REJOIN_ALLOWANCE_MS = 10_000;

type LimitedSession = EngineSession & {
  /**
   * `socket`: the session's latest socket (a client may leave the namespace
   * and connect again); none before its first namespace connect.
   */
  [PACKET_LIMIT]?: { bucket: TokenBucket; socket?: AppSocket };
};

/** One listener for the packets of every connection: each keeps only its bucket. */
function countPacket(this: LimitedSession): void {
  const limit = this[PACKET_LIMIT];
  if (!limit || limit.bucket.take()) return;
  const { socket } = limit;
  if (!socket?.connected) return this.close();
  socket.emit(ServerEvent.Error, packetFloodError());
  socket.disconnect(true);
}

/**
 * A connection's packet budget, on every transport: `perSecond` on average,
 * bursts of twice it, and `maxRooms` more in its first seconds only: a
 * client that comes back rejoins every room it held at once, with what it
 * kept to send, and must not be taken for a flood every time it does.
 */
export function packetBudget(perSecond: number, maxRooms: number): TokenBucket {
  return new TokenBucket(perSecond, perSecond * 2, {
    tokens: maxRooms,
    forMs: REJOIN_ALLOWANCE_MS,
  });
}

/** What a connection cut off for flooding packets is told, on every transport. */
export function packetFloodError(): ErrorBody {
  return AppException.rateLimited('Too many packets: connection closed').toBody();
}

/**
 * A connection that floods packets far beyond any per-event budget is cut
 * off as its Engine.IO packets arrive (every packet counts: events, acks,
 * pongs, binary attachments, namespace connects), before they are parsed
 * into events, so that its cost cannot slow down everyone else. One budget
 * per Engine.IO session, from its start, however often its client connects
 * to the namespace again; a session that floods before its socket is
 * connected (connects refused one after another) is closed.
 */
export function limitPacketRate(session: EngineSession, perSecond: number, maxRooms: number): void {
  // One more packet for the namespace connect that opens the session's use.
  const bucket = packetBudget(perSecond, maxRooms + 1);
  (session as LimitedSession)[PACKET_LIMIT] = { bucket };
  session.on('packet', countPacket);
}

/** The socket its session's flood is told to, once connected to the namespace. */
export function packetLimitReaches(socket: AppSocket): void {
  const limit = (socket.conn as LimitedSession)[PACKET_LIMIT];
  if (limit) limit.socket = socket;
}
