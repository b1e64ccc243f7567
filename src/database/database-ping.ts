import type { Pool } from 'pg';
import type { DataSource } from 'typeorm';
import { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver';
import { withinTime } from '@app/common/time-limit';

const noAnswer = () => new Error('No answer in time');

/**
 * SELECT 1, for readiness. On PostgreSQL on a pooled connection of its own,
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
    if (gaveUp) return;
    queried = true;
    return client.query('SELECT 1');
  });
  try {
    await withinTime(answered, timeoutMs, noAnswer);
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
}
