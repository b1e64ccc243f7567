import type { EntityManager } from 'typeorm';
import { DateUtils } from 'typeorm/util/DateUtils';
import { AppException } from '@app/common/errors/app.exception';
import { uuidv7 } from '@app/common/ids/uuid-v7';
import { isUniqueViolation } from '@app/database/database-errors';
import type { PreparedStatement, TransactionRunner } from '@app/database/transaction-runner';
import { Message } from './message.entity';

export interface AppendMessage {
  roomId: string;
  userId: string;
  username: string;
  text: string;
  clientMsgId?: string;
}

export type BatchOutcome = { message: Message; created: boolean } | { error: AppException };

/** A message of the batch: a new one (seq 0 until stored) or the original of a retry. */
interface Planned {
  message: Message;
  created: boolean;
}

/** The new messages of a batch, in order, with their ordinal within their room (1, 2, …). */
interface Fresh {
  messages: Message[];
  ordinals: number[];
  perRoom: Map<string, number>;
}

/** A racing retry of the same clientMsgId on another node is seen on the next attempt. */
const MAX_ATTEMPTS = 3;

const idempotencyKey = (roomId: string, userId: string, clientMsgId: string) =>
  `${roomId}\u0000${userId}\u0000${clientMsgId}`;

/**
 * Writes a batch of messages and resolves once it is committed. A retry whose
 * clientMsgId is already stored (or earlier in the batch) gets the original;
 * the rest get their rooms' next seqs, gapless, or NOT_FOUND for a room that
 * does not exist.
 */
export function writeBatch(
  transactions: TransactionRunner,
  items: AppendMessage[],
): Promise<BatchOutcome[]> {
  return transactions.isPostgres
    ? writeOnPostgres(transactions, items)
    : transactions.run((manager) => writeOnSqlite(manager, items));
}

/**
 * One statement, one round trip: it locks the rooms' rows in id order (so
 * that concurrent batches on other nodes cannot deadlock), advances their
 * last seqs and inserts the messages, committing alone. The clientMsgId check
 * before it takes no lock: a retry racing in from another node meanwhile
 * fails the insert on the unique index, and the next attempt finds it.
 */
async function writeOnPostgres(
  transactions: TransactionRunner,
  items: AppendMessage[],
): Promise<BatchOutcome[]> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      const planned = plan(items, await findEarlier(items, storedOnPostgres(transactions)));
      const fresh = freshOf(planned);
      if (fresh.messages.length > 0) {
        const advanced = await advanceAndInsert(transactions, fresh);
        const before = new Map(
          [...advanced].map(([roomId, lastSeq]) => [roomId, lastSeq - fresh.perRoom.get(roomId)!]),
        );
        assignSeqs(fresh, before);
      }
      return planned.map(outcomeOf);
    } catch (error) {
      if (!isUniqueViolation(error) || attempt >= MAX_ATTEMPTS) throw error;
    }
  }
}

/** In the caller's transaction, which SQLite runs alone: read, advance, insert. */
async function writeOnSqlite(
  manager: EntityManager,
  items: AppendMessage[],
): Promise<BatchOutcome[]> {
  const planned = plan(items, await findEarlier(items, storedOnSqlite(manager)));
  const fresh = freshOf(planned);
  if (fresh.messages.length > 0) {
    const before = await lastSeqsOf(manager, [...fresh.perRoom.keys()]);
    const stored = assignSeqs(fresh, before);
    if (stored.length > 0) {
      await advanceRoomsOnSqlite(manager, fresh, before);
      await insertOnSqlite(manager, stored);
    }
  }
  return planned.map(outcomeOf);
}

/** New messages for the items, and for retries the original (stored, or earlier in the batch). */
function plan(items: AppendMessage[], earlier: Map<string, Message>): Planned[] {
  const now = new Date();
  return items.map((item) => {
    const key = item.clientMsgId
      ? idempotencyKey(item.roomId, item.userId, item.clientMsgId)
      : undefined;
    const original = key ? earlier.get(key) : undefined;
    if (original) return { message: original, created: false };
    const message = Object.assign(new Message(), {
      id: uuidv7(),
      roomId: item.roomId,
      seq: 0,
      userId: item.userId,
      username: item.username,
      text: item.text,
      clientMsgId: item.clientMsgId ?? null,
      createdAt: now,
    });
    if (key) earlier.set(key, message);
    return { message, created: true };
  });
}

