import type { Socket } from 'node:net';
import { Client, type Pool } from 'pg';
import type { DataSource } from 'typeorm';
import { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver';
import { withinTime } from '@app/common/time-limit';

const noAnswer = () => new Error('No answer in time');
/** How long a connection that answers gets to say goodbye before its socket is cut. */
const GOODBYE_MS = 1_000;

/** The database answers but takes no writes: a standby after a failover, or set read-only. */
export class ReadOnlyDatabase extends Error {}

/** Whether the database answers, for readiness. */
export interface DatabaseProbe {
  ping(): Promise<void>;
  close(): Promise<void>;
}

/**
 * SQLite answers at once or fails; whether it takes writes only a write
 * tells (a full or read-only disk answers reads), so the writes of the app
 * say it (`refusingWrites`).
 */
class SqliteProbe implements DatabaseProbe {
  constructor(
    private readonly dataSource: DataSource,
    private readonly refusingWrites: () => boolean,
  ) {}

  async ping(): Promise<void> {
    await this.dataSource.query('SELECT 1');
    if (this.refusingWrites())
      throw new ReadOnlyDatabase('The database takes no writes (full, read-only or failing disk)');
  }

  async close(): Promise<void> {}
}

/**
 * On PostgreSQL, whether a session answers and may write (a node on a
 * read-only server would answer every send with INTERNAL), on a connection
 * of its own beside the app's pool: taken from the pool, a probe would wait
 * behind slow reads, and a busy pool would take every node out of service at
 * once. The connection is closed when its query goes unanswered (kept, it
 * would fail every later probe until TCP gave up, minutes, even where new
 * connections work again) and opened again by the next probe.
 */
class PostgresProbe implements DatabaseProbe {
  private client?: Client;
  private closed = false;

  constructor(
    private readonly pool: Pool,
    private readonly timeoutMs: number,
  ) {}

  async ping(): Promise<void> {
    if (this.closed) throw new Error('The probe is closed');
    let readOnly: boolean | undefined;
    try {
      readOnly = await withinTime(this.readOnly(), this.timeoutMs, noAnswer);
    } catch (error) {
      void this.drop();
      throw error;
    }
    if (readOnly) throw new ReadOnlyDatabase('The database takes no writes (read-only)');
  }

  /** For good: a probe that comes later opens no connection. */
  async close(): Promise<void> {
    this.closed = true;
    await this.drop();
  }

  /**
   * pg ends a connection whose query or opening hangs at once, but waits
   * for the server's goodbye on an idle one: a server that stopped answering
   * would hold a shutdown until TCP gave up, so the socket is cut after a
   * second (as pg itself cuts a dead one).
   */
  private async drop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    const ended = client.end().catch(() => undefined);
    await withinTime(ended, GOODBYE_MS, noAnswer).catch(() =>
      (client as unknown as { connection: { stream: Socket } }).connection.stream.destroy(),
    );
  }

  private async readOnly(): Promise<boolean | undefined> {
    const client = this.client ?? (await this.open());
    const result = await client.query<{ readOnly: boolean }>(
      `SELECT current_setting('transaction_read_only') = 'on' AS "readOnly"`,
    );
    return result.rows[0]?.readOnly;
  }

  /** With the pool's own settings: the same server, user, schema and session options. */
  private async open(): Promise<Client> {
    const client = new Client(this.pool.options);
    this.client = client;
    const forget = () => {
      if (this.client === client) this.client = undefined;
    };
    // A server restart or a killed session: the next probe opens another.
    client.on('error', forget);
    client.on('end', forget);
    await client.connect();
    return client;
  }
}

/** `sqliteRefusingWrites`: whether SQLite refused the app's last writes (see `TransactionRunner`). */
export function databaseProbe(
  dataSource: DataSource,
  timeoutMs: number,
  sqliteRefusingWrites: () => boolean,
): DatabaseProbe {
  const driver = dataSource.driver;
  if (driver instanceof PostgresDriver) return new PostgresProbe(driver.master as Pool, timeoutMs);
  return new SqliteProbe(dataSource, sqliteRefusingWrites);
}
