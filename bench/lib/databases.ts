import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { createClient } from 'redis';

/** A store the service runs on for one server start, and how to get rid of it. */
export interface Storage {
  label: string;
  env: NodeJS.ProcessEnv;
  drop(): Promise<void>;
}

export function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
}

async function withPostgres<T>(url: string, work: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

export function sqliteStorage(): Storage {
  const dir = mkdtempSync(join(tmpdir(), 'rt-bench-'));
  return {
    label: 'SQLite',
    env: { SQLITE_PATH: join(dir, 'app.sqlite') },
    drop: () => Promise.resolve(rmSync(dir, { recursive: true, force: true })),
  };
}

export async function postgresStorage(url: string): Promise<Storage> {
  const schema = uniqueName('bench');
  await withPostgres(url, (client) => client.query(`CREATE SCHEMA "${schema}"`));
  return {
    label: 'PostgreSQL',
    env: { DATABASE_URL: url, DATABASE_SCHEMA: schema },
    drop: async () => {
      await withPostgres(url, (client) =>
        client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`),
      );
    },
  };
}

/** A key prefix of its own on a shared Redis; dropping deletes every key under it. */
export function redisNamespace(url: string): Storage {
  const prefix = `${uniqueName('bench')}:`;
  return {
    label: 'Redis',
    env: { REDIS_URL: url, REDIS_KEY_PREFIX: prefix },
    drop: async () => {
      const client = createClient({ url });
      await client.connect();
      try {
        for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 }))
          if (keys.length > 0) await client.del(keys);
      } finally {
        client.destroy();
      }
    },
  };
}

export async function postgresReachable(url: string): Promise<string | undefined> {
  try {
    await withPostgres(url, (client) => client.query('SELECT 1'));
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

export async function redisReachable(url: string): Promise<string | undefined> {
  const client = createClient({ url, socket: { connectTimeout: 3_000, reconnectStrategy: false } });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.ping();
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  } finally {
    if (client.isOpen) client.destroy();
  }
}
