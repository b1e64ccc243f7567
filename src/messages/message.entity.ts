import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

@Entity({ name: 'messages' })
@Index('UQ_messages_room_seq', ['roomId', 'seq'], { unique: true })
@Index('UQ_messages_room_user_client_msg', ['roomId', 'userId', 'clientMsgId'], {
  unique: true,
  where: '"client_msg_id" IS NOT NULL',
})
export class Message {
  @PrimaryColumn({ type: 'uuid' })
  id: string;

  @Column({ name: 'room_id', type: 'uuid' })
  roomId: string;

  @Column({ type: 'integer' })
  seq: number;

  @Column({ name: 'user_id', type: 'uuid' })
  userId: string;

  /** The sender's name when the message was sent. */
  @Column({ type: 'varchar', length: 32 })
  username: string;

  @Column({ type: 'text' })
  text: string;

  @Column({ name: 'client_msg_id', type: 'varchar', length: 64, nullable: true })
  clientMsgId: string | null;

  @Column({ name: 'created_at' })
  createdAt: Date;
}
