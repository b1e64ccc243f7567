import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DataSource } from 'typeorm';
import { MIGRATIONS } from '../../migrations';
import type { Client } from 'pg';
import { createApp } from '@app/app.factory';
import {
  MIGRATION_TRY_LOCK,
  migrationLockKeys,
  runMigrations,
} from '@app/database/prepare-database';
import { typeormOptions } from '@app/database/typeorm-options';
import {
  createTestDatabase,
  databaseKinds,
  withPostgres,
  type TestDatabase,
} from '../support/databases';
import { REPO_ROOT } from '../support/service-process';
import { eventually } from '../support/sockets';
import { BASE_TEST_ENV, startTestApp } from '../support/test-app';

const run = promisify(execFile);
const MIGRATE = join(REPO_ROOT, 'dist', 'src', 'database', 'migrate.js');

async function inDatabase<T>(
  database: TestDatabase,
  work: (dataSource: DataSource) => Promise<T>,
): Promise<T> {
  const dataSource = new DataSource(
    database.kind === 'sqlite'
      ? { type: 'better-sqlite3', database: database.env.SQLITE_PATH! }
      : { type: 'postgres', url: database.env.DATABASE_URL },
  );
  await dataSource.initialize();
  try {
    return await work(dataSource);
  } finally {
    await dataSource.destroy();
  }
}

function tables(database: TestDatabase): Promise<string[]> {
  return inDatabase(database, async (dataSource) => {
    const rows: Array<{ name: string }> =
      database.kind === 'sqlite'
        ? await dataSource.query(
            `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`,
          )
        : await dataSource.query(
            `SELECT table_name AS name FROM information_schema.tables WHERE table_schema = $1`,
            [database.env.DATABASE_SCHEMA],
          );
    return rows.map((row) => row.name).sort();
  });
}

/** The definition of an index, as the database reports it. */
function indexDefinition(database: TestDatabase, name: string): Promise<string> {
  return inDatabase(database, async (dataSource) => {
    const rows: Array<{ definition: string }> =
      database.kind === 'sqlite'
        ? await dataSource.query(`SELECT sql AS definition FROM sqlite_master WHERE name = ?`, [
            name,
          ])
        : await dataSource.query(
            `SELECT indexdef AS definition FROM pg_indexes WHERE schemaname = $1 AND indexname = $2`,
            [database.env.DATABASE_SCHEMA, name],
          );
    return rows[0]?.definition ?? '';
  });
}

const CLIENT_MSG_INDEX = 'UQ_messages_room_user_client_msg';

/** Reverts, newest first, the migrations applied after `name`, and `name` too when `including`. */
async function revertBackTo(
  migrate: (command: string) => Promise<unknown>,
  name: string,
  { including = false } = {},
): Promise<void> {
  const position = MIGRATIONS.findIndex((Migration) => Migration.name === name);
  if (position < 0) throw new Error(`No migration ${name}`);
  const newer = MIGRATIONS.length - position - 1;
  for (let step = 0; step < newer + (including ? 1 : 0); step += 1) await migrate('revert');
}

describe('the list of migrations', () => {
  const timestampOf = (name: string) => Number(/(\d{13})$/.exec(name)?.[1]);

  // TypeORM records and orders a migration by the `name` of its instance.
  const names = MIGRATIONS.map((Migration) => new Migration().name ?? '');

  it('holds every migration file of migrations/, each named by its file and class', () => {
    const files = readdirSync(join(REPO_ROOT, 'migrations'))
      .filter((file) => /^\d{13}-\w+\.ts$/.test(file))
      .map((file) => file.replace(/^(\d{13})-(\w+)\.ts$/, '$2$1'));
    expect([...names].sort()).toEqual(files.sort());
    expect(names).toEqual(MIGRATIONS.map((Migration) => Migration.name));
  });

  // TypeORM runs pending migrations by the timestamp in their names: one
  // dated before a migration already applied would run last on existing
  // databases and earlier on fresh ones, which then end up different.
  it('is in the order of their timestamps', () => {
    const timestamps = names.map(timestampOf);
    expect(timestamps.every((timestamp) => Number.isInteger(timestamp))).toBe(true);
    expect(timestamps).toEqual([...new Set(timestamps)].sort((a, b) => a - b));
  });
});

