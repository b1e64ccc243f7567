import type { Socket as EngineSession } from 'engine.io';
import { AppException } from '@app/common/errors/app.exception';
import { ServerEvent } from '@app/contract/events';
import type { AppSocket } from './socket-data';
import { TokenBucket } from './token-bucket';

const PACKET_LIMIT = Symbol('packetLimit');

type LimitedSession = EngineSession & {
  [PACKET_LIMIT]?: { bucket: TokenBucket; socket: AppSocket };
};

/** One listener for the packets of every connection: each keeps only its bucket. */
function countPacket(this: LimitedSession): void {
  const limit = this[PACKET_LIMIT];
  if (!limit || limit.bucket.take() || !limit.socket.connected) return;
  limit.socket.emit(
    ServerEvent.Error,
    AppException.rateLimited('Too many packets: connection closed').toBody(),
  );
  limit.socket.disconnect(true);
}

/**
 * A connection that floods packets far beyond any per-event budget is cut
 * off as its Engine.IO packets arrive, before they are parsed into events,
 * so that its cost cannot slow down everyone else.
 */
export function limitPacketRate(socket: AppSocket, perSecond: number): void {
  const session = socket.conn as LimitedSession;
  session[PACKET_LIMIT] = { bucket: new TokenBucket(perSecond, perSecond * 2), socket };
  session.on('packet', countPacket);
}
