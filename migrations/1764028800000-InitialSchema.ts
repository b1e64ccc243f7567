import type { MigrationInterface, QueryRunner } from 'typeorm';
import { columnTypes } from './column-types';

export class InitialSchema1764028800000 implements MigrationInterface {
  name = 'InitialSchema1764028800000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const { uuid, timestamp } = columnTypes(queryRunner);
    await queryRunner.query(`
      CREATE TABLE "users" (
        "id" ${uuid} NOT NULL PRIMARY KEY,
        "username" varchar(32) NOT NULL,
        "username_key" varchar(32) NOT NULL,
        "password_hash" varchar(100) NOT NULL,
        "created_at" ${timestamp} NOT NULL,
        "deleted_at" ${timestamp} NULL
      )`);
    await queryRunner.query(
      `CREATE UNIQUE INDEX "UQ_users_username_key" ON "users" ("username_key")`,
    );
    await queryRunner.query(`
      CREATE TABLE "rooms" (
        "id" ${uuid} NOT NULL PRIMARY KEY,
        "name" varchar(100) NOT NULL,
        "is_private" boolean NOT NULL,
        "owner_id" ${uuid} NOT NULL REFERENCES "users" ("id"),
        "created_at" ${timestamp} NOT NULL,
        "last_seq" integer NOT NULL DEFAULT 0
      )`);
    await queryRunner.query(`CREATE INDEX "IDX_rooms_public" ON "rooms" ("is_private", "id")`);
    await queryRunner.query(`
      CREATE TABLE "room_members" (
        "room_id" ${uuid} NOT NULL REFERENCES "rooms" ("id") ON DELETE CASCADE,
        "user_id" ${uuid} NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE,
        "joined_at" ${timestamp} NOT NULL,
        PRIMARY KEY ("room_id", "user_id")
      )`);
    await queryRunner.query(`CREATE INDEX "IDX_room_members_user" ON "room_members" ("user_id")`);
    await queryRunner.query(`
      CREATE TABLE "messages" (
        "id" ${uuid} NOT NULL PRIMARY KEY,
        "room_id" ${uuid} NOT NULL REFERENCES "rooms" ("id") ON DELETE CASCADE,
        "seq" integer NOT NULL,
        "user_id" ${uuid} NOT NULL REFERENCES "users" ("id"),
        "username" varchar(32) NOT NULL,
        "text" text NOT NULL,
        "client_msg_id" varchar(64) NULL,
        "created_at" ${timestamp} NOT NULL
      )`);
    await queryRunner.query(
      `CREATE UNIQUE INDEX "UQ_messages_room_seq" ON "messages" ("room_id", "seq")`,
    );
    await queryRunner.query(
      `CREATE UNIQUE INDEX "UQ_messages_room_user_client_msg" ON "messages" ("room_id", "user_id", "client_msg_id")`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE "messages"`);
    await queryRunner.query(`DROP TABLE "room_members"`);
    await queryRunner.query(`DROP TABLE "rooms"`);
    await queryRunner.query(`DROP TABLE "users"`);
  }
}
