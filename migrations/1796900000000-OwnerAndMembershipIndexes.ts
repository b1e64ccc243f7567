import type { MigrationInterface, QueryRunner } from 'typeorm';
import { createIndex, dropIndex, withoutBlockingWrites } from './index-builds';

/**
 * Two reads that had no index to stop early:
 * - the rooms an account owns, which deleting it hands over, read the whole
 *   rooms table (`IDX_rooms_owner`);
 * - a user's private rooms, a page at a time in id order, walked every
 *   private room after the cursor or read all of the user's memberships
 *   and sorted them; memberships by user and then room
 *   (`IDX_room_members_user_room`) give them in order, and answer every
 *   look-up by user that the index on the user alone answered, which goes.
 */
export class OwnerAndMembershipIndexes1796900000000 implements MigrationInterface {
  name = 'OwnerAndMembershipIndexes1796900000000';
  transaction = false;

  up(queryRunner: QueryRunner): Promise<void> {
    return withoutBlockingWrites(queryRunner, async () => {
      await createIndex(queryRunner, 'rooms', 'IDX_rooms_owner', '("owner_id")');
      await createIndex(
        queryRunner,
        'room_members',
        'IDX_room_members_user_room',
        '("user_id", "room_id")',
      );
      await dropIndex(queryRunner, 'IDX_room_members_user');
    });
  }

  down(queryRunner: QueryRunner): Promise<void> {
    return withoutBlockingWrites(queryRunner, async () => {
      await createIndex(queryRunner, 'room_members', 'IDX_room_members_user', '("user_id")');
      await dropIndex(queryRunner, 'IDX_room_members_user_room');
      await dropIndex(queryRunner, 'IDX_rooms_owner');
    });
  }
}
