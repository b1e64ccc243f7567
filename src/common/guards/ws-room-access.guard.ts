import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { AppException } from '@app/common/errors/app.exception';
import { UUID_PATTERN } from '@app/common/ids/uuid-v7';
import type { AppSocket } from '@app/realtime/socket-data';
import { RoomsService } from '@app/rooms/rooms.service';

function roomIdOf(payload: unknown): string | undefined {
  const roomId =
    typeof payload === 'string' ? payload : (payload as { roomId?: unknown } | null)?.roomId;
  return typeof roomId === 'string' && UUID_PATTERN.test(roomId) ? roomId : undefined;
}

/**
 * Authorization per live event: the token must still be valid and the room
 * visible to the user (public, or a member). A payload without a usable
 * roomId passes on to validation, which names the problem.
 */
@Injectable()
export class WsRoomAccessGuard implements CanActivate {
  constructor(private readonly rooms: RoomsService) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const user = context.switchToWs().getClient<AppSocket>().data.user;
    if (Date.now() >= user.tokenExpiresAt) throw AppException.unauthorized('Token expired');
    const roomId = roomIdOf(context.switchToWs().getData());
    if (roomId !== undefined) await this.rooms.assertAccessible(user.id, roomId);
    return true;
  }
}
