import { Message } from '@app/messages/message.entity';
import { RoomMember } from '@app/rooms/room-member.entity';
import { Room } from '@app/rooms/room.entity';
import { User } from '@app/users/user.entity';

/** Every entity of the service; feature modules register theirs here too. */
export const ENTITIES = [User, Room, RoomMember, Message];
