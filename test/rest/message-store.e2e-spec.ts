import type { INestApplication } from '@nestjs/common';
import type { Client } from 'pg';
import { DataSource, QueryFailedError, type EntityManager } from 'typeorm';
import { createApp } from '@app/app.factory';
import type { RawEnvironment } from '@app/config/env.validation';
import { toErrorBody } from '@app/common/errors/to-error-body';
import { isUniqueViolation } from '@app/database/database-errors';
import { TransactionRunner } from '@app/database/transaction-runner';
import * as batches from '@app/messages/message-batch';
import type { AppendMessage } from '@app/messages/message-batch';
import { MAX_BATCH, MAX_WAITING_MESSAGES, MessageStore } from '@app/messages/message-store.service';
import {
  addMember,
  createRoom,
  postMessage,
  registerUser,
  removeMember,
  type TestUser,
} from '../support/api';
import { createTestDatabase, databaseKinds, withPostgres } from '../support/databases';
import { holdNextCall } from '../support/hold';
import { rowLockWaiters } from '../support/row-locks';
import { eventually, sleep } from '../support/sockets';
import { BASE_TEST_ENV, startTestApp, type TestApp } from '../support/test-app';

const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

/** What the client is told of an append: `stored`, or the contract's error code. */
const answerTo = (append: Promise<unknown>) =>
  append.then(
    () => 'stored',
    (error: unknown) => toErrorBody(error).code,
  );

/** Appends `count` messages `m0`, `m1`, … at once, to the rooms in turn. */
function appendRoundRobin(
  store: MessageStore,
  user: { id: string; username: string },
  rooms: Array<{ id: string }>,
  count: number,
) {
  return Promise.all(
    Array.from({ length: count }, (_, i) =>
      store.append({
        roomId: rooms[i % rooms.length].id,
        userId: user.id,
        username: user.username,
        text: `m${i}`,
      }),
    ),
  );
}

