import type { EntityManager } from 'typeorm';
import { DateUtils } from 'typeorm/util/DateUtils';
import { AppException } from '@app/common/errors/app.exception';
import { uuidv7 } from '@app/common/ids/uuid-v7';
import { Message } from './message.entity';

export interface AppendMessage {
  roomId: string;
  userId: string;
  username: string;
  text: string;
  clientMsgId?: string;
}

export type BatchOutcome = { message: Message; created: boolean } | { error: AppException };

const idempotencyKey = (roomId: string, userId: string, clientMsgId: string) =>
  `${roomId}\u0000${userId}\u0000${clientMsgId}`;

/**
 * Writes a batch of messages in the caller's transaction: locks the rooms'
 * rows (in id order, so that concurrent batches on other nodes cannot
 * deadlock), skips retries whose clientMsgId is already stored (or earlier in
 * the batch), gives the rest the next seqs and inserts them in one statement.
 */
export async function writeBatch(
  manager: EntityManager,
  items: AppendMessage[],
): Promise<BatchOutcome[]> {
  const lastSeqs = await lockRooms(manager, [...new Set(items.map((item) => item.roomId))]);
  const earlier = await findEarlier(manager, items);
  const outcomes: BatchOutcome[] = [];
  const fresh: Message[] = [];
  const now = new Date();
  for (const item of items) {
    const lastSeq = lastSeqs.get(item.roomId);
    if (lastSeq === undefined) {
      outcomes.push({ error: AppException.notFound('Room not found') });
      continue;
    }
    const key = item.clientMsgId
      ? idempotencyKey(item.roomId, item.userId, item.clientMsgId)
      : undefined;
    const original = key ? earlier.get(key) : undefined;
    if (original) {
      outcomes.push({ message: original, created: false });
      continue;
    }
    const message = Object.assign(new Message(), {
      id: uuidv7(),
      roomId: item.roomId,
      seq: lastSeq + 1,
      userId: item.userId,
      username: item.username,
      text: item.text,
      clientMsgId: item.clientMsgId ?? null,
      createdAt: now,
    });
    lastSeqs.set(item.roomId, message.seq);
    if (key) earlier.set(key, message);
    fresh.push(message);
    outcomes.push({ message, created: true });
  }
  if (fresh.length > 0) await store(manager, lastSeqs, fresh);
  return outcomes;
}

/** The rooms' current last seqs, their rows locked until commit. */
async function lockRooms(manager: EntityManager, roomIds: string[]): Promise<Map<string, number>> {
  const sorted = [...roomIds].sort();
  const postgres = manager.connection.options.type === 'postgres';
  const rows = await manager.query<Array<{ id: string; last_seq: number | string }>>(
    postgres
      ? 'SELECT id, last_seq FROM rooms WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE'
      : `SELECT id, last_seq FROM rooms WHERE id IN (${sorted.map(() => '?').join(', ')})`,
    postgres ? [sorted] : sorted,
  );
  return new Map(rows.map((row) => [row.id, Number(row.last_seq)]));
}

async function findEarlier(
  manager: EntityManager,
  items: AppendMessage[],
): Promise<Map<string, Message>> {
  const keyed = items.filter((item) => item.clientMsgId !== undefined);
  if (keyed.length === 0) return new Map();
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
  const found = await query.getMany();
  return new Map(
    found.map((message) => [
      idempotencyKey(message.roomId, message.userId, message.clientMsgId!),
      message,
    ]),
  );
}

interface Statement {
  sql: string;
  parameters: unknown[];
}

/** Positional placeholders in the driver's own syntax: `$1, $2` for PostgreSQL, `?` for SQLite. */
function placeholders(postgres: boolean) {
  let count = 0;
  return () => (postgres ? `$${(count += 1)}` : '?');
}

/**
 * Moves the rooms to their new last seqs and inserts the messages: one
 * statement (a data-modifying CTE) on PostgreSQL, two on SQLite.
 */
async function store(
  manager: EntityManager,
  lastSeqs: Map<string, number>,
  messages: Message[],
): Promise<void> {
  const postgres = manager.connection.options.type === 'postgres';
  const next = placeholders(postgres);
  const advance = advanceRooms(lastSeqs, next, postgres);
  const insert = insertMessages(messages, next, postgres);
  if (postgres) {
    await manager.query(`WITH advanced AS (${advance.sql}) ${insert.sql}`, [
      ...advance.parameters,
      ...insert.parameters,
    ]);
    return;
  }
  await manager.query(advance.sql, advance.parameters);
  await manager.query(insert.sql, insert.parameters);
}

/** One statement moves every room of the batch to its new last seq. */
function advanceRooms(
  lastSeqs: Map<string, number>,
  next: () => string,
  postgres: boolean,
): Statement {
  const rooms = [...lastSeqs];
  const cases = rooms
    .map(() => `WHEN ${next()} THEN ${next()}${postgres ? '::integer' : ''}`)
    .join(' ');
  const ids = rooms.map(() => next()).join(', ');
  return {
    sql: `UPDATE rooms SET last_seq = CASE id ${cases} END WHERE id IN (${ids})`,
    parameters: [...rooms.flat(), ...rooms.map(([roomId]) => roomId)],
  };
}

/** One multi-row insert, in plain SQL: the ORM's insert path costs more than the write itself. */
function insertMessages(messages: Message[], next: () => string, postgres: boolean): Statement {
  const rows = messages.map(() => `(${Array.from({ length: 8 }, next).join(', ')})`).join(', ');
  const parameters = messages.flatMap((message): unknown[] => [
    message.id,
    message.roomId,
    message.seq,
    message.userId,
    message.username,
    message.text,
    message.clientMsgId,
    postgres
      ? message.createdAt
      : (DateUtils.mixedDateToUtcDatetimeString(message.createdAt) as string),
  ]);
  return {
    sql: `INSERT INTO messages (id, room_id, seq, user_id, username, text, client_msg_id, created_at) VALUES ${rows}`,
    parameters,
  };
}
