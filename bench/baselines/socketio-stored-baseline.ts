/**
 * The bare Socket.IO baseline with storage: the reference design's handler
 * with its `await saveMessage(...)`, written as plainly as a durable one can
 * be. Each message is committed, with its room's next seq, into the service's
 * own tables (the bench migrates them first) before it is emitted to the room
 * and acked; messages read in the same turn of the event loop share a
 * commit, and those that arrive while a commit is in flight share the next
 * one. Tokens are verified at the handshake, as the bare baseline does; no
 * framework, validation or throttling: it shows what storing alone costs on
 * this machine, next to the bare baseline that does not.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import Database from 'better-sqlite3';
import { Pool } from 'pg';
import { Server } from 'socket.io';
import { baselineSecretFromEnv, verifyBaselineToken, type TokenUser } from '../common/tokens';

type Ack = (response: { ok: true; data: unknown }) => void;

interface SendPayload {
  roomId: string;
  text: string;
  clientMsgId?: string;
}

interface Unsaved {
  id: string;
  /** The stored room that the client's room id stands for. */
  room: string;
  text: string;
  clientMsgId: string | null;
  createdAt: string;
}

/** The service's two databases, each written in its plainest durable way. */
interface Store {
  addUser(id: string): Promise<void>;
  addRoom(id: string, ownerId: string): Promise<void>;
  /** Commits the messages in one transaction; their seqs, in order. */
  save(messages: Unsaved[], userId: string): Promise<number[]>;
}

const USER_SQL = `INSERT INTO users (id, username, username_key, password_hash, created_at) VALUES ($1, 'bench', 'bench', '-', $2)`;
const ROOM_SQL = `INSERT INTO rooms (id, name, is_private, owner_id, created_at) VALUES ($1, 'bench', false, $2, $3)`;

/** One statement: advance each room's last seq by its messages, insert them numbered from there. */
const SAVE_SQL = `
WITH input AS (
  SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::text[], $5::varchar[], $6::timestamptz[])
    AS i(id, room_id, ordinal, text, client_msg_id, created_at)
), counts AS (
  SELECT room_id, count(*)::int AS n FROM input GROUP BY room_id
), advanced AS (
  UPDATE rooms SET last_seq = rooms.last_seq + counts.n FROM counts
  WHERE rooms.id = counts.room_id RETURNING rooms.id, rooms.last_seq
)
INSERT INTO messages (id, room_id, seq, user_id, username, text, client_msg_id, created_at)
SELECT i.id, i.room_id, a.last_seq - c.n + i.ordinal, $7, 'bench', i.text, i.client_msg_id, i.created_at
FROM input i JOIN counts c ON c.room_id = i.room_id JOIN advanced a ON a.id = i.room_id
RETURNING id, seq`;

/** The nth message of a room in the batch: 1, 2, … */
function ordinals(messages: Unsaved[]): number[] {
  const perRoom = new Map<string, number>();
  return messages.map(({ room }) => {
    const next = (perRoom.get(room) ?? 0) + 1;
    perRoom.set(room, next);
    return next;
  });
}

function postgresStore(url: string, schema: string): Store {
  const pool = new Pool({ connectionString: url, max: 4, options: `-c search_path=${schema}` });
  const now = () => new Date().toISOString();
  return {
    async addUser(id) {
      await pool.query(USER_SQL, [id, now()]);
    },
    async addRoom(id, ownerId) {
      await pool.query(ROOM_SQL, [id, ownerId, now()]);
    },
    async save(messages, userId) {
      const column = <T>(pick: (message: Unsaved) => T) => messages.map(pick);
      const { rows } = await pool.query<{ id: string; seq: number }>({
        name: 'save',
        text: SAVE_SQL,
        values: [
          column((m) => m.id),
          column((m) => m.room),
          ordinals(messages),
          column((m) => m.text),
          column((m) => m.clientMsgId),
          column((m) => m.createdAt),
          userId,
        ],
      });
      const seqs = new Map(rows.map((row) => [row.id, row.seq]));
      return messages.map((message) => seqs.get(message.id)!);
    },
  };
}