describe.each(databaseKinds())('message store: group commit (%s)', (kind) => {
  let t: TestApp;
  /** The TransactionRunner method each write of a batch goes through. */
  const writeMethod = kind === 'postgres' ? 'executePrepared' : 'sqliteTransaction';

  beforeAll(async () => {
    t = await startTestApp(kind);
  });
  afterAll(() => t.close());

  it('commits concurrent appends to several rooms together, each room gapless from 1', async () => {
    const user = await registerUser(t.url);
    const rooms = await Promise.all([1, 2, 3].map(() => createRoom(t.url, user)));
    const store = t.app.get(MessageStore);
    const results = await appendRoundRobin(store, user, rooms, 300);
    for (const room of rooms) {
      const seqs = results.filter((r) => r.message.roomId === room.id).map((r) => r.message.seq);
      expect(seqs).toEqual(range(100));
    }
  });

  it('commits the messages of one turn of the event loop in one write, even the first', async () => {
    const user = await registerUser(t.url);
    const room = await createRoom(t.url, user);
    const store = t.app.get(MessageStore);
    const transactions = t.app.get(TransactionRunner);
    const spy = jest.spyOn(transactions, writeMethod);
    try {
      const results = await appendRoundRobin(store, user, [room], 20);
      expect(spy).toHaveBeenCalledTimes(1);
      expect(results.map((r) => r.message.seq)).toEqual(range(20));
    } finally {
      spy.mockRestore();
    }
  });

  it('waits, when asked to finish its writes, for one that has not started yet', async () => {
    const user = await registerUser(t.url);
    const room = await createRoom(t.url, user);
    const store = t.app.get(MessageStore);
    let committed = false;
    void store
      .append({ roomId: room.id, userId: user.id, username: user.username, text: 'last' })
      .then(() => (committed = true));
    await store.idle();
    expect(committed).toBe(true);
  });

  it('overlaps two writes on PostgreSQL only, each room still numbered in append order', async () => {
    const user = await registerUser(t.url);
    const rooms = await Promise.all([1, 2, 3, 4].map(() => createRoom(t.url, user)));
    const store = t.app.get(MessageStore);
    const transactions = t.app.get(TransactionRunner);
    let writing = 0;
    let mostAtOnce = 0;
    const original = transactions[writeMethod].bind(transactions) as (
      ...args: unknown[]
    ) => Promise<unknown>;
    const spy = jest
      .spyOn(transactions, writeMethod)
      .mockImplementation(async (...args: unknown[]) => {
        writing += 1;
        mostAtOnce = Math.max(mostAtOnce, writing);
        try {
          return await original(...args);
        } finally {
          writing -= 1;
        }
      });
    try {
      const pairs = [rooms.slice(0, 2), rooms.slice(2)];
      const first = appendRoundRobin(store, user, pairs[0], 100);
      // Once this turn of the event loop ends, the first write holds the first two rooms.
      await new Promise((resolve) => setImmediate(resolve));
      const second = appendRoundRobin(store, user, pairs[1], 100);
      const results = [...(await first), ...(await second)];
      expect(mostAtOnce).toBe(kind === 'postgres' ? 2 : 1);
      for (const pair of pairs)
        for (const [index, room] of pair.entries()) {
          const inAppendOrder = results.filter((r) => r.message.roomId === room.id);
          expect(inAppendOrder.map((r) => r.message.text)).toEqual(
            range(50).map((n) => `m${(n - 1) * 2 + index}`),
          );
          expect(inAppendOrder.map((r) => r.message.seq)).toEqual(range(50));
        }
    } finally {
      spy.mockRestore();
    }
  });

  it('fails only the bad message of a batch', async () => {
    const user = await registerUser(t.url);
    const room = await createRoom(t.url, user);
    const store = t.app.get(MessageStore);
    const base = { userId: user.id, username: user.username, text: 'x' };
    const [good, bad, alsoGood] = await Promise.allSettled([
      store.append({ ...base, roomId: room.id }),
      store.append({ ...base, roomId: '01a21548-0000-7000-8000-000000000000' }),
      store.append({ ...base, roomId: room.id }),
    ]);
    expect(good).toMatchObject({
      status: 'fulfilled',
      value: { created: true, message: { seq: 1 } },
    });
    expect(bad).toMatchObject({ status: 'rejected', reason: { code: 'NOT_FOUND' } });
    expect(alsoGood).toMatchObject({
      status: 'fulfilled',
      value: { created: true, message: { seq: 2 } },
    });
  });

  it('refuses in a batch the messages of a sender no longer a member of a private room, the rest gapless', async () => {
    const [owner, former, passer] = await Promise.all([1, 2, 3].map(() => registerUser(t.url)));
    const room = await createRoom(t.url, owner, { isPrivate: true });
    const open = await createRoom(t.url, owner);
    await addMember(t.url, owner, room.id, former.id);
    await removeMember(t.url, owner, room.id, former.id);
    const store = t.app.get(MessageStore);
    const append = (user: TestUser, roomId: string, clientMsgId?: string) =>
      store.append({ roomId, userId: user.id, username: user.username, text: 'x', clientMsgId });

    // One turn of the event loop: one batch, judged message by message.
    const outcomes = await Promise.allSettled([
      append(owner, room.id),
      append(former, room.id, 'again'),
      append(owner, room.id),
      append(former, room.id, 'again'),
      append(passer, open.id),
    ]);
    expect(outcomes.map((outcome) => outcome.status)).toEqual([
      'fulfilled',
      'rejected',
      'fulfilled',
      'rejected',
      'fulfilled',
    ]);
    expect(outcomes[1]).toMatchObject({ reason: { code: 'NOT_FOUND', message: 'Room not found' } });
    const seqs = outcomes.map((outcome) =>
      outcome.status === 'fulfilled' ? outcome.value.message.seq : undefined,
    );
    expect(seqs).toEqual([1, undefined, 2, undefined, 1]);
    expect((await append(owner, room.id)).message.seq).toBe(3);
  });

  it('writes a batch the database refused for its data again message by message: only the bad one fails, seqs stay gapless', async () => {
    const user = await registerUser(t.url);
    const room = await createRoom(t.url, user);
    const store = t.app.get(MessageStore);
    const realWrite = batches.writeBatch;
    const refusal = { code: kind === 'postgres' ? '22001' : 'SQLITE_TOOBIG' };
    const write = jest
      .spyOn(batches, 'writeBatch')
      .mockImplementation((transactions, items) =>
        items.some((item) => item.text === 'poison')
          ? Promise.reject(Object.assign(new Error('a value the database cannot take'), refusal))
          : realWrite(transactions, items),
      );
    try {
      const texts = ['a', 'b', 'poison', 'c', 'd'];
      const results = await Promise.allSettled(
        texts.map((text) =>
          store.append({ roomId: room.id, userId: user.id, username: user.username, text }),
        ),
      );

      expect(results.map((result) => result.status)).toEqual([
        'fulfilled',
        'fulfilled',
        'rejected',
        'fulfilled',
        'fulfilled',
      ]);
      const stored = results.flatMap((result) =>
        result.status === 'fulfilled'
          ? [[result.value.message.text, result.value.message.seq]]
          : [],
      );
      expect(stored).toEqual([
        ['a', 1],
        ['b', 2],
        ['c', 3],
        ['d', 4],
      ]);
      expect(write.mock.calls.map(([, items]) => items.length)).toEqual([5, 1, 1, 1, 1, 1]);
    } finally {
      write.mockRestore();
    }
  });

  it.each([
    ['a read timeout of the driver', () => new Error('Query read timeout')],
    [
      'a connection error from a pooler',
      () => Object.assign(new Error('server conn crashed?'), { code: '08P01' }),
    ],
  ])('does not write a batch again after %s, whose outcome is unknown', async (_, failure) => {
    const user = await registerUser(t.url);
    const room = await createRoom(t.url, user);
    const store = t.app.get(MessageStore);
    const write = jest.spyOn(batches, 'writeBatch').mockRejectedValueOnce(failure());
    try {
      const results = await Promise.allSettled(
        ['a', 'b', 'c'].map((text) =>
          store.append({ roomId: room.id, userId: user.id, username: user.username, text }),
        ),
      );
      expect(results.map((result) => result.status)).toEqual(['rejected', 'rejected', 'rejected']);
      expect(write).toHaveBeenCalledTimes(1);
    } finally {
      write.mockRestore();
    }
  });

  it.each([
    ['a TLS alert', () => Object.assign(new Error('tlsv1 alert'), { code: 'EPROTO' })],
    ['a failure of its own', () => new Error('could not read the answer')],
  ])(
    'stores nothing twice when a batch that committed fails after all, with %s',
    async (_, failure) => {
      const user = await registerUser(t.url);
      const room = await createRoom(t.url, user);
      const store = t.app.get(MessageStore);
      const realWrite = batches.writeBatch;
      const write = jest
        .spyOn(batches, 'writeBatch')
        .mockImplementationOnce(async (transactions, items) => {
          await realWrite(transactions, items);
          throw failure();
        });
      try {
        const results = await Promise.allSettled(
          ['a', 'b', 'c'].map((text) =>
            store.append({ roomId: room.id, userId: user.id, username: user.username, text }),
          ),
        );
        expect(results.map((result) => result.status)).toEqual([
          'rejected',
          'rejected',
          'rejected',
        ]);
        expect(write).toHaveBeenCalledTimes(1);
        const stored = await store.append({
          roomId: room.id,
          userId: user.id,
          username: user.username,
          text: 'next',
        });
        expect(stored.message.seq).toBe(4);
      } finally {
        write.mockRestore();
      }
    },
  );

  it('keeps writing rooms together after a write given up on while nothing else committed', async () => {
    const slow = await startTestApp(kind, { MESSAGE_WRITE_TIMEOUT_MS: '1000' });
    try {
      const user = await registerUser(slow.url);
      const rooms = [await createRoom(slow.url, user), await createRoom(slow.url, user)];
      const store = slow.app.get(MessageStore);
      const appendToEach = (text: string) =>
        Promise.allSettled(
          rooms.map((room) =>
            store.append({ roomId: room.id, userId: user.id, username: user.username, text }),
          ),
        );
      // The database stalls as a whole: no room is to blame.
      const write = jest
        .spyOn(batches, 'writeBatch')
        .mockImplementationOnce(() => new Promise(() => undefined));
      try {
        const stalled = await appendToEach('stalled');
        expect(stalled.map((result) => result.status)).toEqual(['rejected', 'rejected']);
        const after = await appendToEach('after');
        expect(after.map((result) => result.status)).toEqual(['fulfilled', 'fulfilled']);
        expect(write.mock.calls.map(([, items]) => items.length)).toEqual([2, 2]);
      } finally {
        write.mockRestore();
      }
    } finally {
      await slow.close();
    }
  });

  it('writes nothing more of a batch given up on, once the database answers after all', async () => {
    const slow = await startTestApp(kind, { MESSAGE_WRITE_TIMEOUT_MS: '1000' });
    try {
      const user = await registerUser(slow.url);
      const room = await createRoom(slow.url, user);
      const transactions = slow.app.get(TransactionRunner);
      // The first call of the write: the read of stored retries (PostgreSQL), the transaction (SQLite).
      const held = holdNextCall(
        transactions,
        kind === 'postgres' ? 'executePrepared' : 'sqliteTransaction',
      );
      const sent = slow.app.get(MessageStore).append({
        roomId: room.id,
        userId: user.id,
        username: user.username,
        text: 'given up on',
        clientMsgId: 'late',
      });
      await expect(sent).rejects.toMatchObject({ code: 'UNAVAILABLE' });

      held.release();
      await sleep(300);
      const stored = await slow.app
        .get(DataSource)
        .query<Array<{ count: string | number }>>('SELECT COUNT(*) AS count FROM messages');
      expect(Number(stored[0].count)).toBe(0);
    } finally {
      await slow.close();
    }
  });

  describe('behind a database that takes writes and never answers', () => {
    let slow: TestApp;
    let store: MessageStore;
    let write: jest.SpyInstance;
    let room: { id: string };
    let user: TestUser;
    beforeEach(async () => {
      slow = await startTestApp(kind, { MESSAGE_WRITE_TIMEOUT_MS: '1000' });
      store = slow.app.get(MessageStore);
      user = await registerUser(slow.url);
      room = await createRoom(slow.url, user);
      write = jest
        .spyOn(slow.app.get(TransactionRunner), writeMethod)
        .mockImplementation(() => new Promise<never>(() => undefined));
    });
    afterEach(async () => {
      write.mockRestore();
      await slow.close();
    });

    /** Appends `count` messages to the room at once; each settles as the time it took and its error. */
    const appendTimed = (count: number) => {
      const started = performance.now();
      return range(count).map((i) =>
        store
          .append({ roomId: room.id, userId: user.id, username: user.username, text: `m${i}` })
          .then(
            () => ({ ms: performance.now() - started, code: 'STORED', message: '' }),
            (error: { code: string; message: string }) => ({
              ms: performance.now() - started,
              code: error.code,
              message: error.message,
            }),
          ),
      );
    };

    it('refuses what no write took within MESSAGE_WRITE_TIMEOUT_MS, however many writes wait ahead', async () => {
      const outcomes = await Promise.all(appendTimed(8 * MAX_BATCH));

      expect(new Set(outcomes.map((outcome) => outcome.code))).toEqual(new Set(['UNAVAILABLE']));
      const neverTaken = outcomes.filter((outcome) => /stored nothing/.test(outcome.message));
      // The first write, and perhaps the one that took over from it, had them; the rest waited.
      expect(write.mock.calls.length).toBeLessThanOrEqual(2);
      expect(neverTaken.length).toBeGreaterThanOrEqual(6 * MAX_BATCH);
      // Eight writes in turn would have taken eight seconds; two timeouts and a sweep do.
      expect(Math.max(...outcomes.map((outcome) => outcome.ms))).toBeLessThan(5_000);
    }, 30_000);

    it('refuses at once what comes beyond MAX_WAITING_MESSAGES waiting', async () => {
      const beyond = 300;
      const outcomes = await Promise.all(appendTimed(MAX_WAITING_MESSAGES + beyond));

      expect(new Set(outcomes.map((outcome) => outcome.code))).toEqual(new Set(['UNAVAILABLE']));
      const tooMany = outcomes.filter((outcome) => /Too many messages/.test(outcome.message));
      const overdue = outcomes.filter((outcome) => /not keeping up/.test(outcome.message));
      expect(tooMany).toHaveLength(beyond);
      // At once: before any that waited for its deadline.
      const latest = Math.max(...tooMany.map((outcome) => outcome.ms));
      // All but those of the writes given up on: the first, perhaps the one that took over.
      expect(overdue.length).toBeGreaterThanOrEqual(MAX_WAITING_MESSAGES - 2 * MAX_BATCH);
      expect(overdue.every((outcome) => outcome.ms > latest)).toBe(true);
    }, 30_000);

    it('tells the sends still waiting at shutdown that they stored nothing', async () => {
      const appends = appendTimed(MAX_BATCH + 44);
      await sleep(100);
      store.onApplicationShutdown();
      const waited = await Promise.race([
        Promise.all(appends.slice(MAX_BATCH)),
        sleep(500).then(() => 'still waiting'),
      ]);
      expect(waited).toEqual(
        Array.from({ length: 44 }, () => ({
          ms: expect.any(Number),
          code: 'UNAVAILABLE',
          message: expect.stringMatching(/shutting down: this send stored nothing/),
        })),
      );
      // The write that took the first ones is given up on as before.
      await Promise.all(appends);
    }, 30_000);
  });

  it('stores a clientMsgId repeated within one batch once', async () => {
    const user = await registerUser(t.url);
    const room = await createRoom(t.url, user);
    const store = t.app.get(MessageStore);
    const input = {
      roomId: room.id,
      userId: user.id,
      username: user.username,
      text: 'once',
      clientMsgId: 'k',
    };
    const results = await Promise.all([
      store.append(input),
      store.append(input),
      store.append({ ...input, clientMsgId: 'other' }),
    ]);
    expect(results.map((r) => [r.message.seq, r.created])).toEqual([
      [1, true],
      [1, false],
      [2, true],
    ]);
  });
});

