import { Client } from 'pg';
import { createClient } from 'redis';
import { runsUnderCi } from './ci';

/**
 * Under CI (see runsUnderCi) the PostgreSQL suites must run: a missing or unreachable
 * DATABASE_URL fails the whole run instead of silently skipping them.
 */
async function assertRedisReachable(url: string): Promise<void> {
  const client = createClient({ url, socket: { connectTimeout: 5_000, reconnectStrategy: false } });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.ping();
  } catch (error) {
    throw new Error(`Redis at REDIS_URL is unreachable: ${(error as Error).message}`);
  } finally {
    await client.close().catch(() => undefined);
  }
}

export default async function globalSetup(): Promise<void> {
  if (runsUnderCi() && !process.env.REDIS_URL) {
    throw new Error('CI requires REDIS_URL: the Redis and multi-node suites must run');
  }
  if (process.env.REDIS_URL) await assertRedisReachable(process.env.REDIS_URL);
  const url = process.env.DATABASE_URL;
  if (!url) {
    if (runsUnderCi()) throw new Error('CI requires DATABASE_URL (PostgreSQL)');
    console.warn('\nDATABASE_URL is not set: PostgreSQL suites are skipped, SQLite suites run.\n');
    return;
  }
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (error) {
    throw new Error(`PostgreSQL at DATABASE_URL is unreachable: ${(error as Error).message}`);
  } finally {
    await client.end().catch(() => undefined);
  }
}
