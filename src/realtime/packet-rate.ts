import { AppException } from '@app/common/errors/app.exception';
import { ServerEvent } from '@app/contract/events';
import type { AppSocket } from './socket-data';
import { TokenBucket } from './token-bucket';

/**
 * A connection that floods packets far beyond any per-event budget is cut
 * off before its packets are even parsed into events, so that its cost
 * cannot slow down everyone else.
 */
export function limitPacketRate(socket: AppSocket, perSecond: number): void {
  const bucket = new TokenBucket(perSecond, perSecond * 2);
  socket.use((_packet, next) => {
    if (bucket.take()) return next();
    socket.emit(
      ServerEvent.Error,
      AppException.rateLimited('Too many packets: connection closed').toBody(),
    );
    socket.disconnect(true);
  });
}
