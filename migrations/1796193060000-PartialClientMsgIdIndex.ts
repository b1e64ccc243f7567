import type { MigrationInterface, QueryRunner } from 'typeorm';

const INDEX = 'UQ_messages_room_user_client_msg';
const COLUMNS = '"room_id", "user_id", "client_msg_id"';

/**
 * The clientMsgId index only needs the messages that have one: NULLs never
 * conflict in a unique index, so indexing them cost every message without a
 * clientMsgId an index insertion for nothing. Both databases accept the
 * partial index and use it for `client_msg_id = …` look-ups.
 */
export class PartialClientMsgIdIndex1796193060000 implements MigrationInterface {
  name = 'PartialClientMsgIdIndex1796193060000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "${INDEX}"`);
    await queryRunner.query(
      `CREATE UNIQUE INDEX "${INDEX}" ON "messages" (${COLUMNS}) WHERE "client_msg_id" IS NOT NULL`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "${INDEX}"`);
    await queryRunner.query(`CREATE UNIQUE INDEX "${INDEX}" ON "messages" (${COLUMNS})`);
  }
}
