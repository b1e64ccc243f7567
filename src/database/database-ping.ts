import type { Pool } from 'pg';
import type { DataSource } from 'typeorm';
import { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver';
import { withinTime } from '@app/common/time-limit';

const noAnswer = () => new Error('No answer in time');

/** The database answers but takes no writes: a standby after a failover, or set read-only. */
export class ReadOnlyDatabase extends Error {}

/**
 * SELECT 1, for readiness; on PostgreSQL, whether the session may write too,
 * since a node on a read-only server would answer every send with INTERNAL.
 * On PostgreSQL on a pooled connection of its own,
 * closed rather than returned when its query goes unanswered: kept, it would
 * be handed to later probes until TCP gave up (minutes), and readiness would
 * fail all that time even where new connections work again. SQLite answers
 * at once or fails.
 */
export async function pingDatabase(dataSource: DataSource, timeoutMs: number): Promise<void> {
  const driver = dataSource.driver;
  if (driver instanceof PostgresDriver) return pingPostgres(driver.master as Pool, timeoutMs);
  await dataSource.query('SELECT 1');
}

async function pingPostgres(pool: Pool, timeoutMs: number): Promise<void> {
  const connecting = pool.connect();
  let gaveUp = false;
  let queried = false;
  const answered = connecting.then((client) => {
    if (gaveUp) return undefined;
    queried = true;
    return client.query<{ readOnly: boolean }>(
      `SELECT current_setting('transaction_read_only') = 'on' AS "readOnly"`,
    );
  });
  let readOnly: boolean | undefined;
  try {
    readOnly = (await withinTime(answered, timeoutMs, noAnswer))?.rows[0]?.readOnly;
  } catch (error) {
    gaveUp = true;
    answered.catch(() => undefined);
    // pg-pool closes a client released with an error: only one whose query went
    // unanswered. One that came late from a busy pool goes back as it is.
    connecting.then(
      (client) => client.release(queried ? (error as Error) : undefined),
      () => undefined,
    );
    throw error;
  }
  (await connecting).release();
  if (readOnly) throw new ReadOnlyDatabase('The database takes no writes');
}