function freshOf(planned: Planned[]): Fresh {
  const fresh: Fresh = { messages: [], ordinals: [], perRoom: new Map() };
  for (const { message, created } of planned) {
    if (!created) continue;
    const ordinal = (fresh.perRoom.get(message.roomId) ?? 0) + 1;
    fresh.perRoom.set(message.roomId, ordinal);
    fresh.messages.push(message);
    fresh.ordinals.push(ordinal);
  }
  return fresh;
}

/** Seq = the room's last seq before the batch + the ordinal; rooms not in `before` keep seq 0. */
function assignSeqs(fresh: Fresh, before: Map<string, number>): Message[] {
  const stored: Message[] = [];
  fresh.messages.forEach((message, i) => {
    const lastSeq = before.get(message.roomId);
    if (lastSeq === undefined) return;
    message.seq = lastSeq + fresh.ordinals[i];
    stored.push(message);
  });
  return stored;
}

function outcomeOf({ message, created }: Planned): BatchOutcome {
  return message.seq > 0
    ? { message, created }
    : { error: AppException.notFound('Room not found') };
}

type StoredLookUp = (keyed: AppendMessage[]) => Promise<Message[]>;

/** The stored originals of the items that carry a clientMsgId, by idempotency key. */
async function findEarlier(
  items: AppendMessage[],
  lookUp: StoredLookUp,
): Promise<Map<string, Message>> {
  const keyed = items.filter((item) => item.clientMsgId !== undefined);
  if (keyed.length === 0) return new Map();
  const found = await lookUp(keyed);
  return new Map(
    found.map((message) => [
      idempotencyKey(message.roomId, message.userId, message.clientMsgId!),
      message,
    ]),
  );
}

const FIND_STORED: PreparedStatement = {
  name: 'messages.find-stored',
  text: `
SELECT m.id, m.room_id, m.seq, m.user_id, m.username, m.text, m.client_msg_id, m.created_at
FROM messages m
JOIN unnest($1::uuid[], $2::uuid[], $3::varchar[]) AS k(room_id, user_id, client_msg_id)
  ON m.room_id = k.room_id AND m.user_id = k.user_id AND m.client_msg_id = k.client_msg_id`,
};

interface MessageRow {
  id: string;
  room_id: string;
  seq: number;
  user_id: string;
  username: string;
  text: string;
  client_msg_id: string;
  created_at: Date;
}

/** One query over arrays: the ORM's query builder, with three parameters per key, costs more. */
const storedOnPostgres =
  (transactions: TransactionRunner): StoredLookUp =>
  async (keyed) => {
    const rows = await transactions.executePrepared<MessageRow>(FIND_STORED, [
      keyed.map((item) => item.roomId),
      keyed.map((item) => item.userId),
      keyed.map((item) => item.clientMsgId),
    ]);
    return rows.map((row) =>
      Object.assign(new Message(), {
        id: row.id,
        roomId: row.room_id,
        seq: Number(row.seq),
        userId: row.user_id,
        username: row.username,
        text: row.text,
        clientMsgId: row.client_msg_id,
        createdAt: row.created_at,
      }),
    );
  };

const storedOnSqlite =
  (manager: EntityManager): StoredLookUp =>
  (keyed) => {
    const query = manager.createQueryBuilder(Message, 'message');
    keyed.forEach((item, i) =>
      query.orWhere(
        `(message.roomId = :room${i} AND message.userId = :user${i} AND message.clientMsgId = :client${i})`,
        {
          [`room${i}`]: item.roomId,
          [`user${i}`]: item.userId,
          [`client${i}`]: item.clientMsgId,
        },
      ),
    );
    return query.getMany();
  };