describe.each(databaseKinds())('migration scripts (%s)', (kind) => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase(kind);
  });
  afterAll(() => database.drop());

  const migrate = (command: string) =>
    run(process.execPath, [MIGRATE, command], {
      env: { PATH: process.env.PATH, ...database.env },
      cwd: REPO_ROOT,
    });

  it('applies, reverts and re-applies the same migrations', async () => {
    const applied =
      'Applied: InitialSchema1764028800000, PartialClientMsgIdIndex1796193060000, ' +
      'OwnerAndMembershipIndexes1796900000000, MembersByJoinTime1797000000000';
    // Nothing applied yet: nothing to revert, and no failure.
    expect((await migrate('revert')).stdout).toContain('Nothing to revert');
    expect(await tables(database)).toEqual([]);
    expect((await migrate('run')).stdout).toContain(applied);
    expect(await tables(database)).toEqual([
      'messages',
      'migrations',
      'room_members',
      'rooms',
      'users',
    ]);
    expect(await indexDefinition(database, CLIENT_MSG_INDEX)).toMatch(
      /WHERE \(?"?client_msg_id"? IS NOT NULL\)?$/,
    );
    expect(await indexDefinition(database, 'IDX_rooms_owner')).toMatch(/\(\s*"?owner_id"?\s*\)/);
    expect(await indexDefinition(database, 'IDX_room_members_user_room')).toMatch(
      /\(\s*"?user_id"?\s*,\s*"?room_id"?\s*\)/,
    );
    expect(await indexDefinition(database, 'IDX_room_members_user')).toBe('');
    expect(await indexDefinition(database, 'IDX_room_members_room_joined')).toMatch(
      /\(\s*"?room_id"?\s*,\s*"?joined_at"?\s*,\s*"?user_id"?\s*\)/,
    );

    expect((await migrate('run')).stdout).toContain('No pending migrations');

    expect((await migrate('revert')).stdout).toContain('Reverted: MembersByJoinTime1797000000000');
    expect(await indexDefinition(database, 'IDX_room_members_room_joined')).toBe('');
    expect((await migrate('revert')).stdout).toContain(
      'Reverted: OwnerAndMembershipIndexes1796900000000',
    );
    expect(await indexDefinition(database, 'IDX_rooms_owner')).toBe('');
    expect(await indexDefinition(database, 'IDX_room_members_user_room')).toBe('');
    expect(await indexDefinition(database, 'IDX_room_members_user')).toMatch(
      /\(\s*"?user_id"?\s*\)/,
    );
    await migrate('revert');
    expect(await indexDefinition(database, CLIENT_MSG_INDEX)).not.toContain('WHERE');
    await migrate('revert');
    expect(await tables(database)).toEqual(['migrations']);

    expect((await migrate('run')).stdout).toContain(applied);
  });

  it('refuses an unknown command', async () => {
    await expect(migrate('sideways')).rejects.toMatchObject({ code: 1 });
  });

  it('refuses to revert a migration this version does not know, naming it', async () => {
    await migrate('run');
    await inDatabase(database, (dataSource) =>
      dataSource.query(
        `INSERT INTO ${kind === 'postgres' ? `"${database.env.DATABASE_SCHEMA}".` : ''}migrations (timestamp, name) VALUES (1900000000000, 'FromANewerVersion1900000000000')`,
      ),
    );
    await expect(migrate('revert')).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringContaining('FromANewerVersion1900000000000'),
    });
    expect(await tables(database)).toContain('rooms');
  });
});

