import { setTimeout as sleep } from 'node:timers/promises';
import { Logger } from '@nestjs/common';
import type { DataSource, QueryRunner } from 'typeorm';

/**
 * Any 32-bit number shared by every node: with a hash of the schema's name,
 * the lock that serializes migration runs on that schema. Deployments in
 * other schemas of the same database do not wait for each other.
 */
export const MIGRATION_LOCK_CLASS = 730_511_200;
/** The schema in effect: the configured one, or the session's own (`public`, or a `search_path` of the URL). */
const SCHEMA_KEY = 'hashtext(coalesce($2, current_schema()))';
export const MIGRATION_TRY_LOCK = `SELECT pg_try_advisory_lock($1, ${SCHEMA_KEY}) AS locked`;
const UNLOCK = `SELECT pg_advisory_unlock($1, ${SCHEMA_KEY})`;
const LOCK_RETRY_MS = 200;
const logger = new Logger('Migrations');

/**
 * Waits for the lock by asking again and again: a session blocked in
 * `pg_advisory_lock` keeps a snapshot, and an index built CONCURRENTLY by the
 * node holding the lock waits for every older snapshot to end, so the nodes
 * would wait on each other for good.
 */
async function takeMigrationLock(runner: QueryRunner, keys: LockKeys): Promise<void> {
  for (let tries = 0; ; tries += 1) {
    const [{ locked }] = (await runner.query(MIGRATION_TRY_LOCK, keys)) as Array<{
      locked: boolean | null;
    }>;
    if (locked === null) throw noSchemaSelected();
    if (locked) return;
    // Said once: a start-up that seems stuck is waiting for another node's migrations.
    if (tries === 0) logger.log('Waiting for another node to finish its migrations');
    await sleep(LOCK_RETRY_MS);
  }
}

/**
 * No DATABASE_SCHEMA, and no schema of the session's `search_path` exists
 * (`current_schema()` is null): there is nowhere to migrate to, and no lock
 * to wait for.
 */
function noSchemaSelected(): Error {
  return new Error(
    'No schema to migrate: none of the search_path of DATABASE_URL (or of its role) exists. ' +
      'Create it, or set DATABASE_SCHEMA, which is created when missing',
  );
}

type LockKeys = [lockClass: number, schema: string | null];

/** The parameters of the migration lock of the configured schema (none: the session's). */
export function migrationLockKeys(schema: string | undefined): LockKeys {
  return [MIGRATION_LOCK_CLASS, schema ?? null];
}

async function withMigrationLock<T>(dataSource: DataSource, work: () => Promise<T>): Promise<T> {
  const options = dataSource.options;
  if (options.type !== 'postgres') return work();
  const keys = migrationLockKeys(options.schema);
  const runner = dataSource.createQueryRunner();
  await runner.connect();
  try {
    await takeMigrationLock(runner, keys);
    return await work();
  } finally {
    await runner.query(UNLOCK, keys).catch(() => undefined);
    await runner.release();
  }
}

/**
 * Creates the configured schema when it is missing, under the migration lock:
 * two `CREATE SCHEMA IF NOT EXISTS` at once can both try to create it, and
 * PostgreSQL checks the database's CREATE privilege even when the schema
 * exists, which a role given only its own schema lacks.
 */
async function ensureSchema(dataSource: DataSource): Promise<void> {
  const options = dataSource.options;
  if (options.type !== 'postgres' || !options.schema) return;
  const found: unknown[] = await dataSource.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [
    options.schema,
  ]);
  if (found.length === 0) await dataSource.query(`CREATE SCHEMA "${options.schema}"`);
}

/**
 * Creates the configured schema and applies pending migrations. Several nodes
 * starting at once take turns through a PostgreSQL advisory lock.
 */
export function runMigrations(dataSource: DataSource) {
  return withMigrationLock(dataSource, async () => {
    await ensureSchema(dataSource);
    return dataSource.runMigrations({ transaction: 'each' });
  });
}

/**
 * Reverts the last migration applied, outside a transaction when it asks to
 * run without one (TypeORM would start one anyway), as it was applied: a
 * rebuild meant to run concurrently would otherwise lock its table.
 */
export function revertLastMigration(dataSource: DataSource): Promise<string | undefined> {
  return withMigrationLock(dataSource, async () => {
    await ensureSchema(dataSource);
    const last = await lastAppliedMigration(dataSource);
    if (!last) return undefined;
    if (!last.name)
      throw new Error(`The last migration applied, ${last.applied}, is not one of this version's`);
    await dataSource.undoLastMigration({
      transaction: last.transaction === false ? 'none' : 'each',
    });
    return last.name;
  });
}

/** As TypeORM picks the one to revert: the one applied last, and what this version knows of it. */
async function lastAppliedMigration(dataSource: DataSource) {
  const table = dataSource.options.migrationsTableName ?? 'migrations';
  const [row] = await dataSource
    .query<Array<{ name: string }>>(`SELECT name FROM "${table}" ORDER BY id DESC LIMIT 1`)
    .catch((error: unknown) => {
      // Nothing applied yet.
      if (isMissingTable(error)) return [];
      throw error;
    });
  if (!row) return undefined;
  const migration = dataSource.migrations.find((known) => known.name === row.name);
  return { applied: row.name, name: migration?.name, transaction: migration?.transaction };
}

const CHECK_TIMEOUT_MS = 2_000;

/** Names of the migrations not applied yet; reads only (unlike TypeORM's own check). */
export async function pendingMigrations(dataSource: DataSource): Promise<string[]> {
  const table = dataSource.options.migrationsTableName ?? 'migrations';
  const applied = await Promise.race([
    dataSource.query<Array<{ name: string }>>(`SELECT name FROM "${table}"`).catch((error) => {
      if (isMissingTable(error)) return [];
      throw error;
    }),
    sleep(CHECK_TIMEOUT_MS, undefined, { ref: false }).then(() => {
      throw new Error('The database did not answer in time');
    }),
  ]);
  const names = new Set(applied.map((row) => row.name));
  return dataSource.migrations
    .map((migration) => migration.name ?? '')
    .filter((name) => !names.has(name));
}

/** PostgreSQL's undefined_table, or SQLite's own words. */
function isMissingTable(error: unknown): boolean {
  const { code, message } = error as { code?: unknown; message?: unknown };
  return code === '42P01' || (typeof message === 'string' && message.includes('no such table'));
}
