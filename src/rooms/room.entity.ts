import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

@Entity({ name: 'rooms' })
@Index('IDX_rooms_public', ['isPrivate', 'id'])
@Index('IDX_rooms_owner', ['ownerId'])
export class Room {
  @PrimaryColumn({ type: 'uuid' })
  id: string;

  @Column({ type: 'varchar', length: 100 })
  name: string;

  @Column({ name: 'is_private', type: 'boolean' })
  isPrivate: boolean;

  @Column({ name: 'owner_id', type: 'uuid' })
  ownerId: string;

  @Column({ name: 'created_at' })
  createdAt: Date;

  /** The seq of the room's newest message; the message store advances it. */
  @Column({ name: 'last_seq', type: 'integer', default: 0 })
  lastSeq: number;
}
