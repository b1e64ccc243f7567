import type { QueryRunner } from 'typeorm';

/**
 * Column types that differ between the two supported databases, so that one
 * migration file runs on both. PostgreSQL stores instants as `timestamptz`.
 */
export function columnTypes(queryRunner: QueryRunner) {
  const postgres = queryRunner.connection.driver.options.type === 'postgres';
  return {
    uuid: postgres ? 'uuid' : 'varchar(36)',
    timestamp: postgres ? 'timestamptz' : 'datetime',
  };
}