const ADVANCE_AND_INSERT: PreparedStatement = {
  name: 'messages.advance-and-insert',
  text: `
WITH input AS (
  SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::uuid[], $5::varchar[], $6::text[],
                       $7::varchar[], $8::timestamptz[])
    AS i(id, room_id, ordinal, user_id, username, text, client_msg_id, created_at)
), counts AS (
  SELECT room_id, count(*)::int AS n FROM input GROUP BY room_id
), locked AS (
  SELECT rooms.id FROM rooms JOIN counts ON counts.room_id = rooms.id
  ORDER BY rooms.id FOR UPDATE OF rooms
), advanced AS (
  UPDATE rooms SET last_seq = rooms.last_seq + counts.n
  FROM locked JOIN counts ON counts.room_id = locked.id
  WHERE rooms.id = locked.id
  RETURNING rooms.id, rooms.last_seq
), inserted AS (
  INSERT INTO messages (id, room_id, seq, user_id, username, text, client_msg_id, created_at)
  SELECT i.id, i.room_id, a.last_seq - c.n + i.ordinal, i.user_id, i.username, i.text,
         i.client_msg_id, i.created_at
  FROM input i JOIN counts c ON c.room_id = i.room_id JOIN advanced a ON a.id = i.room_id
)
SELECT id, last_seq FROM advanced`,
};

/** The rooms' last seqs after the batch; a room missing from it does not exist. */
async function advanceAndInsert(
  transactions: TransactionRunner,
  fresh: Fresh,
): Promise<Map<string, number>> {
  const column = <T>(pick: (message: Message) => T) => fresh.messages.map(pick);
  const rows = await transactions.executePrepared<{ id: string; last_seq: number | string }>(
    ADVANCE_AND_INSERT,
    [
      column((m) => m.id),
      column((m) => m.roomId),
      fresh.ordinals,
      column((m) => m.userId),
      column((m) => m.username),
      column((m) => m.text),
      column((m) => m.clientMsgId),
      column((m) => m.createdAt.toISOString()),
    ],
  );
  return new Map(rows.map((row) => [row.id, Number(row.last_seq)]));
}

async function lastSeqsOf(manager: EntityManager, roomIds: string[]): Promise<Map<string, number>> {
  const rows = await manager.query<Array<{ id: string; last_seq: number | string }>>(
    `SELECT id, last_seq FROM rooms WHERE id IN (${roomIds.map(() => '?').join(', ')})`,
    roomIds,
  );
  return new Map(rows.map((row) => [row.id, Number(row.last_seq)]));
}

/** One statement moves every room of the batch to its new last seq. */
async function advanceRoomsOnSqlite(
  manager: EntityManager,
  fresh: Fresh,
  before: Map<string, number>,
): Promise<void> {
  const rooms = [...before].map(([roomId, lastSeq]) => [
    roomId,
    lastSeq + fresh.perRoom.get(roomId)!,
  ]);
  const cases = rooms.map(() => 'WHEN ? THEN ?').join(' ');
  const ids = rooms.map(() => '?').join(', ');
  await manager.query(`UPDATE rooms SET last_seq = CASE id ${cases} END WHERE id IN (${ids})`, [
    ...rooms.flat(),
    ...rooms.map(([roomId]) => roomId),
  ]);
}

/** One multi-row insert, in plain SQL: the ORM's insert path costs more than the write itself. */
async function insertOnSqlite(manager: EntityManager, messages: Message[]): Promise<void> {
  const rows = messages.map(() => `(${Array.from({ length: 8 }, () => '?').join(', ')})`);
  const values = messages.flatMap((message): unknown[] => [
    message.id,
    message.roomId,
    message.seq,
    message.userId,
    message.username,
    message.text,
    message.clientMsgId,
    DateUtils.mixedDateToUtcDatetimeString(message.createdAt) as string,
  ]);
  await manager.query(
    `INSERT INTO messages (id, room_id, seq, user_id, username, text, client_msg_id, created_at) VALUES ${rows.join(', ')}`,
    values,
  );
}
