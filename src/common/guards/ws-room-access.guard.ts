import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { AppException } from '@app/common/errors/app.exception';
import { roomIdOfPayload } from '@app/common/room-id-of-payload';
import type { AppSocket } from '@app/realtime/socket-data';
import { RoomsService } from '@app/rooms/rooms.service';

/**
 * Authorization per live event: the token must still be valid and the room
 * visible to the user (public, or a member). A payload without a usable
 * roomId passes on to validation, which names the problem.
 */
@Injectable()
export class WsRoomAccessGuard implements CanActivate {
  constructor(private readonly rooms: RoomsService) {}

  canActivate(context: ExecutionContext): boolean | Promise<boolean> {
    const ws = context.switchToWs();
    const user = ws.getClient<AppSocket>().data.user;
    if (Date.now() >= user.tokenExpiresAt) throw AppException.tokenExpired();
    const roomId = roomIdOfPayload(ws.getData());
    // Answered at once when the caches know: Nest then awaits nothing for this guard.
    if (roomId === undefined || this.rooms.knownAccessible(user.id, roomId) !== undefined)
      return true;
    return this.rooms.assertAccessible(user.id, roomId).then(() => true);
  }
}
