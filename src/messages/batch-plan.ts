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

/** A message of the batch: a new one (seq 0 until stored) or the original of a retry. */
export interface Planned {
  message: Message;
  created: boolean;
}

/** The new messages of a batch, in order, with their ordinal within their room (1, 2, …). */
export interface Fresh {
  messages: Message[];
  ordinals: number[];
  perRoom: Map<string, number>;
}

/** A stored message as both databases return it. */
export interface MessageRow {
  id: string;
  room_id: string;
  seq: number | string;
  user_id: string;
  username: string;
  text: string;
  client_msg_id: string | null;
  created_at: Date;
}

export function messageOfRow(row: MessageRow): Message {
  return Object.assign(new Message(), {
    id: row.id,
    roomId: row.room_id,
    seq: Number(row.seq),
    userId: row.user_id,
    username: row.username,
    text: row.text,
    clientMsgId: row.client_msg_id,
    createdAt: row.created_at,
  });
}

const idempotencyKey = (roomId: string, userId: string, clientMsgId: string) =>
  `${roomId}\u0000${userId}\u0000${clientMsgId}`;

/** The items that carry a clientMsgId: a retry of one of them returns the stored original. */
export const keyedItems = (items: AppendMessage[]) =>
  items.filter((item) => item.clientMsgId !== undefined);

/** Stored originals by idempotency key. */
export function byIdempotencyKey(stored: Message[]): Map<string, Message> {
  return new Map(
    stored.map((message) => [
      idempotencyKey(message.roomId, message.userId, message.clientMsgId!),
      message,
    ]),
  );
}

/** New messages for the items, and for retries the original (stored, or earlier in the batch). */
export function plan(items: AppendMessage[], earlier: Map<string, Message>): Planned[] {
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

export function freshOf(planned: Planned[]): Fresh {
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
export function assignSeqs(fresh: Fresh, before: Map<string, number>): Message[] {
  const stored: Message[] = [];
  fresh.messages.forEach((message, i) => {
    const lastSeq = before.get(message.roomId);
    if (lastSeq === undefined) return;
    message.seq = lastSeq + fresh.ordinals[i];
    stored.push(message);
  });
  return stored;
}

export function outcomeOf({ message, created }: Planned): BatchOutcome {
  return message.seq > 0
    ? { message, created }
    : { error: AppException.notFound('Room not found') };
}
