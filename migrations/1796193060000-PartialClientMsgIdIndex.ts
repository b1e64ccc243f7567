import type { MigrationInterface, QueryRunner } from 'typeorm';
import { buildsConcurrently, inTransaction, indexValidity } from './index-builds';

const INDEX = 'UQ_messages_room_user_client_msg';
const BUILDING = 'UQ_messages_room_user_client_msg_next';
const COLUMNS = '"room_id", "user_id", "client_msg_id"';

/** What follows `CREATE UNIQUE INDEX [CONCURRENTLY]`: the index named `name`. */
type IndexDefinition = (name: string) => string;
const PARTIAL: IndexDefinition = (name) =>
  `"${name}" ON "messages" (${COLUMNS}) WHERE "client_msg_id" IS NOT NULL`;
const FULL: IndexDefinition = (name) => `"${name}" ON "messages" (${COLUMNS})`;

/**
 * The clientMsgId index only needs the messages that have one: NULLs never
 * conflict in a unique index, so indexing them cost every message without a
 * clientMsgId an index insertion for nothing. Both databases accept the
 * partial index and use it for `client_msg_id = …` look-ups.
 *
 * On PostgreSQL the new index is built beside the old one, concurrently, so
 * that nodes still serving during an upgrade keep reading and writing
 * messages; a plain DROP and CREATE would lock the table for the whole build.
 * That cannot run in a transaction, so a run interrupted at any step can be
 * run again.
 */
export class PartialClientMsgIdIndex1796193060000 implements MigrationInterface {
  name = 'PartialClientMsgIdIndex1796193060000';
  transaction = false;

  up(queryRunner: QueryRunner): Promise<void> {
    return replaceIndex(queryRunner, PARTIAL);
  }

  down(queryRunner: QueryRunner): Promise<void> {
    return replaceIndex(queryRunner, FULL);
  }
}

async function replaceIndex(queryRunner: QueryRunner, definition: IndexDefinition): Promise<void> {
  if (!buildsConcurrently(queryRunner)) {
    return inTransaction(queryRunner, async () => {
      await queryRunner.query(`DROP INDEX "${INDEX}"`);
      await queryRunner.query(`CREATE UNIQUE INDEX ${definition(INDEX)}`);
    });
  }
  // Each step checks what an interrupted run left: an invalid build goes,
  // a finished one is kept, and the swap completes.
  const building = await indexValidity(queryRunner, 'messages', BUILDING);
  if (building === 'invalid') {
    await queryRunner.query(`DROP INDEX CONCURRENTLY "${BUILDING}"`);
  }
  if (building !== 'valid') {
    await queryRunner.query(`CREATE UNIQUE INDEX CONCURRENTLY ${definition(BUILDING)}`);
  }
  await queryRunner.query(`DROP INDEX CONCURRENTLY IF EXISTS "${INDEX}"`);
  await queryRunner.query(`ALTER INDEX "${BUILDING}" RENAME TO "${INDEX}"`);
}
