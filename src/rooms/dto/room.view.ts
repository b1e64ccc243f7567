import { ApiProperty } from '@nestjs/swagger';
import type { MemberJson, RoomJson } from '@app/contract/models';
import { UserSummary } from '@app/users/dto/user.view';
import type { Room } from '../room.entity';
import type { RoomMemberSummary } from '../rooms.service';

export class RoomView implements RoomJson {
  @ApiProperty({ format: 'uuid' })
  id: string;

  @ApiProperty({ example: 'general' })
  name: string;

  @ApiProperty()
  isPrivate: boolean;

  @ApiProperty({ format: 'uuid' })
  ownerId: string;

  @ApiProperty({ format: 'date-time' })
  createdAt: string;

  @ApiProperty({ description: 'seq of the newest message, 0 when there is none' })
  lastSeq: number;

  static from(room: Room): RoomView {
    return {
      id: room.id,
      name: room.name,
      isPrivate: room.isPrivate,
      ownerId: room.ownerId,
      createdAt: room.createdAt.toISOString(),
      lastSeq: room.lastSeq,
    };
  }
}

export class RoomPage {
  @ApiProperty({ type: [RoomView] })
  items: RoomView[];

  @ApiProperty({
    type: String,
    nullable: true,
    description: 'null exactly when there is nothing more',
  })
  nextCursor: string | null;
}

export class MemberView extends UserSummary implements MemberJson {
  @ApiProperty({ format: 'uuid' })
  roomId: string;

  @ApiProperty({ format: 'date-time' })
  joinedAt: string;
}

export class MemberPage {
  @ApiProperty({ type: [MemberView] })
  items: MemberView[];

  @ApiProperty({
    type: String,
    nullable: true,
    description: 'null exactly when there is nothing more',
  })
  nextCursor: string | null;
}

export function memberViewOf(roomId: string, member: RoomMemberSummary): MemberView {
  return {
    roomId,
    id: member.id,
    username: member.username,
    joinedAt: member.joinedAt.toISOString(),
  };
}
