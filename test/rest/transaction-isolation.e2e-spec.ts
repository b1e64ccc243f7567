import Sqlite, { type Database as SqliteDatabase } from 'better-sqlite3';
import { DataSource } from 'typeorm';
import type { BetterSqlite3Driver } from 'typeorm/driver/better-sqlite3/BetterSqlite3Driver';
import { TransactionRunner } from '@app/database/transaction-runner';
import { RoomsService } from '@app/rooms/rooms.service';
import { UsersService } from '@app/users/users.service';
import { createRoom, registerUser, uniqueUsername } from '../support/api';
import { databaseKinds } from '../support/databases';
import { startTestApp, type TestApp } from '../support/test-app';

class Rollback extends Error {}

/**
 * A write that commits alone must not become part of a transaction that
 * happens to be open at the time: on SQLite every statement shares one
 * connection, so it would be undone with that transaction.
 */
describe.each(databaseKinds())('writes outside a transaction (%s)', (kind) => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp(kind);
  });
  afterAll(() => t.close());

  /** Starts `write` while a transaction is open, then rolls that transaction back. */
  async function duringRolledBackTransaction<T>(write: () => Promise<T>): Promise<T> {
    let written: Promise<T> | undefined;
    const rolledBack = t.app.get(TransactionRunner).run(async (manager) => {
      await manager.query('SELECT 1');
      written = write();
      await new Promise((resolve) => setTimeout(resolve, 50));
      throw new Rollback();
    });
    await expect(rolledBack).rejects.toBeInstanceOf(Rollback);
    return written!;
  }

  it('a membership added while another transaction is open survives its rollback', async () => {
    const owner = await registerUser(t.url);
    const member = await registerUser(t.url);
    const room = await createRoom(t.url, owner, { isPrivate: true });
    const rooms = t.app.get(RoomsService);
    const added = await duringRolledBackTransaction(() => rooms.addMember(room.id, member.id));
    expect(added.added).toBe(true);
    const members = await rooms.listMembers(room.id, 10);
    expect(members.items.map((user) => user.id).sort()).toEqual([owner.id, member.id].sort());
  });

  it('a user created while another transaction is open survives its rollback', async () => {
    const users = t.app.get(UsersService);
    const user = await duringRolledBackTransaction(() =>
      users.create({ username: uniqueUsername(), passwordHash: 'x' }),
    );
    expect(await users.findActiveById(user.id)).toMatchObject({ id: user.id });
  });
});

/**
 * SQLite undoes a transaction by itself when its disk fails (full, I/O
 * error); the ORM's own ROLLBACK then fails. What follows must still commit.
 */
describe('a SQLite transaction that SQLite itself rolled back', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp('sqlite');
  });
  afterAll(() => t.close());

  it('leaves no transaction open, so later writes still commit', async () => {
    const runner = t.app.get(TransactionRunner);
    const undoneBySqlite = runner.run(async (manager) => {
      await manager.query('ROLLBACK');
      throw new Rollback();
    });
    await expect(undoneBySqlite).rejects.toBeInstanceOf(Rollback);
    const refused = runner.run(async (manager) => {
      await manager.query('SELECT 1');
      throw new Rollback();
    });
    await expect(refused).rejects.toBeInstanceOf(Rollback);
    const user = await t.app
      .get(UsersService)
      .create({ username: uniqueUsername(), passwordHash: 'x' });

    const dataSource = t.app.get(DataSource);
    const db = (dataSource.driver as BetterSqlite3Driver).databaseConnection as SqliteDatabase;
    expect(db.inTransaction).toBe(false);
    expect(dataSource.driver.createQueryRunner('master')).toMatchObject({
      isTransactionActive: false,
      transactionDepth: 0,
    });
    // Committed: another connection to the file sees it.
    const other = new Sqlite(t.database.env.SQLITE_PATH, { readonly: true });
    try {
      expect(other.prepare('SELECT id FROM users WHERE id = ?').get(user.id)).toEqual({
        id: user.id,
      });
    } finally {
      other.close();
    }
  });
});