/** A data source of the service's own, with its entities, on the test database. */
function serviceDataSource(database: TestDatabase): DataSource {
  return new DataSource(
    typeormOptions(
      database.kind === 'sqlite'
        ? {
            type: 'better-sqlite3',
            path: database.env.SQLITE_PATH!,
            synchronous: 'full',
            migrationsRun: false,
          }
        : {
            type: 'postgres',
            url: database.env.DATABASE_URL!,
            schema: database.env.DATABASE_SCHEMA,
            poolSize: 2,
            queryTimeoutMs: 30_000,
            migrationsRun: false,
          },
    ),
  );
}

/**
 * The entities as the ORM reads them, and the tables as the migrations left
 * them, in the same terms: columns with whether they take null, and indexes
 * with their columns, uniqueness and condition. (TypeORM reads a PostgreSQL
 * index's columns back in no set order: their order is checked above, by
 * each index's definition.)
 */
async function schemaOf(dataSource: DataSource, fromDatabase: boolean) {
  const runner = dataSource.createQueryRunner();
  try {
    const described: Record<string, unknown> = {};
    for (const entity of dataSource.entityMetadatas) {
      const table = fromDatabase ? await runner.getTable(entity.tablePath) : undefined;
      const columns = table
        ? table.columns.map((column) => [column.name, column.isNullable])
        : entity.columns.map((column) => [column.databaseName, column.isNullable]);
      const indexes = table
        ? table.indices.map((index) => describeIndex(index.name, index.columnNames, index))
        : entity.indices.map((index) =>
            describeIndex(
              index.name,
              index.columns.map((column) => column.databaseName),
              index,
            ),
          );
      described[entity.tableName] = {
        columns: columns.sort(),
        indexes: indexes.sort((a, b) => String(a.name).localeCompare(String(b.name))),
      };
    }
    return described;
  } finally {
    await runner.release();
  }
}

function describeIndex(
  name: string | undefined,
  columns: string[],
  { isUnique, where }: { isUnique?: boolean; where?: string },
) {
  return { name, columns: [...columns].sort(), unique: !!isUnique, where: condition(where) };
}

/** A partial index's condition, as either database spells it back. */
const condition = (where: string | undefined) =>
  where ? where.replace(/[()"]/g, '').trim().toLowerCase() : undefined;

describe.each(databaseKinds())('the migrated schema (%s)', (kind) => {
  it('has the columns, their nullability and the indexes the entities describe, nothing more', async () => {
    const database = await createTestDatabase(kind);
    const dataSource = serviceDataSource(database);
    await dataSource.initialize();
    try {
      await runMigrations(dataSource);
      const described = await schemaOf(dataSource, false);
      const migrated = await schemaOf(dataSource, true);

      expect(migrated).toEqual(described);
    } finally {
      await dataSource.destroy();
      await database.drop();
    }
  });
});

describe('the migration script’s errors', () => {
  const migrateWith = (env: NodeJS.ProcessEnv) =>
    run(process.execPath, [MIGRATE, 'run'], {
      env: { PATH: process.env.PATH, ...env },
      cwd: REPO_ROOT,
      timeout: 30_000,
    });

  it('names SQLITE_PATH when its directory cannot be made', async () => {
    await expect(
      migrateWith({ SQLITE_PATH: join(REPO_ROOT, 'package.json', 'data', 'app.sqlite') }),
    ).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringContaining('Cannot create the directory of SQLITE_PATH'),
    });
  });

  (process.env.DATABASE_URL ? it : it.skip)(
    'says so when no schema of the search_path exists, rather than wait for good',
    async () => {
      const url = new URL(process.env.DATABASE_URL!);
      url.searchParams.set('options', `-c search_path=absent_${randomBytes(4).toString('hex')}`);

      await expect(migrateWith({ DATABASE_URL: url.toString() })).rejects.toMatchObject({
        code: 1,
        stderr: expect.stringContaining('No schema to migrate'),
      });
    },
  );

  it('names DATABASE_URL when the database does not answer, without the URL', async () => {
    const refused = await migrateWith({
      DATABASE_URL: 'postgres://someone:secret@127.0.0.1:1/nowhere',
    }).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    expect(refused?.code).toBe(1);
    expect(refused?.stderr).toContain('Cannot open the database at DATABASE_URL');
    expect(refused?.stderr).not.toContain('secret');
  });
});