function sqliteStore(path: string): Store {
  const db = new Database(path);
  // As durable as the service: the bench created this file, and a reopened
  // WAL file would otherwise sync only at checkpoints.
  db.pragma('synchronous = FULL');
  db.pragma('journal_mode = WAL');
  const toSqlite = (sql: string) => sql.replace(/\$\d/g, '?');
  const addUser = db.prepare(toSqlite(USER_SQL));
  const addRoom = db.prepare(toSqlite(ROOM_SQL));
  const advance = db.prepare<[string], { last_seq: number }>(
    'UPDATE rooms SET last_seq = last_seq + 1 WHERE id = ? RETURNING last_seq',
  );
  const insert = db.prepare(
    `INSERT INTO messages (id, room_id, seq, user_id, username, text, client_msg_id, created_at) VALUES (?, ?, ?, ?, 'bench', ?, ?, ?)`,
  );
  const save = db.transaction((messages: Unsaved[], userId: string) =>
    messages.map((message) => {
      const seq = advance.get(message.room)!.last_seq;
      insert.run(
        message.id,
        message.room,
        seq,
        userId,
        message.text,
        message.clientMsgId,
        message.createdAt,
      );
      return seq;
    }),
  );
  const now = () => new Date().toISOString();
  return {
    addUser(id) {
      addUser.run(id, now());
      return Promise.resolve();
    },
    addRoom(id, ownerId) {
      addRoom.run(id, ownerId, now());
      return Promise.resolve();
    },
    save: (messages, userId) => Promise.resolve(save(messages, userId)),
  };
}

/**
 * Group commit, as the service's MessageStore does it: with no write in
 * flight, the first message waits for the rest of this turn of the event
 * loop (`setImmediate`), so that every message read from the sockets in it
 * joins the same commit; while one batch is being written, new messages
 * wait, and the next write takes them all. Without the wait, on SQLite
 * (synchronous) each message would commit alone, with a sync to disk each.
 * Each message resolves with its seq once committed.
 */
function groupCommit(store: Store, userId: string): (message: Unsaved) => Promise<number> {
  let queue: Array<{ message: Unsaved; resolve(seq: number): void; reject(error: unknown): void }> =
    [];
  let writing = false;
  let scheduled = false;
  const flush = async () => {
    scheduled = false;
    writing = true;
    while (queue.length > 0) {
      const batch = queue;
      queue = [];
      try {
        const seqs = await store.save(
          batch.map((item) => item.message),
          userId,
        );
        batch.forEach((item, i) => item.resolve(seqs[i]));
      } catch (error) {
        for (const item of batch) item.reject(error);
      }
    }
    writing = false;
  };
  return (message) =>
    new Promise((resolve, reject) => {
      queue.push({ message, resolve, reject });
      if (writing || scheduled) return;
      scheduled = true;
      setImmediate(() => void flush());
    });
}

async function main(): Promise<void> {
  const store = process.env.DATABASE_URL
    ? postgresStore(process.env.DATABASE_URL, process.env.DATABASE_SCHEMA ?? 'public')
    : sqliteStore(process.env.SQLITE_PATH ?? 'bench.sqlite');
  const userId = randomUUID();
  await store.addUser(userId);
  const append = groupCommit(store, userId);
  /** Client room id → stored room id, created on its first join. */
  const rooms = new Map<string, Promise<string>>();
  const roomFor = (roomId: string) => {
    let stored = rooms.get(roomId);
    if (!stored) {
      const id = randomUUID();
      stored = store.addRoom(id, userId).then(() => id);
      rooms.set(roomId, stored);
    }
    return stored;
  };

  const httpServer = createServer();
  const io = new Server(httpServer, { pingTimeout: 20000, pingInterval: 25000 });
  const secret = baselineSecretFromEnv();
  io.use((socket, next) => {
    const user = verifyBaselineToken(secret, (socket.handshake.auth as { token?: unknown }).token);
    if (!user) return next(new Error('Authentication failed'));
    socket.data = { user };
    next();
  });
  io.on('connection', (socket) => {
    const user = (socket.data as { user: TokenUser }).user;
    void socket.join(`user:${user.id}`);

    socket.on('chat:join', async (payload: unknown, ack?: Ack) => {
      const roomId =
        typeof payload === 'string' ? payload : String((payload as { roomId?: unknown }).roomId);
      await roomFor(roomId);
      void socket.join(`chat:${roomId}`);
      socket.to(`chat:${roomId}`).emit('chat:userJoined', { roomId, user });
      ack?.({ ok: true, data: {} });
    });

    socket.on('chat:message', async ({ roomId, text, clientMsgId }: SendPayload, ack?: Ack) => {
      const unsaved: Unsaved = {
        id: randomUUID(),
        room: await roomFor(roomId),
        text,
        clientMsgId: clientMsgId ?? null,
        createdAt: new Date().toISOString(),
      };
      const seq = await append(unsaved);
      const message = {
        id: unsaved.id,
        roomId,
        seq,
        userId: user.id,
        username: user.username,
        text,
        clientMsgId: unsaved.clientMsgId,
        createdAt: unsaved.createdAt,
      };
      io.to(`chat:${roomId}`).emit('chat:message', message);
      ack?.({ ok: true, data: message });
    });
  });

  const port = Number(process.env.PORT ?? 3100);
  httpServer.listen(port, process.env.HOST ?? '127.0.0.1', () =>
    process.send?.({ type: 'listening', port }),
  );
}

process.on('disconnect', () => process.exit(0));
// A clean exit, so that `--cpu-prof` writes its profile.
process.on('SIGTERM', () => process.exit(0));
main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
