import { Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { AuthUser } from '@app/auth/auth-user';
import { AppException } from '@app/common/errors/app.exception';
import type { AllConfig } from '@app/config/app-config';
import type { UserSummaryJson } from '@app/contract/models';
import type { JoinResult, PresenceResult } from '@app/contract/socket-events';
import { DeliveryService } from '@app/delivery/delivery.service';
import { MessagesService } from '@app/messages/messages.service';
import { RoomView } from '@app/rooms/dto/room.view';
import type { Room } from '@app/rooms/room.entity';
import { RoomsService } from '@app/rooms/rooms.service';
import { PresenceService } from './presence.service';

/** At most this many missed messages come with a join; the client pages the rest over REST. */
export const MAX_MISSED_ON_JOIN = 1000;

/** One live connection of a user, on any transport. */
export interface Connection {
  id: string;
  user: AuthUser;
}

const summary = (user: AuthUser): UserSummaryJson => ({ id: user.id, username: user.username });

/** Joining, leaving, presence and typing for live connections of every transport. */
@Injectable()
export class ChatService {
  constructor(
    private readonly rooms: RoomsService,
    private readonly messages: MessagesService,
    private readonly presence: PresenceService,
    private readonly delivery: DeliveryService,
    private readonly config: ConfigService<AllConfig, true>,
  ) {}

  /**
   * Enters the room. `subscribe` runs before missed messages are read, so a
   * message committed meanwhile is delivered live or in `missed`, never lost.
   */
  async join(
    connection: Connection,
    roomId: string,
    since: number | undefined,
    subscribe: (roomId: string) => void,
  ): Promise<JoinResult> {
    const room = await this.enter(connection, roomId);
    subscribe(room.id);
    const [members, missed] = await Promise.all([
      this.rooms.listMembers(room.id),
      since === undefined
        ? undefined
        : this.messages.page(room.id, { since, limit: MAX_MISSED_ON_JOIN }),
    ]);
    return {
      room: RoomView.from(room),
      members,
      missed: missed?.items ?? [],
      truncated: missed?.nextCursor != null,
    };
  }

  /** Access, membership of public rooms, the per-connection cap, and presence. */
  async enter(connection: Connection, roomId: string): Promise<Room> {
    const room = await this.rooms.findAccessible(connection.user.id, roomId);
    const joined = this.presence.roomsOf(connection.id);
    const maxRooms = this.config.get('realtime.maxRoomsPerConnection', { infer: true });
    if (!joined.has(room.id) && joined.size >= maxRooms) {
      throw AppException.forbidden(`A connection may join at most ${maxRooms} rooms`);
    }
    if (!room.isPrivate) await this.rooms.addMember(room.id, connection.user.id);
    const change = this.presence.enter(room.id, summary(connection.user), connection.id);
    if (change.changed) this.delivery.userJoined(room.id, change.user, connection.id);
    return room;
  }

  leave(connection: Connection, roomId: string): void {
    const change = this.presence.leave(
      roomId.toLowerCase(),
      summary(connection.user),
      connection.id,
    );
    if (change.changed) this.delivery.userLeft(change.roomId, change.user);
  }

  disconnected(connection: Connection): void {
    for (const change of this.presence.leaveAll(summary(connection.user), connection.id)) {
      if (change.changed) this.delivery.userLeft(change.roomId, change.user);
    }
  }

  typing(connection: Connection, roomId: string): void {
    this.assertJoined(connection, roomId);
    this.delivery.typing(roomId.toLowerCase(), summary(connection.user));
  }

  whoIsHere(roomId: string): PresenceResult {
    return { users: this.presence.users(roomId.toLowerCase()) };
  }

  hasJoined(connection: Connection, roomId: string): boolean {
    return this.presence.roomsOf(connection.id).has(roomId.toLowerCase());
  }

  assertJoined(connection: Connection, roomId: string): void {
    if (!this.hasJoined(connection, roomId)) throw AppException.forbidden('Join the room first');
  }
}
