import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

@Entity({ name: 'users' })
export class User {
  @PrimaryColumn({ type: 'uuid' })
  id: string;

  /** As the user typed it; shown to others. */
  @Column({ type: 'varchar', length: 32 })
  username: string;

  /** Lower-cased username: names are unique regardless of case. */
  @Index('UQ_users_username_key', { unique: true })
  @Column({ name: 'username_key', type: 'varchar', length: 32 })
  usernameKey: string;

  @Column({ name: 'password_hash', type: 'varchar', length: 100, select: false })
  passwordHash: string;

  @Column({ name: 'created_at' })
  createdAt: Date;

  @Column({ name: 'deleted_at', type: Date, nullable: true })
  deletedAt: Date | null;
}
