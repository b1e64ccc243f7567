import { Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { InjectDataSource } from '@nestjs/typeorm';
import type { Database as SqliteDatabase } from 'better-sqlite3';
import type { Pool, PoolClient, QueryConfig } from 'pg';
import { DataSource, QueryFailedError, type EntityManager } from 'typeorm';
import type { BetterSqlite3Driver } from 'typeorm/driver/better-sqlite3/BetterSqlite3Driver';
import type { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver';
import { isFileStateError } from '@app/common/errors/to-error-body';
import { SerialQueue } from '@app/common/serial-queue';
import type { AllConfig } from '@app/config/app-config';

/** How long a write SQLite refused keeps readiness down, unless a write succeeds. */
export const WRITE_REFUSAL_MEMORY_MS = 10_000;

/**
 * A better-sqlite3 failure as the ORM reports failed queries; anything else
 * as it is. Told by its code, not by `instanceof Error`: the native module
 * may make its errors in another realm (a test runner's sandbox), where the
 * check fails and the error would lose its code, and with it its meaning.
 */
function asQueryFailure(error: unknown): Error {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code.startsWith('SQLITE_'))
    return new QueryFailedError('(SQLite transaction)', [], error as Error);
  return error instanceof Error ? error : new Error(String(error));
}

type SqliteTransaction = <T>(work: (db: SqliteDatabase) => T) => T;

/** better-sqlite3's transaction wrapper (four closures and their properties), built once per connection rather than per batch. */
const sqliteTransactions = new WeakMap<SqliteDatabase, SqliteTransaction>();

function transactionOf(db: SqliteDatabase): SqliteTransaction {
  let transaction = sqliteTransactions.get(db);
  if (!transaction) {
    transaction = db.transaction((work: (db: SqliteDatabase) => unknown) =>
      work(db),
    ) as SqliteTransaction;
    sqliteTransactions.set(db, transaction);
  }
  return transaction;
}

/** A PostgreSQL statement that each pooled connection parses and plans once, by its name. */
export interface PreparedStatement {
  name: string;
  text: string;
}

/**
 * The way to run a transaction, or a write that commits alone. better-sqlite3
 * gives TypeORM a single connection, where two concurrent transactions would
 * silently nest, and a lone write issued while a transaction is open would
 * join it (and be undone by its rollback); there all of them take turns.
 * PostgreSQL runs them concurrently on pooled connections, READ COMMITTED by
 * the session default (see `typeormOptions`).
 */
@Injectable()
export class TransactionRunner {
  private readonly sqliteQueue = new SerialQueue();
  /** When SQLite last refused a write for the file's state (full, read-only, failing), until one succeeds. */
  private sqliteRefusedAt?: number;

  /** Longest wait for a prepared statement's answer (see `executePrepared`). */
  private readonly preparedTimeoutMs: number;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    config: ConfigService<AllConfig, true>,
  ) {
    this.preparedTimeoutMs = config.get('messages.writeTimeoutMs', { infer: true });
  }

  get isPostgres(): boolean {
    return this.dataSource.options.type === 'postgres';
  }

  /**
   * SQLite refused a write for the file's state within the last
   * WRITE_REFUSAL_MEMORY_MS, and none succeeded since: readiness says so,
   * and tries again once that is past, as nothing here writes to find out.
   */
  get sqliteRefusingWrites(): boolean {
    const at = this.sqliteRefusedAt;
    return at !== undefined && Date.now() - at < WRITE_REFUSAL_MEMORY_MS;
  }

  run<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    if (this.isPostgres) return this.dataSource.transaction(work);
    return this.sqliteQueue.run(() =>
      this.watchingSqlite(() =>
        this.dataSource.transaction(work).catch((error: unknown) => {
          this.settleSqliteConnection();
          throw error;
        }),
      ),
    );
  }

  /**
   * Notes whether SQLite refused the write for the file's state (full,
   * read-only, failing; not another process's lock), and, after such a
   * refusal, whether a write went through since: one that changed rows.
   */
  private watchingSqlite<T>(write: () => Promise<T>): Promise<T> {
    const changesBefore = this.sqliteRefusedAt === undefined ? undefined : this.sqliteChanges();
    return write().then(
      (result) => {
        if (changesBefore !== undefined && this.changedSince(changesBefore))
          this.sqliteRefusedAt = undefined;
        return result;
      },
      (error: unknown) => {
        if (isFileStateError(error)) this.sqliteRefusedAt = Date.now();
        throw error;
      },
    );
  }

  /** Never fails the write it follows, which is committed (the connection may close meanwhile). */
  private changedSince(changesBefore: number): boolean {
    try {
      return this.sqliteChanges() > changesBefore;
    } catch {
      return false;
    }
  }

  /** Rows changed on SQLite's connection since it opened. */
  private sqliteChanges(): number {
    return this.sqliteConnection.prepare('SELECT total_changes() AS n').pluck().get() as number;
  }

  /**
   * After a failed transaction on SQLite's one connection: none open, and
   * none believed open. A full or failing disk makes SQLite undo the
   * transaction by itself; the ORM's ROLLBACK then fails, is ignored, and
   * leaves its query runner counting one open, so that every later
   * transaction would nest in a savepoint of one that never commits (and a
   * restart would lose all they wrote).
   */
  private settleSqliteConnection(): void {
    const runner = this.dataSource.driver.createQueryRunner('master') as unknown as {
      isTransactionActive: boolean;
      transactionDepth: number;
    };
    // First: should the rollback fail too, the next transaction's BEGIN fails
    // loudly instead of nesting in this one.
    runner.isTransactionActive = false;
    runner.transactionDepth = 0;
    const db = this.sqliteConnection;
    try {
      if (db.inTransaction) db.exec('ROLLBACK');
    } catch {
      // The caller's own failure says what went wrong.
    }
  }

  private get sqliteConnection(): SqliteDatabase {
    return (this.dataSource.driver as BetterSqlite3Driver).databaseConnection as SqliteDatabase;
  }

  /**
   * Statements outside any transaction, each of which commits alone: on
   * PostgreSQL on a pooled connection, on SQLite in its turn.
   */
  write<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    if (this.isPostgres) return work(this.dataSource.manager);
    return this.sqliteQueue.run(() => this.watchingSqlite(() => work(this.dataSource.manager)));
  }

  /**
   * `work` in one transaction on SQLite's single connection, in its turn
   * (after every transaction and lone write already queued), run through
   * synchronously with better-sqlite3's own prepared statements: for the
   * per-message writes, which would otherwise pay for an ORM query runner and
   * a turn of the event loop per statement. A throw rolls it back; a database
   * failure is the ORM's `QueryFailedError`, as anywhere else.
   */
  sqliteTransaction<T>(work: (db: SqliteDatabase) => T): Promise<T> {
    if (this.isPostgres) throw new Error('sqliteTransaction is for SQLite');
    const inTransaction = transactionOf(this.sqliteConnection);
    return this.sqliteQueue.run(() =>
      this.watchingSqlite(() => {
        try {
          return Promise.resolve(inTransaction(work));
        } catch (error) {
          return Promise.reject(asQueryFailure(error));
        }
      }),
    );
  }

  /**
   * One statement outside any transaction (a write commits alone), on
   * PostgreSQL only, prepared once per pooled connection and run on the pool
   * directly: for the per-message statements, which would otherwise be
   * planned anew each time and pay for an ORM query runner. Failures are the
   * ORM's `QueryFailedError`, as anywhere else.
   *
   * A statement unanswered for MESSAGE_WRITE_TIMEOUT_MS (a server gone
   * silent, with nothing to tell the client for many minutes) fails, and its
   * connection leaves the pool: the message store has given up on it by
   * then, and left in the pool, each such connection would hold a place
   * until TCP gave up, until none was left for the writes that could succeed.
   *
   * So does a statement under way when `signal` aborts (its batch was given
   * up on, whatever it waited for first: a pooled connection, an earlier
   * statement): the server, seeing its connection closed, cancels it rather
   * than commit it once a lock it waits on is free.
   */
  async executePrepared<Row>(
    statement: PreparedStatement,
    values: unknown[],
    signal?: AbortSignal,
  ): Promise<Row[]> {
    if (!this.isPostgres)
      throw new Error(`${statement.name}: prepared statements are for PostgreSQL`);
    const pool = (this.dataSource.driver as PostgresDriver).master as Pool;
    // pg reads `query_timeout` of a query's config; its types do not say so.
    const query: QueryConfig & { query_timeout: number } = {
      ...statement,
      values,
      query_timeout: this.preparedTimeoutMs,
    };
    try {
      return await onPooledClient(pool, signal, (client) =>
        client.query<Row & object>(query).then((result) => result.rows),
      );
    } catch (error) {
      throw new QueryFailedError(statement.text, values, error as Error);
    }
  }
}

/**
 * `work` on a client of the pool, as `pool.query` runs it: released when done,
 * and out of the pool after an error (or once `signal` aborts, which closes
 * its connection while `work` runs).
 */
async function onPooledClient<T>(
  pool: Pool,
  signal: AbortSignal | undefined,
  work: (client: PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  if (signal?.aborted) {
    // Given up on while it waited for the client, which goes back untouched.
    client.release();
    signal.throwIfAborted();
  }
  let released = false;
  const release = (error?: Error) => {
    if (released) return;
    released = true;
    client.removeListener('error', release);
    signal?.removeEventListener('abort', giveUp);
    client.release(error);
  };
  const giveUp = () => release(new Error('Given up on'));
  client.once('error', release);
  signal?.addEventListener('abort', giveUp, { once: true });
  try {
    const answer = await work(client);
    release();
    return answer;
  } catch (error) {
    release(error as Error);
    throw error;
  }
}