const describePostgres = process.env.DATABASE_URL ? describe : describe.skip;

/** Schemas that the test creates by migrating, dropped afterwards with any role made for them. */
describePostgres('migrating a PostgreSQL schema that does not exist yet', () => {
  const suffix = `${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  const schema = (name: string) => `t_${name}_${suffix}`;
  const role = `t_app_${suffix}`;

  afterAll(() =>
    withPostgres(async (client) => {
      await client.query(`DROP SCHEMA IF EXISTS "${schema('race')}" CASCADE`);
      await client.query(`DROP SCHEMA IF EXISTS "${schema('owned')}" CASCADE`);
      await client.query(`DROP ROLE IF EXISTS "${role}"`);
    }),
  );

  const dataSource = (url: string, name: string) =>
    new DataSource(
      typeormOptions({
        type: 'postgres',
        url,
        schema: name,
        poolSize: 2,
        queryTimeoutMs: 30_000,
        migrationsRun: false,
      }),
    );

  it('lets several nodes starting at once create and migrate it: one applies, none fails', async () => {
    const nodes = Array.from({ length: 6 }, () =>
      dataSource(process.env.DATABASE_URL!, schema('race')),
    );
    await Promise.all(nodes.map((node) => node.initialize()));
    try {
      const applied = await Promise.all(nodes.map((node) => runMigrations(node)));

      expect(applied.map((migrations) => migrations.length).sort()).toEqual([
        0,
        0,
        0,
        0,
        0,
        MIGRATIONS.length,
      ]);
    } finally {
      await Promise.all(nodes.map((node) => node.destroy()));
    }
  });

  it('migrates the schema a database administrator gave to a role that may not create schemas', async () => {
    await withPostgres(async (client) => {
      await client.query(`CREATE ROLE "${role}" LOGIN`);
      await client.query(`CREATE SCHEMA "${schema('owned')}" AUTHORIZATION "${role}"`);
    });
    const url = new URL(process.env.DATABASE_URL!);
    url.username = role;
    const node = dataSource(url.toString(), schema('owned'));
    await node.initialize();
    try {
      expect(await runMigrations(node)).toHaveLength(MIGRATIONS.length);
    } finally {
      await node.destroy();
    }
  });

  it('says that it waits for another node’s migrations, and migrates once they are done', async () => {
    const database = await createTestDatabase('postgres');
    let migrating: ChildProcess | undefined;
    try {
      await withPostgres(async (otherNode) => {
        const keys = migrationLockKeys(database.env.DATABASE_SCHEMA);
        const lockTaken = async () =>
          (await otherNode.query<{ locked: boolean }>(MIGRATION_TRY_LOCK, keys)).rows[0].locked;
        expect(await lockTaken()).toBe(true);
        const child = spawn(process.execPath, [MIGRATE, 'run'], {
          env: { PATH: process.env.PATH, ...database.env },
          cwd: REPO_ROOT,
        });
        migrating = child;
        let output = '';
        child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
        const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
        try {
          await eventually(() => output.includes('Waiting for another node'), 20_000);
          expect(output).not.toContain('Applied');
        } finally {
          await otherNode.query('SELECT pg_advisory_unlock_all()');
        }
        expect(await exited).toBe(0);
        expect(output).toContain('Applied: InitialSchema');
      });
    } finally {
      if (migrating?.exitCode === null) migrating.kill('SIGKILL');
      await database.drop();
    }
  });

  it('does not wait for migrations of another schema of the same database', async () => {
    const [mine, theirs] = await Promise.all([
      createTestDatabase('postgres'),
      createTestDatabase('postgres'),
    ]);
    try {
      await withPostgres(async (otherDeployment) => {
        const locked = await otherDeployment.query<{ locked: boolean }>(
          MIGRATION_TRY_LOCK,
          migrationLockKeys(theirs.env.DATABASE_SCHEMA),
        );
        expect(locked.rows[0].locked).toBe(true);
        const { stdout } = await run(process.execPath, [MIGRATE, 'run'], {
          env: { PATH: process.env.PATH, ...mine.env },
          cwd: REPO_ROOT,
          timeout: 30_000,
        });
        expect(stdout).toContain('Applied: InitialSchema');
      });
    } finally {
      await Promise.all([mine.drop(), theirs.drop()]);
    }
  });

  it('completes a clientMsgId index rebuild that was interrupted after the old index went', async () => {
    const database = await createTestDatabase('postgres');
    const migrate = (command: string) =>
      run(process.execPath, [MIGRATE, command], {
        env: { PATH: process.env.PATH, ...database.env },
        cwd: REPO_ROOT,
      });
    const indexOid = (name: string) =>
      withPostgres(async (client) => {
        await client.query(`SET search_path TO "${database.env.DATABASE_SCHEMA}"`);
        const result = await client.query<{ oid: string }>('SELECT $1::regclass::oid AS oid', [
          `"${name}"`,
        ]);
        return result.rows[0].oid;
      });
    try {
      await migrate('run');
      // Back to before the clientMsgId index became partial.
      await revertBackTo(migrate, 'PartialClientMsgIdIndex1796193060000', { including: true });
      await withPostgres(async (client) => {
        await client.query(`SET search_path TO "${database.env.DATABASE_SCHEMA}"`);
        await client.query(
          `CREATE UNIQUE INDEX "${CLIENT_MSG_INDEX}_next" ON messages (room_id, user_id, client_msg_id) WHERE client_msg_id IS NOT NULL`,
        );
        await client.query(`DROP INDEX "${CLIENT_MSG_INDEX}"`);
      });
      const built = await indexOid(`${CLIENT_MSG_INDEX}_next`);

      expect((await migrate('run')).stdout).toContain(
        'Applied: PartialClientMsgIdIndex1796193060000',
      );

      // The finished build was kept and renamed, not dropped and built again.
      expect(await indexOid(CLIENT_MSG_INDEX)).toBe(built);

      expect(await indexDefinition(database, CLIENT_MSG_INDEX)).toMatch(
        /WHERE \(client_msg_id IS NOT NULL\)/,
      );
      expect(await indexDefinition(database, `${CLIENT_MSG_INDEX}_next`)).toBe('');
    } finally {
      await database.drop();
    }
  });

  it.each([
    ['run', 'Applied: PartialClientMsgIdIndex1796193060000', /WHERE \(client_msg_id IS NOT NULL\)/],
    ['revert', 'Reverted: PartialClientMsgIdIndex1796193060000', /^(?!.*WHERE).*client_msg_id/],
  ])(
    'rebuilds the clientMsgId index (%s) while other nodes go on reading and writing messages',
    async (command, said, definition) => {
      const database = await createTestDatabase('postgres');
      const appName = `migrate_${suffix}`;
      const migrate = (step: string) =>
        run(process.execPath, [MIGRATE, step], {
          env: { PATH: process.env.PATH, PGAPPNAME: appName, ...database.env },
          cwd: REPO_ROOT,
        });
      try {
        await migrate('run');
        await revertBackTo(migrate, 'PartialClientMsgIdIndex1796193060000', {
          including: command === 'run',
        });
        await withPostgres(async (reader) => {
          // A node's transaction that has read messages and is still open.
          await reader.query(`SET search_path TO "${database.env.DATABASE_SCHEMA}"`);
          await reader.query('BEGIN');
          await reader.query('SELECT count(*) FROM messages');
          const rebuild = migrate(command);
          await waitUntilWaiting(appName);

          await withPostgres(async (other) => {
            await other.query(`SET search_path TO "${database.env.DATABASE_SCHEMA}"`);
            await other.query(`SET lock_timeout = '2s'`);
            await expect(other.query('SELECT count(*) FROM messages')).resolves.toBeDefined();
            await expect(other.query(`UPDATE messages SET text = text`)).resolves.toBeDefined();
          });
          await reader.query('COMMIT');
          expect((await rebuild).stdout).toContain(said);
        });
        expect(await indexDefinition(database, CLIENT_MSG_INDEX)).toMatch(definition);
      } finally {
        await database.drop();
      }
    },
  );
});

describePostgres('the owner and membership indexes on PostgreSQL', () => {
  const LATEST = 'Applied: OwnerAndMembershipIndexes1796900000000, MembersByJoinTime1797000000000';
  let database: TestDatabase;
  const appName = `migrate_idx_${Date.now().toString(36)}`;
  const migrate = (step: string) =>
    run(process.execPath, [MIGRATE, step], {
      env: { PATH: process.env.PATH, PGAPPNAME: appName, ...database.env },
      cwd: REPO_ROOT,
    });
  const inSchema = <T>(work: (client: Client) => Promise<T>) =>
    withPostgres(async (client) => {
      await client.query(`SET search_path TO "${database.env.DATABASE_SCHEMA}"`);
      return work(client);
    });

  beforeEach(async () => {
    database = await createTestDatabase('postgres');
    await migrate('run');
    await revertBackTo(migrate, 'OwnerAndMembershipIndexes1796900000000', { including: true });
  });
  afterEach(() => database.drop());

  it('builds them while other nodes go on writing rooms and memberships', async () => {
    await inSchema(async (reader) => {
      // A node's transaction that has read memberships and is still open: dropping the old
      // index waits for it, and no write must wait behind that.
      await reader.query('BEGIN');
      await reader.query('SELECT count(*) FROM room_members');
      const building = migrate('run');
      await waitUntilWaiting(appName);

      await inSchema(async (other) => {
        await other.query(`SET lock_timeout = '2s'`);
        await expect(other.query('UPDATE rooms SET last_seq = last_seq')).resolves.toBeDefined();
        await expect(other.query('DELETE FROM room_members')).resolves.toBeDefined();
      });
      await reader.query('COMMIT');
      expect((await building).stdout).toContain(LATEST);
    });
    expect(await indexDefinition(database, 'IDX_rooms_owner')).toContain('(owner_id)');
    expect(await indexDefinition(database, 'IDX_room_members_room_joined')).toContain(
      '(room_id, joined_at, user_id)',
    );
  });

  /**
   * The test database's URL with time limits of its own, in `options` or as
   * parameters pg reads itself, and `appName` for its sessions.
   */
  const withTimeLimits = (ms: number, form: 'options' | 'parameters') => {
    const url = new URL(database.env.DATABASE_URL!);
    if (form === 'options')
      url.searchParams.set('options', `-c statement_timeout=${ms} -c lock_timeout=${ms}`);
    else
      for (const limit of ['statement_timeout', 'lock_timeout', 'query_timeout'])
        url.searchParams.set(limit, String(ms));
    url.searchParams.set('application_name', appName);
    return url.toString();
  };

  /**
   * Opens a transaction that has read memberships, starts `migrating`, and
   * holds the transaction for `ms` once the index change waits for it,
   * expecting the same sessions to wait all along.
   */
  const whileReaderHolds = <T>(ms: number, migrating: () => Promise<T>): Promise<T> =>
    inSchema(async (reader) => {
      await reader.query('BEGIN');
      await reader.query('SELECT count(*) FROM room_members');
      const migrated = migrating();
      migrated.catch(() => undefined);
      try {
        const waiting = await waitUntilWaiting(appName);
        await new Promise((resolve) => setTimeout(resolve, ms));
        expect(await waitingSessions(appName)).toEqual(waiting);
      } finally {
        await reader.query('COMMIT');
      }
      return migrated;
    });

  /** The service's own limit on waiting for an answer, which migrations do not have either. */
  const QUERY_TIMEOUT = { DATABASE_QUERY_TIMEOUT_MS: '1000' };
  const HOLD_PAST_QUERY_TIMEOUT_MS = 1_500;

  it.each(['options', 'parameters'] as const)(
    'waits for its builds past the time limits that DATABASE_URL and the service set (in %s)',
    async (form) => {
      const { stdout } = await whileReaderHolds(HOLD_PAST_QUERY_TIMEOUT_MS, () =>
        run(process.execPath, [MIGRATE, 'run'], {
          env: {
            PATH: process.env.PATH,
            ...database.env,
            ...QUERY_TIMEOUT,
            DATABASE_URL: withTimeLimits(200, form),
          },
          cwd: REPO_ROOT,
        }),
      );

      expect(stdout).toContain(LATEST);
      expect(await indexDefinition(database, 'IDX_rooms_owner')).toContain('(owner_id)');
    },
  );

  it('migrates at start-up without the URL’s time limits, which the service’s sessions keep', async () => {
    const app = await whileReaderHolds(1_000, () =>
      createApp({
        ...BASE_TEST_ENV,
        ...database.env,
        DATABASE_URL: withTimeLimits(200, 'options'),
        MIGRATIONS_RUN: 'true',
      }),
    );
    try {
      const [setting] = await app
        .get(DataSource)
        .query<Array<{ statement_timeout: string }>>('SHOW statement_timeout');
      expect(setting.statement_timeout).toBe('200ms');
      expect(await indexDefinition(database, 'IDX_rooms_owner')).toContain('(owner_id)');
    } finally {
      await app.close();
    }
  });

  it('builds again an index that an interrupted run left unfinished', async () => {
    const invalidOid = await inSchema(async (client) => {
      await client.query('CREATE INDEX "IDX_rooms_owner" ON rooms (owner_id)');
      // What a CREATE INDEX CONCURRENTLY cut off halfway leaves.
      const result = await client.query<{ oid: string }>(
        `UPDATE pg_index SET indisvalid = false WHERE indexrelid = '"IDX_rooms_owner"'::regclass
         RETURNING indexrelid::oid AS oid`,
      );
      return result.rows[0].oid;
    });

    expect((await migrate('run')).stdout).toContain(LATEST);

    const rebuilt = await inSchema((client) =>
      client.query<{ oid: string; valid: boolean }>(
        `SELECT indexrelid::oid AS oid, indisvalid AS valid FROM pg_index
         WHERE indexrelid = '"IDX_rooms_owner"'::regclass`,
      ),
    );
    expect(rebuilt.rows[0].valid).toBe(true);
    expect(rebuilt.rows[0].oid).not.toBe(invalidOid);
  });
});

/** The sessions of the application that wait on a lock. */
function waitingSessions(applicationName: string): Promise<number[]> {
  return withPostgres(async (client) => {
    const result = await client.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`,
      [applicationName],
    );
    return result.rows.map((row) => row.pid);
  });
}

/** Resolves, with their process ids, once sessions of the application wait on a lock. */
async function waitUntilWaiting(applicationName: string): Promise<number[]> {
  for (let tries = 0; tries < 200; tries += 1) {
    const waiting = await waitingSessions(applicationName);
    if (waiting.length > 0) return waiting;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${applicationName} never waited on a lock`);
}

describe.each(databaseKinds())('readiness before migrations (%s)', (kind) => {
  it('is not ready while migrations are pending, and ready once someone applies them', async () => {
    const t = await startTestApp(kind, { MIGRATIONS_RUN: 'false' });
    try {
      const pending = await fetch(`${t.url}/health/ready`);
      expect(pending.status).toBe(503);
      expect(await pending.json()).toMatchObject({
        code: 'UNAVAILABLE',
        checks: { migrations: { status: 'down', message: expect.stringMatching(/pending/) } },
      });

      await runMigrations(t.app.get(DataSource));

      const ready = await fetch(`${t.url}/health/ready`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({ checks: { migrations: { status: 'up' } } });
    } finally {
      await t.close();
    }
  });
});
