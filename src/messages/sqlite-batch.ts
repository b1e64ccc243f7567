import type { Database, Statement } from 'better-sqlite3';
import { fromSqliteTime, toSqliteTime } from '@app/database/sqlite-time';
import type { TransactionRunner } from '@app/database/transaction-runner';
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
  type Planned,
} from './batch-plan';
import type { Message } from './message.entity';

/** SQLite keeps instants as text. */
type SqliteMessageRow = Omit<MessageRow, 'created_at'> & { created_at: string };

/** The batch's statements, prepared once on the connection. */
interface Statements {
  findStored: Statement<[string, string, string], SqliteMessageRow>;
  mayPost: Statement<[string, string], { allowed: number }>;
  advance: Statement<[number, string], { last_seq: number }>;
  insert: Statement<[string, string, number, string, string, string, string | null, string]>;
}

const prepared = new WeakMap<Database, Statements>();

function statementsOf(db: Database): Statements {
  let statements = prepared.get(db);
  if (!statements) {
    statements = {
      findStored: db.prepare(
        `SELECT id, room_id, seq, user_id, username, text, client_msg_id, created_at FROM messages
         WHERE room_id = ? AND user_id = ? AND client_msg_id = ?`,
      ),
      // The membership is read only for a private room: a public one's senders need none.
      mayPost: db.prepare(
        `SELECT CASE WHEN r.is_private
                  THEN EXISTS (SELECT 1 FROM room_members m WHERE m.room_id = r.id AND m.user_id = ?)
                  ELSE 1 END AS allowed
         FROM rooms r WHERE r.id = ?`,
      ),
      advance: db.prepare(
        'UPDATE rooms SET last_seq = last_seq + ? WHERE id = ? RETURNING last_seq',
      ),
      insert: db.prepare(
        `INSERT INTO messages (id, room_id, seq, user_id, username, text, client_msg_id, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
    };
    prepared.set(db, statements);
  }
  return statements;
}

function storedOnSqlite({ findStored }: Statements, items: AppendMessage[]): Message[] {
  return keyedItems(items).flatMap((item) => {
    const row = findStored.get(item.roomId, item.userId, item.clientMsgId!);
    if (!row) return [];
    return [messageOfRow({ ...row, created_at: fromSqliteTime(row.created_at) })];
  });
}

/**
 * The batch without the new messages of senders who may no longer post: the
 * room is gone, or private and they are not members any more (removed since
 * their send was let in). Those keep seq 0 and are refused.
 */
function withoutOutsiders({ mayPost }: Statements, planned: Planned[]): Planned[] {
  const verdicts = new Map<string, boolean>();
  return planned.filter(({ message, created }) => {
    if (!created) return true;
    const key = `${message.roomId}\u0000${message.userId}`;
    let allowed = verdicts.get(key);
    if (allowed === undefined) {
      allowed = mayPost.get(message.userId, message.roomId)?.allowed === 1;
      verdicts.set(key, allowed);
    }
    return allowed;
  });
}

/** Advances each room's last seq by its new messages; the last seqs before, of the rooms that exist. */
function advanceRooms({ advance }: Statements, fresh: Fresh): Map<string, number> {
  const before = new Map<string, number>();
  for (const [roomId, count] of fresh.perRoom) {
    const row = advance.get(count, roomId);
    if (row) before.set(roomId, row.last_seq - count);
  }
  return before;
}

function insertAll({ insert }: Statements, fresh: Fresh, before: Map<string, number>): void {
  for (const message of assignSeqs(fresh, before)) {
    insert.run(
      message.id,
      message.roomId,
      message.seq,
      message.userId,
      message.username,
      message.text,
      message.clientMsgId,
      toSqliteTime(message.createdAt),
    );
  }
}

/**
 * In one transaction that SQLite runs alone, start to end without yielding:
 * read the originals of retries, refuse senders no longer members of a
 * private room, advance the rooms' last seqs, insert.
 */
export function writeOnSqlite(
  transactions: TransactionRunner,
  items: AppendMessage[],
  signal?: AbortSignal,
): Promise<BatchOutcome[]> {
  return transactions.sqliteTransaction((db) => {
    // Given up on while it waited its turn.
    signal?.throwIfAborted();
    const statements = statementsOf(db);
    const planned = plan(items, byIdempotencyKey(storedOnSqlite(statements, items)));
    const fresh = freshOf(withoutOutsiders(statements, planned));
    if (fresh.messages.length > 0) insertAll(statements, fresh, advanceRooms(statements, fresh));
    return planned.map(outcomeOf);
  });
}
