import type { DataSource } from 'typeorm';

/** Any 64-bit number shared by every node: the lock that serializes migration runs. */
const MIGRATION_LOCK_KEY = 7_305_112_004;

async function withMigrationLock<T>(dataSource: DataSource, work: () => Promise<T>): Promise<T> {
  if (dataSource.options.type !== 'postgres') return work();
  const runner = dataSource.createQueryRunner();
  await runner.connect();
  try {
    await runner.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    return await work();
  } finally {
    await runner
      .query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY])
      .catch(() => undefined);
    await runner.release();
  }
}

async function ensureSchema(dataSource: DataSource): Promise<void> {
  const options = dataSource.options;
  if (options.type === 'postgres' && options.schema) {
    await dataSource.query(`CREATE SCHEMA IF NOT EXISTS "${options.schema}"`);
  }
}

/**
 * Creates the configured schema and applies pending migrations. Several nodes
 * starting at once take turns through a PostgreSQL advisory lock.
 */
export async function runMigrations(dataSource: DataSource) {
  await ensureSchema(dataSource);
  return withMigrationLock(dataSource, () => dataSource.runMigrations({ transaction: 'each' }));
}

export async function revertLastMigration(dataSource: DataSource): Promise<void> {
  await ensureSchema(dataSource);
  await withMigrationLock(dataSource, () => dataSource.undoLastMigration({ transaction: 'each' }));
}
