import type { Client } from 'pg';

/**
 * How many sessions wait for a row lock that `holder`'s session holds. Only
 * waits for rows count: an index built CONCURRENTLY by another test, in
 * another schema of the database, waits for every open transaction (a
 * virtualxid lock), this one included. pg_locks, not pg_stat_activity,
 * which a transaction sees as of its first read.
 */
export async function rowLockWaiters(holder: Client): Promise<number> {
  const { rows } = await holder.query<{ waiting: number }>(
    `SELECT count(DISTINCT pid)::int AS waiting FROM pg_locks
     WHERE NOT granted AND locktype IN ('transactionid', 'tuple')
       AND pg_backend_pid() = ANY(pg_blocking_pids(pid))`,
  );
  return rows[0].waiting;
}
