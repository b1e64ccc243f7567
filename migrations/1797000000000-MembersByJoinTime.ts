import type { MigrationInterface, QueryRunner } from 'typeorm';
import { createIndex, dropIndex, withoutBlockingWrites } from './index-builds';

/**
 * An owner who leaves, or whose account is deleted, hands each room to its
 * longest-standing member: that read sorted all of a room's memberships by
 * join time, under the room's lock, which the room's sends wait for. The
 * memberships of a room by join time (`IDX_room_members_room_joined`, the
 * user id breaking ties as the read does) give the successor first.
 */
export class MembersByJoinTime1797000000000 implements MigrationInterface {
  name = 'MembersByJoinTime1797000000000';
  transaction = false;

  up(queryRunner: QueryRunner): Promise<void> {
    return withoutBlockingWrites(queryRunner, () =>
      createIndex(
        queryRunner,
        'room_members',
        'IDX_room_members_room_joined',
        '("room_id", "joined_at", "user_id")',
      ),
    );
  }

  down(queryRunner: QueryRunner): Promise<void> {
    return withoutBlockingWrites(queryRunner, () =>
      dropIndex(queryRunner, 'IDX_room_members_room_joined'),
    );
  }
}
