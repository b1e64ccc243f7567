import { spawn } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import Database from 'better-sqlite3';
import request from 'supertest';
import { createApp } from '@app/app.factory';
import { createRoom, postMessage, registerUser } from '../support/api';
import { createTestDatabase, withPostgres } from '../support/databases';
import { eventually } from '../support/sockets';
import { runInNewContext } from 'node:vm';
import { DataSource, QueryFailedError } from 'typeorm';
import { TransactionRunner } from '@app/database/transaction-runner';
import { BASE_TEST_ENV, startTestApp } from '../support/test-app';

const describePostgres = process.env.DATABASE_URL ? describe : describe.skip;

/** A node left on a server that takes no writes (a standby after a failover) must not look ready. */
describePostgres('a PostgreSQL that takes no writes', () => {
  it('fails readiness with 503 saying why, and answers sends with UNAVAILABLE, which clients retry', async () => {
    const name = `ro_${Date.now().toString(36)}_${process.pid}`;
    await withPostgres((client) => client.query(`CREATE DATABASE "${name}"`));
    const url = new URL(process.env.DATABASE_URL!);
    url.pathname = `/${name}`;
    let app: Awaited<ReturnType<typeof createApp>> | undefined;
    try {
      app = await createApp({ ...BASE_TEST_ENV, DATABASE_URL: url.toString() });
      await app.listen(0, '127.0.0.1');
      const server = app.getHttpServer();
      await request(server).get('/health/ready').expect(200);
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const ada = await registerUser(base);
      const room = await createRoom(base, ada);

      await withPostgres(async (client) => {
        await client.query(`ALTER DATABASE "${name}" SET default_transaction_read_only = on`);
        // A session reads the default when it begins: the node's pool opens new ones.
        await client.query(
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
            WHERE datname = $1 AND usename = current_user AND backend_type = 'client backend'`,
          [name],
        );
      });

      await eventually(async () => {
        const readiness = await request(server).get('/health/ready');
        return (
          readiness.status === 503 &&
          readiness.body.checks?.database?.message === 'The database takes no writes (read-only)'
        );
      }, 10_000);
      const sent = await request(server)
        .post(`/api/rooms/${room.id}/messages`)
        .set('Authorization', `Bearer ${ada.token}`)
        .send({ text: 'during the failover' });
      expect(sent.status).toBe(503);
      expect(sent.body).toMatchObject({ code: 'UNAVAILABLE' });
    } finally {
      await app?.close().catch(() => undefined);
      await withPostgres((client) => client.query(`DROP DATABASE "${name}" WITH (FORCE)`));
    }
  });
});

/** A SQLite file that refuses writes (a full disk, here: the file may not grow) must not look ready. */
describe('a SQLite database that takes no writes', () => {
  it('fails readiness saying why once a write was refused, and is ready again once one succeeds', async () => {
    const t = await startTestApp('sqlite');
    try {
      const ada = await registerUser(t.url);
      const room = await createRoom(t.url, ada);
      const kept = await request(t.url)
        .post(`/api/rooms/${room.id}/messages`)
        .set('Authorization', `Bearer ${ada.token}`)
        .send({ text: 'stored before', clientMsgId: 'kept' })
        .expect(201);
      await request(t.url).get('/health/ready').expect(200);
      const sqlite = t.app.get(DataSource);
      const [{ page_count: pages }] =
        await sqlite.query<Array<{ page_count: number }>>('PRAGMA page_count');
      // SQLite's own "database or disk is full" once the file would grow.
      await sqlite.query(`PRAGMA max_page_count = ${pages}`);

      const send = () =>
        request(t.url)
          .post(`/api/rooms/${room.id}/messages`)
          .set('Authorization', `Bearer ${ada.token}`)
          .send({ text: 'x'.repeat(2_000) });
      let refused: request.Response | undefined;
      for (let i = 0; i < 100 && !refused; i += 1) {
        const answer = await send();
        if (answer.status !== 201) refused = answer;
      }
      expect(refused?.status).toBe(503);
      expect(refused?.body).toMatchObject({ code: 'UNAVAILABLE' });
      const readiness = await request(t.url).get('/health/ready').expect(503);
      expect(readiness.body.checks.database).toEqual({
        status: 'down',
        message: 'The database takes no writes (full, read-only or failing disk)',
      });

      // A send answered from storage (a retry) writes nothing: it says nothing of the disk.
      const retried = await request(t.url)
        .post(`/api/rooms/${room.id}/messages`)
        .set('Authorization', `Bearer ${ada.token}`)
        .send({ text: 'stored before', clientMsgId: 'kept' })
        .expect(201);
      expect(retried.body.id).toBe(kept.body.id);
      await request(t.url).get('/health/ready').expect(503);

      await sqlite.query('PRAGMA max_page_count = 1073741823');
      await postMessage(t.url, ada, room.id, 'room again');
      await request(t.url).get('/health/ready').expect(200);
    } finally {
      await t.close();
    }
  });

  it('refuses writes at once with UNAVAILABLE, rather than freeze the service, while another process holds the file', async () => {
    const t = await startTestApp('sqlite');
    const other = new Database(t.database.env.SQLITE_PATH);
    try {
      const ada = await registerUser(t.url);
      const room = await createRoom(t.url, ada);
      other.prepare('BEGIN IMMEDIATE').run();
      const startedAt = Date.now();
      const refused = await request(t.url)
        .post(`/api/rooms/${room.id}/messages`)
        .set('Authorization', `Bearer ${ada.token}`)
        .send({ text: 'while locked' });
      // better-sqlite3 waits for a lock asleep on the event loop: before, for 10 s.
      expect(Date.now() - startedAt).toBeLessThan(5_000);
      expect(refused.status).toBe(503);
      expect(refused.body).toMatchObject({ code: 'UNAVAILABLE' });
      for (const write of [
        () =>
          request(t.url)
            .post('/api/auth/register')
            .send({ username: 'locked_out', password: 'password-123' }),
        () =>
          request(t.url)
            .post('/api/rooms')
            .set('Authorization', `Bearer ${ada.token}`)
            .send({ name: 'while locked' }),
      ]) {
        const writeStartedAt = Date.now();
        const answer = await write();
        expect(Date.now() - writeStartedAt).toBeLessThan(5_000);
        expect([answer.status, answer.body.code]).toEqual([503, 'UNAVAILABLE']);
      }

      other.prepare('ROLLBACK').run();
      expect((await postMessage(t.url, ada, room.id, 'once free')).seq).toBe(1);
    } finally {
      other.close();
      await t.close();
    }
  });

  it('migrates at start-up once another process lets go of the file, waiting for it', async () => {
    const database = await createTestDatabase('sqlite');
    const path = database.env.SQLITE_PATH!;
    // Another process (better-sqlite3 waits for a lock asleep on this one's event loop), for longer
    // than start-up's retries of an open that fails.
    const holder = spawn(process.execPath, [
      '-e',
      `const db = new (require('better-sqlite3'))(${JSON.stringify(path)});
       db.pragma('journal_mode = WAL');
       db.exec('CREATE TABLE IF NOT EXISTS held (x INTEGER)');
       db.exec('BEGIN IMMEDIATE');
       process.stdout.write('held\\n');
       setTimeout(() => { db.exec('ROLLBACK'); db.close(); }, 6000);`,
    ]);
    let app: Awaited<ReturnType<typeof createApp>> | undefined;
    try {
      await new Promise((resolve) => holder.stdout.once('data', resolve));
      app = await createApp({ ...BASE_TEST_ENV, ...database.env });
      await app.listen(0, '127.0.0.1');
      await request(app.getHttpServer()).get('/health/ready').expect(200);
    } finally {
      holder.kill();
      await app?.close().catch(() => undefined);
      await database.drop();
    }
  });

  it('keeps the code of a SQLite error made in another realm, as the native module may make them', async () => {
    const t = await startTestApp('sqlite');
    try {
      const foreign = runInNewContext('new Error("database or disk is full")') as Error;
      Object.assign(foreign, { code: 'SQLITE_FULL' });
      const failed = t.app.get(TransactionRunner).sqliteTransaction(() => {
        throw foreign;
      });
      await expect(failed).rejects.toBeInstanceOf(QueryFailedError);
      await expect(failed).rejects.toMatchObject({ code: 'SQLITE_FULL' });
    } finally {
      await t.close();
    }
  });
});