describe('message store: two app instances, each with its own pool, writing one room (postgres)', () => {
  const run = process.env.DATABASE_URL ? it : it.skip;

  /** Two listening app instances on one fresh schema, each with its own pool. */
  async function twoInstances() {
    const first = await startTestApp('postgres');
    const second = await createApp({ ...BASE_TEST_ENV, ...first.database.env });
    await second.listen(0, '127.0.0.1');
    return {
      first,
      second,
      secondUrl: (await second.getUrl()).replace('[::1]', '127.0.0.1'),
      close: async () => {
        await second.close();
        await first.close();
      },
    };
  }

  run('keeps seqs gapless and unique when two app instances post concurrently', async () => {
    const { first, secondUrl, close } = await twoInstances();
    try {
      const user = await registerUser(first.url);
      const room = await createRoom(first.url, user);
      const posted = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          postMessage(i % 2 ? first.url : secondUrl, user, room.id, `n${i}`, `c${i % 90}`),
        ),
      );
      const unique = new Map(posted.map((message) => [message.id, message.seq]));
      expect([...unique.values()].sort((a, b) => a - b)).toEqual(range(90));
    } finally {
      await close();
    }
  });

  /** The message stores of two instances, and a message of one user to one room for them. */
  interface TwoStores {
    apps: INestApplication[];
    stores: MessageStore[];
    message(text: string, clientMsgId: string): AppendMessage;
  }

  async function withTwoStores(body: (two: TwoStores) => Promise<void>): Promise<void> {
    const { first, second, close } = await twoInstances();
    try {
      const user = await registerUser(first.url);
      const room = await createRoom(first.url, user);
      const apps = [first.app, second];
      const message = (text: string, clientMsgId: string) => ({
        roomId: room.id,
        userId: user.id,
        username: user.username,
        text,
        clientMsgId,
      });
      await body({ apps, stores: apps.map((app) => app.get(MessageStore)), message });
    } finally {
      await close();
    }
  }

  run('stores a clientMsgId racing in from two app instances once, with no gap in seq', () =>
    withTwoStores(async ({ stores, message }) => {
      for (let round = 0; round < 20; round += 1) {
        const input = message(`r${round}`, `race-${round}`);
        const results = await Promise.all(stores.map((store) => store.append(input)));
        expect(results[0].message).toEqual(results[1].message);
        expect(results.filter((result) => result.created)).toHaveLength(1);
        expect(results[0].message.seq).toBe(round + 1);
      }
    }),
  );

  run(
    'stores a clientMsgId racing in from two app instances once within larger batches, and the rest of both batches',
    () =>
      withTwoStores(async ({ apps, stores, message }) => {
        // How often a batch's insert met the other's racing key: the case this test is for.
        let collisions = 0;
        for (const app of apps) {
          const runner = app.get(TransactionRunner);
          const execute = runner.executePrepared.bind(runner);
          jest.spyOn(runner, 'executePrepared').mockImplementation((statement, values, signal) =>
            execute(statement, values, signal).catch((error: unknown) => {
              const insert = statement.name === 'messages.advance-and-insert';
              if (insert && isUniqueViolation(error)) collisions += 1;
              throw error;
            }),
          );
        }
        const seqs: number[] = [];
        for (let round = 0; round < 10; round += 1) {
          // Appended in one turn, each instance's messages share a batch: the racing one among them.
          const batches = stores.map((store, node) =>
            Promise.all([
              store.append(message(`race ${round}`, `race-${round}`)),
              ...range(4).map((i) =>
                store.append(message(`own ${round}.${node}.${i}`, `own-${round}-${node}-${i}`)),
              ),
            ]),
          );
          const [[raceA, ...ownA], [raceB, ...ownB]] = await Promise.all(batches);
          expect(raceA.message).toEqual(raceB.message);
          expect([raceA, raceB].filter((result) => result.created)).toHaveLength(1);
          expect([...ownA, ...ownB].every((result) => result.created)).toBe(true);
          seqs.push(raceA.message.seq, ...[...ownA, ...ownB].map((result) => result.message.seq));
        }
        expect(seqs.sort((a, b) => a - b)).toEqual(range(90));
        expect(collisions).toBeGreaterThan(0);
      }),
  );

  run(
    'has the server end sessions idle in a transaction or gone silent, and probes a silent server',
    async () => {
      const t = await startTestApp('postgres');
      try {
        const settings = await t.app.get(TransactionRunner).run((manager) =>
          manager.query<Array<Record<string, string>>>(
            `SELECT current_setting('idle_in_transaction_session_timeout') AS idle,
                      current_setting('tcp_keepalives_idle') AS probe_after`,
          ),
        );
        expect(settings).toEqual([{ idle: '1min', probe_after: '10' }]);
        const pool = (t.app.get(DataSource).driver as unknown as { master: { options: object } })
          .master;
        expect(pool.options).toMatchObject({
          keepAlive: true,
          keepAliveInitialDelayMillis: 10_000,
        });
      } finally {
        await t.close();
      }
    },
  );

  /** A fresh app on PostgreSQL, with a user and a room of theirs. */
  interface RoomOnPostgres {
    t: TestApp;
    ada: TestUser;
    room: { id: string; name: string };
    /** The app's schema, for reads past the app. */
    schema: string;
    /** `work` while another transaction holds the room's row, which it frees afterwards. */
    whileRoomLocked(work: (locker: Client) => Promise<void>): Promise<void>;
  }

  async function withRoomOnPostgres(
    env: RawEnvironment,
    body: (setup: RoomOnPostgres) => Promise<void>,
  ): Promise<void> {
    const t = await startTestApp('postgres', env);
    try {
      const ada = await registerUser(t.url);
      const room = await createRoom(t.url, ada);
      const schema = t.database.env.DATABASE_SCHEMA!;
      const whileRoomLocked = (work: (locker: Client) => Promise<void>) =>
        withPostgres(async (locker) => {
          await locker.query('BEGIN');
          await locker.query(`SELECT 1 FROM "${schema}".rooms WHERE id = $1 FOR UPDATE`, [room.id]);
          await work(locker);
          await locker.query('COMMIT');
        });
      await body({ t, ada, room, schema, whileRoomLocked });
    } finally {
      await t.close();
    }
  }

  run('plans again a batch that a conflict rolled back (a deadlock), and stores it once', () =>
    withRoomOnPostgres({}, async ({ t, ada, room }) => {
      const runner = t.app.get(TransactionRunner);
      const execute = runner.executePrepared.bind(runner);
      let deadlocks = 0;
      jest.spyOn(runner, 'executePrepared').mockImplementation((statement, values, signal) => {
        if (statement.name !== 'messages.advance-and-insert' || deadlocks > 0)
          return execute(statement, values, signal);
        deadlocks += 1;
        const deadlock = Object.assign(new Error('deadlock detected'), { code: '40P01' });
        return Promise.reject(new QueryFailedError(statement.text, values, deadlock));
      });
      const stored = await postMessage(t.url, ada, room.id, 'after a deadlock', 'c-1');
      expect({ deadlocks, seq: stored.seq, text: stored.text }).toEqual({
        deadlocks: 1,
        seq: 1,
        text: 'after a deadlock',
      });
    }),
  );

  run(
    'has the server cancel a write it gave up on, so that it commits nothing later',
    () =>
      withRoomOnPostgres(
        { MESSAGE_WRITE_TIMEOUT_MS: '1000' },
        async ({ t, ada, room, schema, whileRoomLocked }) => {
          // Another transaction holds the room's row: the write waits on it past its time limit.
          await whileRoomLocked(async (locker) => {
            const giving = fetch(`${t.url}/api/rooms/${room.id}/messages`, {
              method: 'POST',
              headers: { Authorization: `Bearer ${ada.token}`, 'Content-Type': 'application/json' },
              body: JSON.stringify({ text: 'given up on' }),
            });
            // The write reached the server and waits on the lock.
            await eventually(async () => (await rowLockWaiters(locker)) === 1, 10_000);
            expect((await giving).status).toBe(503);
            // The server saw its client gone and cancelled the statement, before the lock frees.
            await eventually(async () => (await rowLockWaiters(locker)) === 0, 10_000);
          });
          await sleep(500);
          const stored = await withPostgres((client) =>
            client.query(`SELECT text FROM "${schema}".messages WHERE room_id = $1`, [room.id]),
          );
          expect(stored.rows).toEqual([]);
        },
      ),
    30_000,
  );

  run.each([
    ['the write given up on', { MESSAGE_WRITE_TIMEOUT_MS: '3000' }],
    [
      'a lock_timeout of the URL',
      { DATABASE_URL: `${process.env.DATABASE_URL ?? ''}?options=-c%20lock_timeout%3D1500` },
    ],
  ])(
    'keeps other rooms’ sends going while a write waits on a room another session holds, ended by %s',
    (_, env: RawEnvironment) =>
      withRoomOnPostgres(env, async ({ t, ada, room, whileRoomLocked }) => {
        const other = await createRoom(t.url, ada);
        const store = t.app.get(MessageStore);
        const append = (roomId: string, text: string, clientMsgId?: string) =>
          store.append({ roomId, userId: ada.id, username: ada.username, text, clientMsgId });
        await append(room.id, 'kept', 'kept');
        await whileRoomLocked(async (locker) => {
          const stalled = append(room.id, 'stalled');
          await eventually(async () => (await rowLockWaiters(locker)) === 1, 10_000);
          // Far fewer than a batch's worth, and still not held up by the write that waits.
          expect((await append(other.id, 'passes')).message.seq).toBe(1);
          expect(await rowLockWaiters(locker)).toBe(1);
          expect(await answerTo(stalled)).toBe('UNAVAILABLE');
          // Its statement ended by the server (timed out, or its connection seen closed).
          await eventually(async () => (await rowLockWaiters(locker)) === 0, 10_000);

          // A resend found stored takes no lock: it says nothing of the room's row.
          expect((await append(room.id, 'kept', 'kept')).created).toBe(false);
          // Appended in one turn, they would share a write: the room now goes alone.
          const again = append(room.id, 'stalled again');
          const alongside = append(other.id, 'alongside');
          expect((await alongside).message.seq).toBe(2);
          expect(await answerTo(again)).toBe('UNAVAILABLE');
          await eventually(async () => (await rowLockWaiters(locker)) === 0, 10_000);
        });
        expect((await append(room.id, 'freed')).message.seq).toBe(2);
      }),
    40_000,
  );

  run(
    'has the server cancel a statement under way once its write is given up on',
    () =>
      withRoomOnPostgres({}, async ({ t, room, schema, whileRoomLocked }) => {
        const renameRoom = {
          name: 'test.rename-room',
          text: 'UPDATE rooms SET name = $2 WHERE id = $1',
        };
        await whileRoomLocked(async (locker) => {
          // Its time limit is far off: only the abort, as a write's watchdog sends it, ends it.
          const giveUp = new AbortController();
          const renaming = t.app
            .get(TransactionRunner)
            .executePrepared(renameRoom, [room.id, 'renamed late'], giveUp.signal);
          // Given up on once it waits on the lock, not before it was sent.
          await eventually(async () => (await rowLockWaiters(locker)) === 1, 10_000);
          giveUp.abort();
          const settled = Promise.race([renaming, sleep(1_000).then(() => 'still waiting')]);
          await expect(settled).rejects.toThrow();
          await eventually(async () => (await rowLockWaiters(locker)) === 0, 10_000);
        });
        await sleep(500);
        const rooms = await withPostgres((client) =>
          client.query(`SELECT name FROM "${schema}".rooms WHERE id = $1`, [room.id]),
        );
        expect(rooms.rows).toEqual([{ name: room.name }]);
      }),
    30_000,
  );

  run(
    'runs READ COMMITTED, which the room row locks rely on, and durable commits, whatever the server default',
    async () => {
      const name = `iso_${Date.now().toString(36)}_${process.pid}`;
      await withPostgres(async (client) => {
        await client.query(`CREATE DATABASE "${name}"`);
        await client.query(
          `ALTER DATABASE "${name}" SET default_transaction_isolation = 'serializable'`,
        );
        await client.query(`ALTER DATABASE "${name}" SET synchronous_commit = 'off'`);
      });
      const url = new URL(process.env.DATABASE_URL!);
      url.pathname = `/${name}`;
      const app = await createApp({ ...BASE_TEST_ENV, DATABASE_URL: url.toString() });
      try {
        const transactions = app.get(TransactionRunner);
        const isolation = (manager: EntityManager) =>
          manager.query<Array<{ transaction_isolation: string }>>('SHOW transaction_isolation');
        // Transactions on pooled connections, and the single statements the message store runs.
        const levels = await Promise.all([
          ...Array.from({ length: 3 }, () => transactions.run(isolation)),
          transactions.write(isolation),
          transactions.executePrepared<{ transaction_isolation: string }>(
            { name: 'test.isolation', text: 'SHOW transaction_isolation' },
            [],
          ),
        ]);
        expect(levels.flat()).toEqual(
          Array.from({ length: 5 }, () => ({ transaction_isolation: 'read committed' })),
        );
        const durability = await Promise.all(
          Array.from({ length: 3 }, () =>
            transactions.write((manager) =>
              manager.query<Array<{ synchronous_commit: string }>>('SHOW synchronous_commit'),
            ),
          ),
        );
        expect(durability.flat()).toEqual(
          Array.from({ length: 3 }, () => ({ synchronous_commit: 'on' })),
        );
      } finally {
        await app.close();
        await withPostgres((client) => client.query(`DROP DATABASE "${name}" WITH (FORCE)`));
      }
    },
  );
});

