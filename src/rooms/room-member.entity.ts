import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

@Entity({ name: 'room_members' })
@Index('IDX_room_members_user_room', ['userId', 'roomId'])
@Index('IDX_room_members_room_joined', ['roomId', 'joinedAt', 'userId'])
export class RoomMember {
  @PrimaryColumn({ name: 'room_id', type: 'uuid' })
  roomId: string;

  @PrimaryColumn({ name: 'user_id', type: 'uuid' })
  userId: string;

  @Column({ name: 'joined_at' })
  joinedAt: Date;
}
