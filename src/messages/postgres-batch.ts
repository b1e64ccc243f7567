import { isRolledBackForConflict, isUniqueViolation } from '@app/database/database-errors';
import type { PreparedStatement, TransactionRunner } from '@app/database/transaction-runner';
import {
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
 * that concurrent batches on other nodes cannot deadlock), refuses the
 * messages of senders no longer members of a private room, advances the
 * rooms' last seqs and inserts the rest, committing alone. The clientMsgId check
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
      const stored = await storedOnPostgres(transactions, items, signal);
      const planned = plan(items, byIdempotencyKey(stored));
      const fresh = freshOf(planned);
      if (fresh.messages.length > 0) {
        signal?.throwIfAborted();
        const seqs = await advanceAndInsert(transactions, fresh, signal);
        for (const message of fresh.messages) message.seq = seqs.get(message.id) ?? 0;
      }
      return planned.map(outcomeOf);
    } catch (error) {
      // Planned again: another node stored a key meanwhile, or a conflict rolled it all back.
      const again = isUniqueViolation(error) || isRolledBackForConflict(error);
      if (!again || attempt >= MAX_ATTEMPTS) throw error;
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
  signal: AbortSignal | undefined,
): Promise<Message[]> {
  const keyed = keyedItems(items);
  if (keyed.length === 0) return [];
  const keys = [
    keyed.map((item) => item.roomId),
    keyed.map((item) => item.userId),
    keyed.map((item) => item.clientMsgId),
  ];
  const rows = await transactions.executePrepared<MessageRow>(FIND_STORED, keys, signal);
  return rows.map(messageOfRow);
}

const ADVANCE_AND_INSERT: PreparedStatement = {
  name: 'messages.advance-and-insert',
  text: `
WITH input AS (
  SELECT * FROM json_to_recordset($1::json)
    AS i(id uuid, room_id uuid, ordinal int, user_id uuid, username varchar, text text,
         client_msg_id varchar, created_at timestamptz)
), locked AS (
  -- NO KEY: serializes the room's batches, not the foreign-key checks of new members.
  SELECT rooms.id, rooms.is_private FROM rooms
  WHERE rooms.id IN (SELECT room_id FROM input)
  ORDER BY rooms.id FOR NO KEY UPDATE OF rooms
), allowed AS (
  -- Judged under the room's lock, which removals take too. A locking read of the
  -- membership skips one a removal committed while this statement waited for the
  -- lock; a plain read would still see it in the statement's snapshot.
  SELECT i.*, row_number() OVER (PARTITION BY i.room_id ORDER BY i.ordinal)::int AS place
  FROM input i JOIN locked l ON l.id = i.room_id
  WHERE NOT l.is_private OR EXISTS (
    SELECT 1 FROM room_members m
    WHERE m.room_id = l.id AND m.user_id = i.user_id
    FOR KEY SHARE OF m)
), counts AS (
  SELECT room_id, count(*)::int AS n FROM allowed GROUP BY room_id
), advanced AS (
  UPDATE rooms SET last_seq = rooms.last_seq + counts.n
  FROM counts WHERE rooms.id = counts.room_id
  RETURNING rooms.id, rooms.last_seq
)
INSERT INTO messages (id, room_id, seq, user_id, username, text, client_msg_id, created_at)
SELECT a.id, a.room_id, v.last_seq - c.n + a.place, a.user_id, a.username, a.text,
       a.client_msg_id, a.created_at
FROM allowed a JOIN counts c ON c.room_id = a.room_id JOIN advanced v ON v.id = a.room_id
RETURNING id, seq`,
};

/**
 * The seqs of the messages stored; one missing was refused: its room does not
 * exist, or is private and its sender no longer a member.
 */
async function advanceAndInsert(
  transactions: TransactionRunner,
  fresh: Fresh,
  signal: AbortSignal | undefined,
): Promise<Map<string, number>> {
  const rows = await transactions.executePrepared<{ id: string; seq: number | string }>(
    ADVANCE_AND_INSERT,
    [JSON.stringify(fresh.messages.map((message, i) => inputRow(message, fresh.ordinals[i])))],
    signal,
  );
  return new Map(rows.map((row) => [row.id, Number(row.seq)]));
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
