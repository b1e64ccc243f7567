import { isUniqueViolation } from '@app/database/database-errors';
import type { PreparedStatement, TransactionRunner } from '@app/database/transaction-runner';
import {
  assignSeqs,
  byIdempotencyKey,
  freshOf,
  keyedItems,
  messageOfRow,
  outcomeOf,
  plan,
  type AppendMessage,
  type BatchOutcome,
  type Fresh,
  type MessageRow,
} from './batch-plan';
import type { Message } from './message.entity';

/** A racing retry of the same clientMsgId on another node is seen on the next attempt. */
const MAX_ATTEMPTS = 3;

/**
 * One statement, one round trip: it locks the rooms' rows in id order (so
 * that concurrent batches on other nodes cannot deadlock), advances their
 * last seqs and inserts the messages, committing alone. The clientMsgId check
 * before it takes no lock: a retry racing in from another node meanwhile
 * fails the insert on the unique index, and the next attempt finds it.
 */
export async function writeOnPostgres(
  transactions: TransactionRunner,
  items: AppendMessage[],
  signal?: AbortSignal,
): Promise<BatchOutcome[]> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      signal?.throwIfAborted();
      const planned = plan(items, byIdempotencyKey(await storedOnPostgres(transactions, items)));
      const fresh = freshOf(planned);
      if (fresh.messages.length > 0) {
        signal?.throwIfAborted();
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

const FIND_STORED: PreparedStatement = {
  name: 'messages.find-stored',
  text: `
SELECT m.id, m.room_id, m.seq, m.user_id, m.username, m.text, m.client_msg_id, m.created_at
FROM messages m
JOIN unnest($1::uuid[], $2::uuid[], $3::varchar[]) AS k(room_id, user_id, client_msg_id)
  ON m.room_id = k.room_id AND m.user_id = k.user_id AND m.client_msg_id = k.client_msg_id`,
};

/** The stored originals of the items that carry a clientMsgId: one query over arrays. */
async function storedOnPostgres(
  transactions: TransactionRunner,
  items: AppendMessage[],
): Promise<Message[]> {
  const keyed = keyedItems(items);
  if (keyed.length === 0) return [];
  const rows = await transactions.executePrepared<MessageRow>(FIND_STORED, [
    keyed.map((item) => item.roomId),
    keyed.map((item) => item.userId),
    keyed.map((item) => item.clientMsgId),
  ]);
  return rows.map(messageOfRow);
}

const ADVANCE_AND_INSERT: PreparedStatement = {
  name: 'messages.advance-and-insert',
  text: `
WITH input AS (
  SELECT * FROM json_to_recordset($1::json)
    AS i(id uuid, room_id uuid, ordinal int, user_id uuid, username varchar, text text,
         client_msg_id varchar, created_at timestamptz)
), counts AS (
  SELECT room_id, count(*)::int AS n FROM input GROUP BY room_id
), locked AS (
  -- NO KEY: serializes the room's batches, not the foreign-key checks of new members.
  SELECT rooms.id FROM rooms JOIN counts ON counts.room_id = rooms.id
  ORDER BY rooms.id FOR NO KEY UPDATE OF rooms
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
  const rows = await transactions.executePrepared<{ id: string; last_seq: number | string }>(
    ADVANCE_AND_INSERT,
    [JSON.stringify(fresh.messages.map((message, i) => inputRow(message, fresh.ordinals[i])))],
  );
  return new Map(rows.map((row) => [row.id, Number(row.last_seq)]));
}

/**
 * One message as a row of the statement's input, all of them sent as one JSON
 * parameter: serialized natively, where arrays would be escaped element by
 * element in JavaScript. Storable text holds no NUL, which PostgreSQL refuses.
 */
function inputRow(message: Message, ordinal: number) {
  return {
    id: message.id,
    room_id: message.roomId,
    ordinal,
    user_id: message.userId,
    username: message.username,
    text: message.text,
    client_msg_id: message.clientMsgId,
    created_at: message.createdAt.toISOString(),
  };
}
