import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import type { RawEnvironment } from '@app/config/env.validation';

/** A fresh, empty database for one suite: its own SQLite file or PostgreSQL schema. */
export interface TestDatabase {
  kind: 'sqlite' | 'postgres';
  env: RawEnvironment;
  drop(): Promise<void>;
}

export type DatabaseKind = TestDatabase['kind'];

export function databaseKinds(): DatabaseKind[] {
  return process.env.DATABASE_URL ? ['sqlite', 'postgres'] : ['sqlite'];
}

function uniqueName(): string {
  return `t_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
}

/** A short-lived connection to the PostgreSQL of DATABASE_URL, for test set-up. */
export async function withPostgres<T>(work: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: process.env.DATABASE_URL });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

export async function createTestDatabase(kind: DatabaseKind): Promise<TestDatabase> {
  if (kind === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'rt-test-'));
    return {
      kind,
      env: { SQLITE_PATH: join(dir, 'app.sqlite') },
      drop: () => Promise.resolve(rmSync(dir, { recursive: true, force: true })),
    };
  }
  const schema = uniqueName();
  await withPostgres((client) => client.query(`CREATE SCHEMA "${schema}"`));
  return {
    kind,
    env: { DATABASE_URL: process.env.DATABASE_URL, DATABASE_SCHEMA: schema },
    drop: () =>
      withPostgres((client) => client.query(`DROP SCHEMA "${schema}" CASCADE`)).then(
        () => undefined,
      ),
  };
}