describe('PostgreSQL sessions of a DATABASE_URL with options of its own', () => {
  const run = process.env.DATABASE_URL ? it : it.skip;

  run('keep the isolation level and the schema beside the URL’s own settings', async () => {
    const database = await createTestDatabase('postgres');
    const url = new URL(process.env.DATABASE_URL!);
    url.searchParams.set('options', '-c statement_timeout=4321');
    const app = await createApp({
      ...BASE_TEST_ENV,
      ...database.env,
      DATABASE_URL: url.toString(),
    });
    try {
      const [settings] = await app.get(DataSource).query<Array<Record<string, string>>>(
        `SELECT current_setting('transaction_isolation') AS isolation,
                current_schema() AS schema,
                current_setting('statement_timeout') AS timeout`,
      );
      expect(settings).toEqual({
        isolation: 'read committed',
        schema: database.env.DATABASE_SCHEMA,
        timeout: '4321ms',
      });
    } finally {
      await app.close();
      await database.drop();
    }
  });
});

describe('message store: SQLite durability of a commit', () => {
  /** `PRAGMA synchronous` of a service started on the file: 2 is FULL, 1 NORMAL. */
  async function synchronousOf(env: RawEnvironment): Promise<number> {
    const app = await createApp({ ...BASE_TEST_ENV, ...env });
    try {
      const rows: Array<{ synchronous: number }> = await app
        .get(DataSource)
        .query('PRAGMA synchronous');
      return rows[0].synchronous;
    } finally {
      await app.close();
    }
  }

  it('syncs every commit on a new file and on a reopened one, unless told otherwise', async () => {
    const database = await createTestDatabase('sqlite');
    try {
      expect(await synchronousOf(database.env)).toBe(2);
      expect(await synchronousOf(database.env)).toBe(2);
      expect(await synchronousOf({ ...database.env, SQLITE_SYNCHRONOUS: 'normal' })).toBe(1);
    } finally {
      await database.drop();
    }
  });

  it('refuses an unknown synchronous mode at start', async () => {
    await expect(createApp({ ...BASE_TEST_ENV, SQLITE_SYNCHRONOUS: 'off' })).rejects.toThrow(
      /SQLITE_SYNCHRONOUS/,
    );
  });
});
