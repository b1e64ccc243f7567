import type { QueryRunner } from 'typeorm';

/**
 * Index changes that nodes still serving during an upgrade do not wait on.
 * On PostgreSQL, outside a transaction, indexes are built and dropped
 * concurrently: a plain CREATE INDEX would lock the table's writes for the
 * whole build. That cannot run in a transaction, so each step checks what
 * an interrupted run left, and a run can always be made again. Elsewhere
 * (SQLite, or a revert, which TypeORM runs in a transaction whatever the
 * migration asks) the same changes run plainly, in one transaction.
 */
export function buildsConcurrently(queryRunner: QueryRunner): boolean {
  return (
    queryRunner.connection.driver.options.type === 'postgres' && !queryRunner.isTransactionActive
  );
}

/** Whether the index exists beside `table`, and if so whether its build completed. */
export async function indexValidity(
  queryRunner: QueryRunner,
  table: string,
  name: string,
): Promise<'absent' | 'valid' | 'invalid'> {
  const rows = (await queryRunner.query(
    `SELECT i.indisvalid AS valid FROM pg_index i
     JOIN pg_class c ON c.oid = i.indexrelid
     WHERE c.relname = $1
       AND c.relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = $2::regclass)`,
    [name, `"${table}"`],
  )) as Array<{ valid: boolean }>;
  if (rows.length === 0) return 'absent';
  return rows[0].valid ? 'valid' : 'invalid';
}

/** `CREATE INDEX "name" ON "table" columns`, unless a complete one is there; concurrently where it can. */
export async function createIndex(
  queryRunner: QueryRunner,
  table: string,
  name: string,
  columns: string,
): Promise<void> {
  const definition = `"${name}" ON "${table}" ${columns}`;
  if (!buildsConcurrently(queryRunner)) {
    await queryRunner.query(`CREATE INDEX IF NOT EXISTS ${definition}`);
    return;
  }
  const state = await indexValidity(queryRunner, table, name);
  // An interrupted build leaves an invalid index that is not used, and would be kept.
  if (state === 'invalid') await queryRunner.query(`DROP INDEX CONCURRENTLY "${name}"`);
  if (state !== 'valid') await queryRunner.query(`CREATE INDEX CONCURRENTLY ${definition}`);
}

/** `DROP INDEX IF EXISTS`, concurrently where it can. */
export async function dropIndex(queryRunner: QueryRunner, name: string): Promise<void> {
  const concurrently = buildsConcurrently(queryRunner) ? 'CONCURRENTLY ' : '';
  await queryRunner.query(`DROP INDEX ${concurrently}IF EXISTS "${name}"`);
}

/** In the caller's transaction if there is one, else in one of its own. */
export async function inTransaction(
  queryRunner: QueryRunner,
  work: () => Promise<void>,
): Promise<void> {
  if (queryRunner.isTransactionActive) return work();
  await queryRunner.startTransaction();
  try {
    await work();
    await queryRunner.commitTransaction();
  } catch (error) {
    await queryRunner.rollbackTransaction();
    throw error;
  }
}

/** `work` concurrently on PostgreSQL, else in one transaction. */
export function withoutBlockingWrites(
  queryRunner: QueryRunner,
  work: () => Promise<void>,
): Promise<void> {
  return buildsConcurrently(queryRunner) ? work() : inTransaction(queryRunner, work);
}
